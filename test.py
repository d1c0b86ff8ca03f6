#!/usr/bin/env python
"""Turn portrait photos into cartoons with a U-GAT-IT / photo2cartoon generator.

  python test.py --photo_path x.jpg                          # -> out/cartoon/x_cartoon.png
  python test.py --photo_path x.jpg --save_path x_cartoon.png --checkpoint pretrained_models/photo2cartoon
  python test.py --photo_path photos/ --save_path cartoons/  # a folder, recursively (progress bar)
  python test.py --photo_path faces/ --no_preprocess          # inputs are already aligned faces

Photos go through the face front end (detect, level the eyes, crop, white background), then the generator;
the result is composited on white with the same mask, as photo2cartoon does. The default checkpoint is the
first of pretrained_models/photo2cartoon (the published weights, converted) and pretrained_models/demo_cartoon.
"""
import argparse
import os
import sys

ROOT = os.path.dirname(os.path.abspath(__file__))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photo_path", required=True, help="a photo or a folder of photos")
    ap.add_argument("--save_path", default=None,
                    help="output file (single photo) or folder (default: out/cartoon/)")
    ap.add_argument("--checkpoint", default=None, help="model directory with model.json and genA2B.ckpt")
    ap.add_argument("--direction", choices=["AtoB", "BtoA"], default="AtoB", help="AtoB: photo -> cartoon")
    ap.add_argument("--no_preprocess", action="store_true",
                    help="inputs are already aligned faces: resize to the generator's size, no mask")
    ap.add_argument("--overwrite", action="store_true", help="replace outputs that already exist")
    ap.add_argument("--mode", choices=["graph", "pynative"], default="graph", help="MindSpore execution mode")
    ap.add_argument("--device_target", default="auto", help="CPU, GPU, Ascend or auto")
    ap.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    args = ap.parse_args(argv)

    import cli_common  # noqa: F401
    from cli_common import fail
    from preprocess.imageio import ImageReadError, list_images, read_rgb, write_image_atomic

    if not os.path.exists(args.photo_path):
        return fail(f"--photo_path not found: {args.photo_path}")
    single = os.path.isfile(args.photo_path)
    photos = list_images(args.photo_path)
    if not photos:
        return fail(f"no image files under {args.photo_path}")
    from inference.cartoon import DEFAULT_CHECKPOINTS, Cartoonizer, InferenceError, default_checkpoint
    ckpt = args.checkpoint or default_checkpoint() or DEFAULT_CHECKPOINTS[0]
    try:
        cartoonizer = Cartoonizer(ckpt, args.direction, args.mode, args.device_target)
    except InferenceError as e:
        return fail(str(e))

    out_dir = args.save_path or os.path.join(ROOT, "out", "cartoon")
    if single and args.save_path and os.path.splitext(args.save_path)[1]:
        targets = {photos[0]: args.save_path}
    else:
        base = args.photo_path if not single else os.path.dirname(args.photo_path)
        targets = {p: os.path.join(out_dir, os.path.splitext(os.path.relpath(p, base))[0] + "_cartoon.png")
                   for p in photos}
    pipe = None
    if not args.no_preprocess:
        from preprocess.pipeline import FacePipeline
        pipe = FacePipeline()
    from tqdm import tqdm
    ok, problems = 0, []
    for src in tqdm(photos, desc="cartoon", unit="img", disable=args.quiet or single, dynamic_ncols=True):
        dst = targets[src]
        if os.path.exists(dst) and not args.overwrite:
            if single:
                return fail(f"{dst} exists (pass --overwrite to replace it)")
            ok += 1
            continue
        try:
            rgb = read_rgb(src)
        except ImageReadError as e:
            problems.append((src, e.status))
            continue
        if pipe is None:
            cartoon = cartoonizer.cartoonize(rgb)
        else:
            res = pipe.process(rgb)
            if res.status != "ok":
                problems.append((src, res.status))
                continue
            cartoon = cartoonizer.cartoonize_face(res.faces[0])
        write_image_atomic(dst, cartoon)
        ok += 1
    if single:
        if problems:
            status = problems[0][1]
            msg = "no face found" if status == "no_face" else status.replace("_", " ")
            return fail(f"{photos[0]}: {msg}")
        print(f"{photos[0]} -> {targets[photos[0]]}")
        return 0
    for src, status in problems:
        print(f"  skipped {src}: {status}")
    print(f"{ok} of {len(photos)} photos cartoonized -> {out_dir}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
