"""A non-learned cartoon filter: the teacher of the bundled demo generator (scripts/train_demo_model.py).

The classic real-time video abstraction recipe (Winnemoeller, Olsen and Gooch, SIGGRAPH 2006), in CIELAB:
- edge-preserving smoothing: `passes` bilateral filters;
- dark outlines: a difference of Gaussians on the lightness after two passes, softly thresholded
  (1 where DoG > 0, else 1 + tanh(phi_e * DoG)), multiplied into the lightness;
- soft lightness quantisation into `n_bins` bands (each value pulled towards its band's centre by a tanh),
  which gives flat, cel-shaded regions without the hard banding of plain rounding.
Widths scale with the image side (given for 256 px), so a 128 px and a 256 px copy of one face look alike.
White stays white (lightness 100 is a band centre), so a face composited on white keeps its white background.

    toon = cartoon_filter(rgb)          # HxWx3 uint8 RGB -> HxWx3 uint8 RGB
"""
import cv2
import numpy as np


def cartoon_filter(rgb, n_bins=6, phi_q=5.0, sigma_e=1.5, tau=0.98, phi_e=2.0, passes=3):
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"cartoon_filter takes an HxWx3 uint8 RGB image, got {rgb.shape} {rgb.dtype}")
    lab = cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    scale = min(rgb.shape[:2]) / 256.0
    diameter = max(3, int(round(5 * scale)) | 1)
    lightness_for_edges = lab[:, :, 0]
    for k in range(passes):
        lab = cv2.bilateralFilter(lab, diameter, 6.0, 3.0 * scale)
        if k == min(1, passes - 1):
            lightness_for_edges = lab[:, :, 0].copy()
    dog = (cv2.GaussianBlur(lightness_for_edges, (0, 0), sigma_e * scale)
           - tau * cv2.GaussianBlur(lightness_for_edges, (0, 0), 1.6 * sigma_e * scale))
    edges = np.where(dog > 0, 1.0, 1.0 + np.tanh(phi_e * dog))
    lightness = lab[:, :, 0]
    step = 100.0 / n_bins
    centre = np.round(lightness / step) * step
    lightness = centre + 0.5 * step * np.tanh(2.0 * phi_q * (lightness - centre) / step)
    lab[:, :, 0] = np.clip(lightness * edges, 0.0, 100.0)
    out = cv2.cvtColor(lab, cv2.COLOR_Lab2RGB)
    return np.clip(out * 255.0 + 0.5, 0, 255).astype(np.uint8)
