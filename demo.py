#!/usr/bin/env python
"""The main job on the bundled sample photos: photo -> aligned face on white -> cartoon, as a contact sheet.

  python demo.py [--photos dataset/samples] [--out out/demo] [--checkpoint DIR]

The cartoon column needs a generator: --checkpoint DIR (a converted or trained model directory), or the
first of pretrained_models/photo2cartoon and pretrained_models/demo_cartoon that exists. Without one the
sheet shows the front end only and says how to get a generator.
"""
import argparse
import os
import sys

ROOT = os.path.dirname(os.path.abspath(__file__))


def _label(img, text):
    import cv2
    out = img.copy()
    cv2.rectangle(out, (0, 0), (out.shape[1], 22), (255, 255, 255), -1)
    scale = 0.5        # smaller for a text wider than the tile
    width = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][0]
    scale *= min(1.0, (out.shape[1] - 8) / max(width, 1))
    cv2.putText(out, text, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", default=os.path.join(ROOT, "dataset", "samples"), help="photo or folder")
    ap.add_argument("--out", default=os.path.join(ROOT, "out", "demo"), help="output folder")
    ap.add_argument("--checkpoint", default=None, help="generator model directory (model.json + genA2B.ckpt)")
    args = ap.parse_args(argv)

    from core.cli import fail
    import cv2
    import numpy as np
    from data.images import ImageReadError, list_images, read_rgb, write_image_atomic
    from preprocess.pipeline import FacePipeline

    photos = list_images(args.photos) if os.path.exists(args.photos) else []
    if not photos:
        return fail(f"no photos under {args.photos}")
    from inference.cartoon import Cartoonizer, InferenceError, default_checkpoint
    ckpt = args.checkpoint or default_checkpoint()
    cartoonizer = None
    if ckpt:
        from core import runtime
        runtime.configure("graph", "auto")
        try:
            cartoonizer = Cartoonizer(ckpt)
        except InferenceError as e:
            return fail(str(e))
    pipe = FacePipeline()
    rows = []
    for path in photos:
        name = os.path.splitext(os.path.basename(path))[0]
        try:
            rgb = read_rgb(path)
        except ImageReadError as e:
            print(f"skip {path}: {e}")
            continue
        res = pipe.process(rgb)
        if res.status != "ok":
            print(f"skip {path}: {res.status}")
            continue
        face = res.faces[0]
        write_image_atomic(os.path.join(args.out, f"{name}_face.png"), face.image)
        h, w = rgb.shape[:2]
        s = 256 / max(h, w)
        small = cv2.resize(rgb, (max(1, int(w * s)), max(1, int(h * s))), interpolation=cv2.INTER_AREA)
        tile = np.full((256, 256, 3), 255, np.uint8)
        tile[(256 - small.shape[0]) // 2:(256 - small.shape[0]) // 2 + small.shape[0],
             (256 - small.shape[1]) // 2:(256 - small.shape[1]) // 2 + small.shape[1]] = small
        cols = [_label(tile, "photo"), _label(face.image, "aligned, on white")]
        if cartoonizer is not None:
            cartoon = cartoonizer.cartoonize_face(face)
            write_image_atomic(os.path.join(args.out, f"{name}_cartoon.png"), cartoon)
            cols.append(_label(cartoon, "cartoon: " + cartoonizer.label))
        rows.append(np.concatenate(cols, axis=1))
        print(f"{path}: face found, eyes levelled by {face.angle_deg:+.2f} deg")
    if not rows:
        return fail("no face found in any sample photo")
    width = max(r.shape[1] for r in rows)
    sheet = np.concatenate([np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows])
    out = os.path.join(args.out, "sheet.png")
    write_image_atomic(out, sheet)
    if cartoonizer is None:
        print("no cartoon generator found: convert the published one with\n"
              "  python convert_weights.py --src photo2cartoon_weights.pt --dst pretrained_models/photo2cartoon\n"
              "or train one (see README); the sheet shows the front end only")
    print(f"contact sheet: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
