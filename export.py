#!/usr/bin/env python
"""Export a model directory's network to ONNX or MINDIR, for deployment without this toolkit.

  python export.py --checkpoint pretrained_models/photo2cartoon --format ONNX          # genA2B -> genA2B.onnx
  python export.py --checkpoint runs/makeup_cyclegan/model --net G_B --format MINDIR --output makeup_off.mindir
  python export.py --checkpoint runs/celeba_stgan/model --format ONNX --batch 4
  python export.py --checkpoint pretrained_models/photo2cartoon --format ONNX --dynamic_batch

Every family's generator exports (and the FID Inception network, the attribute classifier). The network runs
on MindSpore's own operators in inference mode, with instance norm, LIN, adaLIN and Soft-AdaLIN written in
plain reductions the exporter knows; the file is then run (onnxruntime, or mindspore.load) against the network
on random inputs and the largest difference is printed (--no_check skips it). ONNX files carry named inputs
("image", "attributes", "labels", "z", "label") and their meaning in the metadata key "facegan"; test.py
--onnx FILE runs an exported image-to-image generator on photos without MindSpore.
StarGAN exports with each image's own statistics in its norms (as its test script runs; --stats running for
the running ones). Pix2Pix's test-time dropout is not exported (the export is deterministic).
"""
import argparse
import os
import sys

from core import cli


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True, help="a model dir (model.json + <net>.ckpt)")
    ap.add_argument("--net", default=None, help="the network to export (default: the generator: genA2B, G_A or G)")
    ap.add_argument("--format", default="ONNX", type=str.upper, choices=["ONNX", "MINDIR"])
    ap.add_argument("--output", default=None, help="the file (default: CHECKPOINT/<net>.onnx or .mindir)")
    ap.add_argument("--batch", type=int, default=1, help="batch size of the exported graph (default 1)")
    ap.add_argument("--img_size", type=int, default=None, help="input side (default: the model's)")
    ap.add_argument("--dynamic_batch", action="store_true", help="ONNX: any batch size at run time")
    ap.add_argument("--stats", choices=["instance", "running"], default="instance",
                    help="StarGAN's InstanceNorm statistics (default instance, as its test script)")
    ap.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    ap.add_argument("--no_check", action="store_true", help="skip running the exported file against the network")
    args = ap.parse_args(argv)
    if not os.path.isfile(os.path.join(args.checkpoint, "model.json")):
        return cli.fail(f"no model dir at {args.checkpoint} (no model.json)")
    if args.dynamic_batch and args.format != "ONNX":
        return cli.fail("--dynamic_batch is for ONNX; a MINDIR file keeps the --batch it was exported with")
    from core import runtime
    runtime.configure("graph", "CPU")
    from deploy.exporter import FORMATS, ExportError, check_export, export_network, plan
    try:
        _, name, _, _, _ = plan(args.checkpoint, args.net, args.batch, args.img_size)
        output = args.output or os.path.join(args.checkpoint, f"{name}{FORMATS[args.format]}")
        if os.path.exists(output) and not args.overwrite:
            return cli.fail(f"{output} exists (pass --overwrite to replace it)")
        cli.writable_dir(os.path.dirname(os.path.abspath(output)), "the output folder")
        folder = os.path.dirname(os.path.abspath(output))
        staged = os.path.join(folder, f".export-{os.getpid()}-{os.path.basename(output)}")
        try:        # exported and checked under a temporary name; only a file that passed replaces `output`
            info = export_network(args.checkpoint, args.net, args.format, staged, args.batch, args.img_size,
                                  args.dynamic_batch, args.stats == "instance")
            shapes = ", ".join(f"{i['name']} {tuple(i['shape'])}" for i in info["inputs"])
            print(f"{name} [{info['model']}] ({args.format}; inputs: {shapes}; output: {info['output']['name']})")
            if not args.no_check:
                try:
                    diff = check_export(staged, args.checkpoint, args.net, args.batch, args.img_size,
                                        instance_stats=args.stats == "instance", dynamic_batch=args.dynamic_batch)
                except ExportError as e:
                    hint = "; export with --batch N instead" if args.dynamic_batch else ""
                    return cli.fail(f"{e} (nothing written){hint}")
                print(f"checked against the network on random inputs: max |difference| {diff:.2e}")
                if diff > 1e-3:
                    return cli.fail(f"the exported file differs from the network by {diff:.2e} (nothing written)")
            os.replace(staged, output)
            print(f"-> {output}")
        finally:
            if os.path.exists(staged):
                os.remove(staged)
    except (ExportError, cli.UserError) as e:
        return cli.fail(str(e))
    return 0


if __name__ == "__main__":
    sys.exit(main())
