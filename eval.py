#!/usr/bin/env python
"""FID and KID of generated images, computed as pytorch-fid computes them (same network, same image reading,
same formula), on MindSpore.

  python eval.py --real dataset/selfie2anime/testB --fake out/ugatit --kid
  python eval.py --real stats/celeba_train.npz --fake samples/ --json fid.json
  python eval.py --save_stats dataset/celeba/img_align_celeba stats/celeba_train.npz   # reusable statistics

The Inception network is pytorch-fid's FID network: convert its weights once with
  python convert_weights.py --src pt_inception-2015-12-05-6726825d.pth --dst pretrained_models/inception
Images are read with PIL as RGB in [0, 1] at their own size (the network resizes to 299); a folder's files
are taken as pytorch-fid takes them (its extensions, not recursive). Prints FID (and KID mean +- std) and
writes them with the image counts to --json. Statistics files are pytorch-fid's .npz (mu, sigma).
"""
import argparse
import os
import sys

from core import cli

ROOT = os.path.dirname(os.path.abspath(__file__))


def build_parser():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--real", help="folder of real images, or pytorch-fid statistics (.npz)")
    ap.add_argument("--fake", help="folder of generated images")
    ap.add_argument("--save_stats", nargs=2, metavar=("DIR", "OUT.npz"),
                    help="write the statistics of DIR's images to OUT.npz and stop")
    ap.add_argument("--inception", default=os.path.join(ROOT, "pretrained_models", "inception"),
                    help="converted FID Inception model dir (default pretrained_models/inception)")
    ap.add_argument("--dims", type=int, default=2048, choices=[64, 192, 768, 2048],
                    help="feature block (default 2048: pool3)")
    ap.add_argument("--batch_size", type=int, default=50)
    ap.add_argument("--kid", action="store_true", help="also the Kernel Inception Distance")
    ap.add_argument("--kid_subsets", type=int, default=100)
    ap.add_argument("--kid_subset_size", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0, help="KID's subset sampling")
    ap.add_argument("--json", default=None, help="write the results here")
    ap.add_argument("--mode", choices=["graph", "pynative"], default="graph")
    ap.add_argument("--device_target", default="auto")
    ap.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    return ap


def _stats(extractor, folder, args, keep, what):
    from tqdm import tqdm

    from metrics.fid import MetricError, list_fid_images
    files = list_fid_images(folder)
    if len(files) <= args.dims:
        raise MetricError(f"{what} {folder}: {len(files)} images give a singular covariance in {args.dims} "
                          f"dimensions; FID needs more images than --dims (use --dims 64/192/768 for small sets)")
    with tqdm(total=len(files), desc=what, unit="img", disable=args.quiet, dynamic_ncols=True) as bar:
        return extractor.stats_of(files, args.batch_size, keep_features=keep, progress=bar)


def main(argv=None):
    args = build_parser().parse_args(argv)
    from metrics.fid import (FeatureExtractor, MetricError, frechet_distance, kernel_inception_distance,
                             load_stats)
    if args.save_stats is None and not (args.real and args.fake):
        return cli.fail("give --real and --fake (or --save_stats DIR OUT.npz)")
    if args.batch_size < 1 or args.kid_subsets < 1 or args.kid_subset_size < 2:
        return cli.fail("--batch_size and --kid_subsets must be at least 1, --kid_subset_size at least 2")
    real_is_stats = bool(args.real) and args.real.endswith(".npz")
    if args.kid and real_is_stats:
        return cli.fail("--kid needs the real images' features: give --real a folder, not statistics")
    for path in ([args.real, args.fake] if args.save_stats is None else [args.save_stats[0]]):
        if not os.path.exists(path):
            return cli.fail(f"not found: {path}")
    out = args.save_stats[1] if args.save_stats else args.json
    if out:
        try:
            cli.writable_dir(os.path.dirname(os.path.abspath(out)), "the output folder")
        except cli.UserError as e:
            return cli.fail(str(e))
    from core import runtime
    runtime.configure(args.mode, args.device_target)
    import numpy as np

    from core.files import atomic_write, write_json_atomic
    try:
        extractor = FeatureExtractor(args.inception, args.dims)
        if args.save_stats:
            st = _stats(extractor, args.save_stats[0], args, False, "images")

            def write(tmp):
                with open(tmp, "wb") as f:
                    np.savez_compressed(f, mu=st.mu, sigma=st.sigma)
            atomic_write(args.save_stats[1], write)
            print(f"{st.n} images -> {args.save_stats[1]} (mu, sigma; {args.dims} dims)")
            return 0
        real = load_stats(args.real) if real_is_stats else _stats(extractor, args.real, args, args.kid, "real")
        fake = _stats(extractor, args.fake, args, args.kid, "fake")
        result = {"fid": frechet_distance(real.mu, real.sigma, fake.mu, fake.sigma), "kid_mean": None,
                  "kid_std": None, "n_real": real.n, "n_fake": fake.n, "dims": args.dims}
        if args.kid:
            result["kid_mean"], result["kid_std"] = kernel_inception_distance(
                real.features, fake.features, args.kid_subsets, args.kid_subset_size, args.seed)
    except MetricError as e:
        return cli.fail(str(e))
    except OSError as e:
        return cli.fail(f"cannot write {out}: {cli.os_error_text(e)}")
    line = f"FID {result['fid']:.4f}"
    if args.kid:
        line += f"  KID {result['kid_mean']:.6f} +- {result['kid_std']:.6f}"
    print(line + f"  ({result['n_real'] or 'stats of'} real, {result['n_fake']} fake, {args.dims} dims)")
    if args.json:
        try:
            write_json_atomic(args.json, result)
        except OSError as e:
            return cli.fail(f"cannot write {args.json}: {cli.os_error_text(e)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
