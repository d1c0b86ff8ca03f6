#!/usr/bin/env python
"""Align faces for photo2cartoon: detect, 68 landmarks, level the eyes, square crop, segment, white background.

  python data_process.py --data_path trainA-pre --save_path trainA
  python data_process.py --data_path photo.jpg --save_path out/ --faces all --save_rgba out_rgba/

Works offline: dlib's HOG detector and 68-point predictor, MediaPipe's selfie segmentation (.tflite).
Outputs mirror the input tree as .png; a manifest.jsonl in SAVE_PATH has one row per input (status:
ok, no_face, too_small, unreadable, too_large, error; landmarks when ok). Inputs already in the manifest
are skipped, so a killed run resumes; --overwrite redoes everything.
"""
import argparse
import os
import sys


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data_path", required=True, help="an image file or a folder (searched recursively)")
    ap.add_argument("--save_path", required=True, help="output folder (created)")
    ap.add_argument("--size", type=int, default=256, help="output side in pixels (default 256)")
    ap.add_argument("--faces", choices=["largest", "all"], default="largest", help="which faces to keep")
    ap.add_argument("--detector", choices=["dlib", "sfd"], default="dlib",
                    help="dlib HOG (default, no file) or face-alignment's S3FD (weights must be on disk)")
    ap.add_argument("--landmarks", choices=["dlib", "fan"], default="dlib",
                    help="dlib 68-point predictor (default) or face-alignment's FAN (weights must be on disk)")
    ap.add_argument("--seg_model", default=None,
                    help="segmentation model: .tflite (default: the bundled selfie model) or a frozen .pb")
    ap.add_argument("--seg_input", default="input_1:0", help="input tensor of a .pb graph")
    ap.add_argument("--seg_output", default="sigmoid/Sigmoid:0", help="output tensor of a .pb graph")
    ap.add_argument("--save_rgba", default=None, help="also write RGBA faces (alpha = mask) under this folder")
    ap.add_argument("-j", "--workers", type=int, default=1, help="worker processes (default 1)")
    ap.add_argument("--overwrite", action="store_true", help="redo inputs that are already done")
    ap.add_argument("--device", default="cpu", help="torch device for the sfd/fan options")
    ap.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    args = ap.parse_args(argv)

    from core.cli import UserError, fail, os_error_text, writable_dir
    if not os.path.exists(args.data_path):
        return fail(f"--data_path not found: {args.data_path}")
    if args.size < 32:
        return fail("--size must be at least 32")
    data_abs = os.path.abspath(args.data_path)
    if os.path.isdir(data_abs) and os.path.commonpath([data_abs, os.path.abspath(args.save_path)]) == data_abs:
        return fail("--save_path must not be inside --data_path (inputs are never modified)")
    try:
        for folder, what in ((args.save_path, "--save_path"), (args.save_rgba, "--save_rgba")):
            if folder:
                writable_dir(folder, what)
    except UserError as e:
        return fail(str(e))

    from preprocess.batch import OutputWriteError, run_batch
    from preprocess.detect import ModelFileMissing
    from data.images import list_images
    if not list_images(args.data_path):
        return fail(f"no image files (.jpg .png .bmp .webp .tif .gif) under {args.data_path}")
    pipe_kwargs = dict(detector=args.detector, landmarks=args.landmarks, seg_model=args.seg_model,
                       seg_input=args.seg_input, seg_output=args.seg_output, size=args.size,
                       faces=args.faces, device=args.device)
    try:
        # build once in this process so that a missing model file is reported before any work
        if args.workers > 1:
            from preprocess.pipeline import FacePipeline
            FacePipeline(**pipe_kwargs)
        counts, rows, skipped = run_batch(args.data_path, args.save_path, pipe_kwargs, workers=args.workers,
                                          overwrite=args.overwrite, rgba_path=args.save_rgba,
                                          progress=not args.quiet)
    except (ModelFileMissing, ValueError, OutputWriteError) as e:
        return fail(str(e))
    except OSError as e:   # the manifest itself could not be written
        return fail(f"cannot write under {args.save_path}: {os_error_text(e)}")
    except KeyboardInterrupt:
        return fail("interrupted: rerun the same command to resume", 130)
    bad = {k: v for k, v in rows.items() if v["status"] != "ok"}
    for rel in sorted(bad):
        print(f"  skipped {rel}: {bad[rel]['status']}" + (f" ({bad[rel]['reason']})" if "reason" in bad[rel] else ""))
    summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    print(f"{len(rows)} inputs ({skipped} already done): {summary} -> {args.save_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
