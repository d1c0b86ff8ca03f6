"""The one image reader of the toolkit (training data, inference, the face front end), and image outputs
written atomically.

`read_rgb(path)` returns an RGB uint8 array or raises ImageReadError with a machine-readable status:
- `missing`     no such file
- `unreadable`  truncated/corrupt file, or a non-image with an image extension
- `too_large`   a decompression bomb (more than MAX_PIXELS pixels)
- `too_small`   smaller than MIN_SIDE on a side
Handled: EXIF orientation, grayscale (L, LA, I;16 and 16-bit PNG), palette, RGBA/LA (composited on white,
the background photo2cartoon expects), CMYK JPEG (converted by Pillow's colour transform).
"""
import os
import warnings

import numpy as np
from PIL import Image, ImageOps

MAX_PIXELS = 80_000_000   # about 9000 x 9000; PIL's own bomb check is tightened to this
MIN_SIDE = 32
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif")


class ImageReadError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


def read_rgb(path, min_side=MIN_SIDE):
    if not os.path.isfile(path):
        raise ImageReadError("missing", f"no such file: {path}")
    old_limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                w, h = im.size
                if w * h > MAX_PIXELS:
                    raise ImageReadError("too_large", f"{path}: {w}x{h} pixels is over the {MAX_PIXELS} limit")
                im.load()
                im = ImageOps.exif_transpose(im)
                arr = _to_rgb(im)
    except ImageReadError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageReadError("too_large", f"{path}: {str(e).splitlines()[0]}") from None
    except (OSError, ValueError, SyntaxError, EOFError, MemoryError) as e:
        raise ImageReadError("unreadable", f"{path}: not a readable image ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    finally:
        Image.MAX_IMAGE_PIXELS = old_limit
    if min(arr.shape[:2]) < min_side:
        raise ImageReadError("too_small", f"{path}: {arr.shape[1]}x{arr.shape[0]} is smaller than {min_side} px")
    return arr


# The first words of the message of a training image that cannot be read during a run. mindspore.dataset
# re-raises a source's exception inside its own RuntimeError; the engine finds the line by this marker.
READ_FAILURE = "training image could not be read:"


class TrainingImageError(Exception):
    pass


def read_training_rgb(path):
    """read_rgb for a training sample; a file that vanished or broke since the dataset scan is a
    TrainingImageError whose message starts with READ_FAILURE and names the file."""
    try:
        return read_rgb(path, min_side=1)
    except ImageReadError as e:
        raise TrainingImageError(f"{READ_FAILURE} {path} ({e.status})") from None



def probe(path, min_side=MIN_SIDE):
    """A quick check of an image file without decoding its pixels (header, PIL's verify, size): None when it
    looks usable, else ImageReadError's (status, message). What a dataset scan uses on every file; a file that
    passes can still fail to decode, which `read_rgb` reports."""
    if not os.path.isfile(path):
        return "missing", f"no such file: {path}"
    try:
        with Image.open(path) as im:
            w, h = im.size
            im.verify()
    except Exception as e:  # PIL raises many kinds for a bad file
        return "unreadable", f"{path}: not a readable image ({str(e).splitlines()[0] if str(e) else type(e).__name__})"
    if w * h > MAX_PIXELS:
        return "too_large", f"{path}: {w}x{h} pixels is over the {MAX_PIXELS} limit"
    if min(w, h) < min_side:
        return "too_small", f"{path}: {w}x{h} is smaller than {min_side} px"
    return None


def _to_rgb(im):
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        a = np.asarray(im, dtype=np.float64)
        hi = 65535.0 if a.max() > 255 else 255.0
        g = np.clip(a / hi * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(g[:, :, None], 3, axis=2)
    if mode == "F":
        a = np.asarray(im, dtype=np.float64)
        g = np.clip(a * (255.0 if a.max() <= 1.0 else 1.0) + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(g[:, :, None], 3, axis=2)
    if mode == "P":
        im = im.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = np.asarray(im.convert("RGBA"), dtype=np.float32)
        alpha = rgba[:, :, 3:4] / 255.0
        rgb = rgba[:, :, :3] * alpha + 255.0 * (1.0 - alpha)
        return np.clip(rgb + 0.5, 0, 255).astype(np.uint8)
    if mode != "RGB":
        im = im.convert("RGB")   # L, 1, CMYK, YCbCr, LAB, HSV, RGB;16 ...
    return np.ascontiguousarray(np.asarray(im, dtype=np.uint8))


def write_image_atomic(path, rgb_or_rgba):
    """Write a PNG/JPEG (by the extension; PNG without one) atomically (core.files.atomic_write)."""
    from core.files import atomic_write
    ext = os.path.splitext(path)[1].lower() or ".png"
    arr = np.asarray(rgb_or_rgba)
    img = Image.fromarray(arr.astype(np.uint8), "RGBA" if arr.ndim == 3 and arr.shape[2] == 4 else None)
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG"}.get(ext, "PNG")

    def write(tmp):
        if fmt == "JPEG":
            img.convert("RGB").save(tmp, fmt, quality=95)
        else:
            img.save(tmp, fmt)
    return atomic_write(path, write)


def list_images(root):
    """All files with an image extension under `root` (recursive), sorted; a file path gives itself."""
    if os.path.isfile(root):
        return [root]
    out = []
    for d, dirs, files in os.walk(root):
        dirs[:] = sorted(x for x in dirs if not x.startswith("."))
        for f in sorted(files):
            if f.lower().endswith(IMAGE_EXTS) and not f.startswith("."):
                out.append(os.path.join(d, f))
    return out
