#!/usr/bin/env python
"""Run a trained or converted generator on photos: cartoons (U-GAT-IT / photo2cartoon), makeup off / on
(CycleGAN), paired translation (Pix2Pix), attribute editing (STGAN / AttGAN).

  python test.py --photo_path x.jpg                          # photo2cartoon -> out/cartoon/x_cartoon.png
  python test.py --photo_path x.jpg --save_path x_cartoon.png --checkpoint pretrained_models/photo2cartoon
  python test.py --photo_path photos/ --save_path cartoons/  # a folder, recursively (progress bar)
  python test.py --photo_path faces/ --no_preprocess          # inputs are already aligned faces
  python test.py --model cyclegan --checkpoint pretrained_models/makeup --photo_path x.jpg --direction AtoB \
      --save_cycle --preprocess face                          # -> out/cyclegan/x_fakeB.png, x_recA.png
  python test.py --model stgan --checkpoint runs/celeba_stgan/model --photo_path x.jpg --attrs "Male" \
      --edit Bald --slide 0:1:10                              # -> out/stgan/x_Bald_slide.png, a 10-step strip

ugatit: photos go through the face front end (detect, level the eyes, crop, white background), then the
generator; the result is composited on white with the same mask, as photo2cartoon does. The default checkpoint
is the first of pretrained_models/photo2cartoon (the published weights, converted) and
pretrained_models/demo_cartoon.
cyclegan / pix2pix: AtoB runs G_A (G for pix2pix), BtoA runs G_B; --save_cycle also writes the reconstruction
(the other generator on the result), like the original's fake_B / rec_A. --preprocess resize (default; to
--load_size and back), none (the photo's own size) or face (the aligned face crop of the front end).
stgan: --attrs lists what the photo shows now (the original demo asks the same); --edit NAME|all toggles
attributes at --intensity (1 = full, 0.5 = training strength, negative = the other way) or over --slide
MIN:MAX:COUNT; one row per edited attribute. Photos go through the face front end (--preprocess face,
default) or are taken as aligned faces (--preprocess resize; CelebA's 178x218 images get CelebA's crop).
"""
import argparse
import os
import sys

ROOT = os.path.dirname(os.path.abspath(__file__))


def build_parser():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photo_path", required=True, help="a photo or a folder of photos")
    ap.add_argument("--save_path", default=None,
                    help="output file (single photo) or folder (default: out/<model>/)")
    ap.add_argument("--model", default="ugatit", choices=["ugatit", "cyclegan", "pix2pix", "stgan"])
    ap.add_argument("--checkpoint", default=None, help="model directory with model.json and the generator .ckpt")
    ap.add_argument("--direction", choices=["AtoB", "BtoA"], default="AtoB",
                    help="ugatit: AtoB = photo -> cartoon; cyclegan: AtoB runs G_A, BtoA runs G_B")
    ap.add_argument("--no_preprocess", action="store_true",
                    help="ugatit: inputs are already aligned faces (resize to the generator's size, no mask)")
    ap.add_argument("--preprocess", choices=["resize", "none", "face"], default=None,
                    help="cyclegan/pix2pix: how photos reach the generator (default resize)")
    ap.add_argument("--load_size", type=int, default=256, help="cyclegan/pix2pix: size for --preprocess resize")
    ap.add_argument("--save_cycle", action="store_true", help="cyclegan: also write the cycle reconstruction")
    ap.add_argument("--eval", action="store_true",
                    help="cyclegan/pix2pix: batch-norm running statistics and no dropout (the original's --eval); "
                         "default: the original's test-time forward")
    ap.add_argument("--attrs", default="", help="stgan: the attributes the photo has now, e.g. \"Male Young\"")
    ap.add_argument("--edit", default=None, help="stgan: the attribute to toggle, or all")
    ap.add_argument("--intensity", type=float, default=1.0, help="stgan: strength of the edit")
    ap.add_argument("--slide", default=None, help="stgan: MIN:MAX:COUNT intensities in one strip, e.g. -1:1:10")
    ap.add_argument("--overwrite", action="store_true", help="replace outputs that already exist")
    ap.add_argument("--mode", choices=["graph", "pynative"], default="graph", help="MindSpore execution mode")
    ap.add_argument("--device_target", default="auto", help="CPU, GPU, Ascend or auto")
    ap.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    return ap


def make_runner(args):
    """(function rgb|face -> {suffix: image}, needs the face front end, the suffixes it writes)."""
    if args.model == "ugatit":
        from inference.cartoon import DEFAULT_CHECKPOINTS, Cartoonizer, default_checkpoint
        if args.preprocess is not None or args.save_cycle:
            raise ValueError("--preprocess/--save_cycle are cyclegan/pix2pix options (ugatit: --no_preprocess)")
        c = Cartoonizer(args.checkpoint or default_checkpoint() or DEFAULT_CHECKPOINTS[0], args.direction,
                        args.mode, args.device_target)
        if args.no_preprocess:
            return (lambda rgb: {"cartoon": c.cartoonize(rgb)}), False, ["cartoon"]
        return (lambda face: {"cartoon": c.cartoonize_face(face)}), True, ["cartoon"]
    if args.model == "stgan":
        return stgan_runner(args)
    from inference.translate import Translator
    if args.no_preprocess:
        raise ValueError("--no_preprocess is a ugatit option; use --preprocess resize|none|face")
    pre = args.preprocess or "resize"
    ckpt = args.checkpoint or os.path.join(ROOT, "pretrained_models", args.model)
    t = Translator(ckpt, args.direction, args.save_cycle, args.load_size, "resize" if pre == "face" else pre,
                   args.eval, args.mode, args.device_target, expect_arch=args.model)
    suffixes = [f"fake{t.out_domain}"] + ([f"rec{t.in_domain}"] if args.save_cycle else [])
    if pre == "face":
        import cv2
        return (lambda face: t.translate(cv2.resize(face.crop_rgb, (args.load_size, args.load_size),
                                                    interpolation=cv2.INTER_AREA))), True, suffixes
    return t.translate, False, suffixes


def stgan_runner(args):
    from inference.attributes import AttributeEditor, parse_slide
    from inference.cartoon import InferenceError
    if args.edit is None:
        raise InferenceError("--model stgan needs --edit ATTRIBUTE (or all)")
    if args.preprocess == "none" or args.save_cycle or args.no_preprocess:
        raise ValueError("stgan takes --preprocess face (default) or resize")
    editor = AttributeEditor(args.checkpoint or os.path.join(ROOT, "pretrained_models", "stgan"), args.mode,
                             args.device_target)
    present = editor.parse_attrs(args.attrs)
    edits = editor.check_edit(args.edit)
    intensities = parse_slide(args.slide) if args.slide else [args.intensity]
    with_input = bool(args.slide) or len(edits) > 1
    suffix = args.edit + ("_slide" if args.slide else "")

    def run(image):
        return {suffix: editor.edit(image, present, edits, intensities, with_input)}
    if (args.preprocess or "face") == "face":
        return (lambda face: run(face.crop_rgb)), True, [suffix]

    from training.data import CELEBA_CROP, CELEBA_SIZE

    def aligned(rgb):
        if rgb.shape[1::-1] == CELEBA_SIZE:          # CelebA's aligned images: the crop STGAN trained on
            x, y, side = CELEBA_CROP
            rgb = rgb[y:y + side, x:x + side]
        return run(rgb)
    return aligned, False, [suffix]


def _join_negative_values(argv):
    """`--slide -1:1:10` as the user types it: argparse would take "-1:1:10" for an option."""
    argv = list(sys.argv[1:] if argv is None else argv)
    out = []
    for a in argv:
        if out and out[-1] == "--slide" and a.startswith("-"):
            out[-1] = f"--slide={a}"
        else:
            out.append(a)
    return out


def main(argv=None):
    args = build_parser().parse_args(_join_negative_values(argv))

    import cli_common  # noqa: F401
    from cli_common import fail
    from preprocess.imageio import ImageReadError, list_images, read_rgb, write_image_atomic

    if not os.path.exists(args.photo_path):
        return fail(f"--photo_path not found: {args.photo_path}")
    single = os.path.isfile(args.photo_path)
    photos = list_images(args.photo_path)
    if not photos:
        return fail(f"no image files under {args.photo_path}")
    from inference.cartoon import InferenceError
    try:
        run, needs_face, suffixes = make_runner(args)
    except (InferenceError, ValueError) as e:
        return fail(str(e))

    out_dir = args.save_path or os.path.join(ROOT, "out", "cartoon" if args.model == "ugatit" else args.model)
    explicit_file = single and args.save_path and os.path.splitext(args.save_path)[1]
    base = args.photo_path if not single else os.path.dirname(args.photo_path)

    def target(src, suffix, first):
        if explicit_file:
            stem, ext = os.path.splitext(args.save_path)
            return args.save_path if first else f"{stem}_{suffix}{ext}"
        return os.path.join(out_dir, os.path.splitext(os.path.relpath(src, base))[0] + f"_{suffix}.png")

    pipe = None
    if needs_face:
        from preprocess.pipeline import FacePipeline
        pipe = FacePipeline()
    from tqdm import tqdm
    ok, problems, written = 0, [], []
    for src in tqdm(photos, desc=args.model, unit="img", disable=args.quiet or single, dynamic_ncols=True):
        existing = [d for d in (target(src, k, i == 0) for i, k in enumerate(suffixes)) if os.path.exists(d)]
        if existing and not args.overwrite:
            if single:
                return fail(f"{existing[0]} exists (pass --overwrite to replace it)")
            ok += 1          # done by an earlier run
            continue
        try:
            rgb = read_rgb(src)
        except ImageReadError as e:
            problems.append((src, e.status))
            continue
        if pipe is None:
            outputs = run(rgb)
        else:
            res = pipe.process(rgb)
            if res.status != "ok":
                problems.append((src, res.status))
                continue
            outputs = run(res.faces[0])
        dsts = {target(src, k, i == 0): img for i, (k, img) in enumerate(outputs.items())}
        for d, img in dsts.items():
            write_image_atomic(d, img)
        written.append(list(dsts))
        ok += 1
    if single:
        if problems:
            status = problems[0][1]
            msg = "no face found" if status == "no_face" else status.replace("_", " ")
            return fail(f"{photos[0]}: {msg}")
        print(f"{photos[0]} -> {', '.join(written[0]) if written else 'exists'}")
        return 0
    for src, status in problems:
        print(f"  skipped {src}: {status}")
    verb = {"ugatit": "cartoonized", "stgan": "edited"}.get(args.model, "translated")
    print(f"{ok} of {len(photos)} photos {verb} -> {out_dir}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
