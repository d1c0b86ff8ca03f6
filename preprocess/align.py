"""photo2cartoon's geometry: level the eyes, then crop a square around the landmark box (numpy + OpenCV).

- rotate: angle from the outer eye corners (landmarks 36 and 45); the image is rotated about its centre
  onto an enlarged canvas (so no corner is cut) with a white border, and the landmarks go with it.
- crop: from the landmark box, top - 0.8H, bottom + 0.3H, left/right -/+ 0.3W, made square around the
  box's centre line, padded with white where it leaves the image.
"""
import math

import cv2
import numpy as np

LEFT_EYE_OUTER, RIGHT_EYE_OUTER = 36, 45


def eye_angle(landmarks):
    """Angle (radians) of the line from landmark 36 to 45, as photo2cartoon computes it (arctan of slope)."""
    l, r = landmarks[LEFT_EYE_OUTER], landmarks[RIGHT_EYE_OUTER]
    dx = l[0] - r[0]
    if dx == 0:
        return 0.0
    return float(np.arctan((l[1] - r[1]) / dx))


def rotate(image, landmarks, fill=255):
    """Rotate so the eye line is level; returns (rotated image, rotated landmarks)."""
    radian = eye_angle(landmarks)
    h, w = image.shape[:2]
    cos, sin = math.cos(radian), math.sin(radian)
    new_w = int(w * abs(cos) + h * abs(sin))
    new_h = int(w * abs(sin) + h * abs(cos))
    tx, ty = new_w // 2 - w // 2, new_h // 2 - h // 2
    m = np.array([[cos, sin, (1 - cos) * w / 2.0 - sin * h / 2.0 + tx],
                  [-sin, cos, sin * w / 2.0 + (1 - cos) * h / 2.0 + ty]])
    border = (fill,) * (image.shape[2] if image.ndim == 3 else 1)
    out = cv2.warpAffine(image, m, (new_w, new_h), borderValue=border)
    pts = np.concatenate([landmarks, np.ones((len(landmarks), 1))], axis=1) @ m.T
    return out, pts


def crop_box(landmarks):
    """The square crop (top, bottom, left, right), inclusive, that photo2cartoon takes around a face."""
    top, bottom = float(np.min(landmarks[:, 1])), float(np.max(landmarks[:, 1]))
    left, right = float(np.min(landmarks[:, 0])), float(np.max(landmarks[:, 0]))
    hh, ww = bottom - top, right - left
    t, b = int(top - 0.8 * hh), int(bottom + 0.3 * hh)
    l, r = int(left - 0.3 * ww), int(right + 0.3 * ww)
    if b - t > r - l:
        l -= ((b - t) - (r - l)) // 2
        r = l + (b - t)
    else:
        t -= ((r - l) - (b - t)) // 2
        b = t + (r - l)
    return t, b, l, r


def crop(image, landmarks, fill=255):
    """Crop the square of `crop_box`, padded with `fill`; returns (crop, landmarks in crop coordinates)."""
    t, b, l, r = crop_box(landmarks)
    h, w = image.shape[:2]
    out = np.full((b - t + 1, r - l + 1) + image.shape[2:], fill, dtype=image.dtype)
    st, sb, sl, sr = max(0, t), min(b, h - 1), max(0, l), min(r, w - 1)
    if sb >= st and sr >= sl:
        out[st - t:sb - t + 1, sl - l:sr - l + 1] = image[st:sb + 1, sl:sr + 1]
    return out, landmarks - np.array([l, t], dtype=np.float64)
