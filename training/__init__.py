"""The training engine shared by every family: the compiled GAN steps and the loop (engine), the losses' pieces
(losses), exact-resume checkpoints (checkpoint), the image pool (pool) and the face-ID loss (face_id)."""
