"""Quality metrics of generated images: FID and KID on the FID Inception network (metrics/fid.py)."""
