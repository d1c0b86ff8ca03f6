#!/usr/bin/env python
"""Run a trained or converted generator on photos: cartoons (U-GAT-IT / photo2cartoon), makeup off / on
(CycleGAN), paired translation (Pix2Pix), attribute editing (STGAN / AttGAN).

  python test.py --photo_path x.jpg                          # photo2cartoon -> out/cartoon/x_cartoon.png
  python test.py --photo_path x.jpg --save_path x_cartoon.png --checkpoint pretrained_models/photo2cartoon
  python test.py --photo_path photos/ --save_path cartoons/  # a folder, recursively (progress bar)
  python test.py --photo_path faces/ --no_preprocess          # inputs are already aligned faces
  python test.py --model cyclegan --checkpoint pretrained_models/makeup --photo_path x.jpg --direction AtoB \\
      --save_cycle --preprocess face                          # -> out/cyclegan/x_fakeB.png, x_recA.png
  python test.py --model stgan --checkpoint runs/celeba_stgan/model --photo_path x.jpg --attrs "Male" \\
      --edit Bald --slide 0:1:10                              # -> out/stgan/x_Bald_slide.png, a 10-step strip
  python test.py --model dcgan --checkpoint runs/digits_dcgan/model --num 64 --seed 0
                                                              # -> out/dcgan/samples.png, interpolation.png
  python test.py --model cgan --checkpoint runs/digits_cgan/model --label 3 --num 16   # -> out/cgan/label3.png
  python test.py --model stgan --help                         # a family's own options
  python test.py --onnx genA2B.onnx --photo_path x.jpg         # an exported generator, without MindSpore

Photos that need it go through the face front end (detect, level the eyes, crop, white background). Outputs
are written atomically as <photo name>_<suffix>.png; existing outputs are kept unless --overwrite (a rerun
over a folder skips what is done). Bad files in a folder are named and skipped; a single bad photo is a
one-line error.
"""
import argparse
import os
import sys

from core import cli

ROOT = os.path.dirname(os.path.abspath(__file__))


def build_parser(family):
    from families import get_family, list_families
    others = "; ".join(f"{n}: {get_family(n).summary}" for n in list_families())
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=f"model families ({others}). python test.py --model NAME --help shows "
                                        f"NAME's options.")
    if family.takes_photos:
        ap.add_argument("--photo_path", required=True, help="a photo or a folder of photos")
    ap.add_argument("--save_path", default=None, help="output file (single photo, or the first output of a "
                                                      "generating model) or folder (default: out/<model>/)")
    ap.add_argument("--model", default="ugatit", choices=list_families(), help="model family (default ugatit)")
    ap.add_argument("--checkpoint", default=None, help="model directory (model.json and the networks' .ckpt)")
    ap.add_argument("--overwrite", action="store_true", help="replace outputs that already exist")
    f = ap.add_argument_group(f"{family.name} ({family.summary})")
    for o in family.test_options:
        if o.flag:
            f.add_argument("--" + o.name, action="store_true", help=o.help)
        else:
            f.add_argument("--" + o.name, type=o.type, default=o.default, choices=o.choices, nargs=o.nargs,
                           help=o.help + (f" (default {o.default})" if o.default not in (None, "") else ""))
    r = ap.add_argument_group("runtime")
    r.add_argument("--mode", choices=["graph", "pynative"], default="graph", help="MindSpore execution mode")
    r.add_argument("--device_target", default="auto", help="CPU, GPU, Ascend or auto")
    r.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    return ap


def _join_negative_values(argv):
    """`--slide -1:1:10` as the user types it: argparse would take "-1:1:10" for an option."""
    out = []
    for a in argv:
        if out and out[-1] in ("--slide", "--intensity") and a.startswith("-"):
            out[-1] = f"{out[-1]}={a}"
        else:
            out.append(a)
    return out


def parse_args(argv):
    argv = _join_negative_values(list(sys.argv[1:] if argv is None else argv))
    return cli.parse_family_args(argv, build_parser, lambda fam: [o.name for o in fam.test_options])


def _runner(family, args, out_folder):
    """The family's runner, after checking that `out_folder` can be written; or the exit code of a one-line
    error."""
    from inference.cartoon import InferenceError
    try:
        cli.writable_dir(out_folder, "the output folder")
    except cli.UserError as e:
        return cli.fail(str(e))
    from core import runtime
    checkpoint = args.checkpoint or family.default_checkpoint(ROOT)
    runtime.configure(args.mode, args.device_target)
    parts = family.compile_cache_parts(args, checkpoint)
    if parts:
        runtime.use_compile_cache(family.name, *parts)
    try:
        return family.runner(args, checkpoint)
    except (InferenceError, ValueError) as e:
        return cli.fail(str(e))


def generate(args, out_name, make_runner):
    """A model that generates from noise: the images of the runner make_runner(output folder) gives (or an
    exit code), as <save_path> (the first) and <stem>_<name><ext>, or <folder>/<name>.png."""
    from data.images import write_image_atomic
    out_dir = args.save_path or os.path.join(ROOT, "out", out_name)
    explicit_file = bool(args.save_path and os.path.splitext(args.save_path)[1])
    run = make_runner(os.path.dirname(os.path.abspath(args.save_path)) if explicit_file else out_dir)
    if isinstance(run, int):
        return run

    def target(i, name):
        if explicit_file:
            stem, ext = os.path.splitext(args.save_path)
            return args.save_path if i == 0 else f"{stem}_{name}{ext}"
        return os.path.join(out_dir, f"{name}.png")
    dsts = [target(i, k) for i, k in enumerate(run.suffixes)]
    existing = [d for d in dsts if os.path.exists(d)]
    if existing and not args.overwrite:
        return cli.fail(f"{existing[0]} exists (pass --overwrite to replace it)")
    from inference.cartoon import InferenceError
    try:
        outputs = run.generate()
    except InferenceError as e:
        return cli.fail(str(e))
    for d, img in zip(dsts, outputs.values()):
        try:
            write_image_atomic(d, img)
        except OSError as e:
            return cli.fail(f"cannot write {d}: {cli.os_error_text(e)}")
    print(f"{run.label}: {', '.join(dsts)}")
    return 0


def onnx_parser(options=(), takes_photos=True):
    """test.py --onnx's flags; `options`: those of the family runner the file goes through (its --help lists
    them once --onnx names the file)."""
    ap = argparse.ArgumentParser(description="Run a generator exported by export.py --format ONNX with onnxruntime, "
                                             "without MindSpore: photo2cartoon / U-GAT-IT, CycleGAN, Pix2Pix, "
                                             "STGAN / AttGAN, StarGAN on photos; DCGAN, CGAN from noise; SPADE from "
                                             "label maps. The file's "
                                             "family options apply (python test.py --onnx FILE --help).")
    ap.add_argument("--onnx", required=True, help="the .onnx file")
    if takes_photos:
        ap.add_argument("--photo_path", required=True, help="a photo or a folder of photos")
    ap.add_argument("--save_path", default=None, help="output file (single photo, or the first output of a "
                                                      "generating model) or folder (default: out/onnx/)")
    names = {o.name for o in options}
    if "preprocess" not in names and takes_photos:
        ap.add_argument("--preprocess", choices=["face", "resize"], default=None,
                        help="face (the face front end; the default for cartoons) or resize (the default otherwise)")
    f = ap.add_argument_group("the exported model's options")
    for o in options:
        f.add_argument("--" + o.name, type=o.type, default=o.default, choices=o.choices, nargs=o.nargs,
                       help=o.help + (f" (default {o.default})" if o.default not in (None, "") else ""))
    ap.add_argument("--overwrite", action="store_true", help="replace outputs that already exist")
    ap.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    return ap


def onnx_runner(args, out_folder, through_family):
    """The runner of an exported file: its family's (`through_family`: runner_options gave options), or the
    photo -> image one."""
    from inference.cartoon import InferenceError
    if not os.path.isfile(args.onnx):
        return cli.fail(f"--onnx not found: {args.onnx}")
    try:
        cli.writable_dir(out_folder, "the output folder")
        from deploy.onnx_run import OnnxRunner, family_runner
        if through_family:
            return family_runner(args.onnx, args)
        return OnnxRunner(args.onnx, args.preprocess)
    except (InferenceError, cli.UserError) as e:
        return cli.fail(str(e))


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    onnx = cli.peek_flag(argv, "--onnx", None)
    if onnx is not None:
        options, takes_photos = (), True
        if os.path.isfile(onnx):
            from deploy.onnx_run import runner_options
            options, takes_photos = runner_options(onnx)
        args = onnx_parser(options, takes_photos).parse_args(_join_negative_values(argv))
        if not takes_photos:
            return generate(args, "onnx", lambda folder: onnx_runner(args, folder, bool(options)))
        return run_photos(args, "onnx", lambda folder: onnx_runner(args, folder, bool(options)))
    family, args = parse_args(argv)
    if not family.takes_photos:
        return generate(args, family.output_folder or family.name, lambda folder: _runner(family, args, folder))
    return run_photos(args, family.output_folder or family.name, lambda folder: _runner(family, args, folder))


def run_photos(args, out_name, make_runner):
    """Every photo of --photo_path through the runner make_runner(output folder) gives (or an exit code)."""
    from data.images import ImageReadError, list_images, read_rgb, write_image_atomic

    if not os.path.exists(args.photo_path):
        return cli.fail(f"--photo_path not found: {args.photo_path}")
    single = os.path.isfile(args.photo_path)
    photos = list_images(args.photo_path)
    if not photos:
        return cli.fail(f"no image files under {args.photo_path}")
    out_dir = args.save_path or os.path.join(ROOT, "out", out_name)
    explicit_file = single and args.save_path and os.path.splitext(args.save_path)[1]
    base = args.photo_path if not single else os.path.dirname(args.photo_path)
    run = make_runner(os.path.dirname(os.path.abspath(args.save_path)) if explicit_file else out_dir)
    if isinstance(run, int):
        return run

    def target(src, suffix, first):
        if explicit_file:
            stem, ext = os.path.splitext(args.save_path)
            return args.save_path if first else f"{stem}_{suffix}{ext}"
        return os.path.join(out_dir, os.path.splitext(os.path.relpath(src, base))[0] + f"_{suffix}.png")

    if run.label:
        print(f"model: {run.label}")
    pipe = None
    if run.needs_face:
        from preprocess.detect import ModelFileMissing
        from preprocess.pipeline import FacePipeline
        try:
            pipe = FacePipeline()
        except ModelFileMissing as e:
            return cli.fail(str(e))
    from tqdm import tqdm
    ok, problems, written = 0, [], []
    for src in tqdm(photos, desc=out_name, unit="img", disable=args.quiet or single, dynamic_ncols=True):
        existing = [d for d in (target(src, k, i == 0) for i, k in enumerate(run.suffixes)) if os.path.exists(d)]
        if existing and not args.overwrite:
            if single:
                return cli.fail(f"{existing[0]} exists (pass --overwrite to replace it)")
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
            try:
                write_image_atomic(d, img)
            except OSError as e:   # a full disk or a folder that went read-only: stop, nothing half-written
                return cli.fail(f"cannot write {d}: {cli.os_error_text(e)} ({ok} of {len(photos)} photos done)")
        written.append(list(dsts))
        ok += 1
    if single:
        if problems:
            status = problems[0][1]
            msg = "no face found" if status == "no_face" else status.replace("_", " ")
            return cli.fail(f"{photos[0]}: {msg}")
        print(f"{photos[0]} -> {', '.join(written[0]) if written else 'exists'}")
        return 0
    for src, status in problems:
        print(f"  skipped {src}: {status}")
    print(f"{ok} of {len(photos)} photos {run.verb} -> {out_dir}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
