#!/usr/bin/env python
"""FID and KID of generated images, computed as pytorch-fid computes them (same network, same image reading,
same formula), on MindSpore.

  python eval.py --real dataset/selfie2anime/testB --fake out/ugatit --kid
  python eval.py --real stats/celeba_train.npz --fake samples/ --json fid.json
  python eval.py --save_stats dataset/celeba/img_align_celeba stats/celeba_train.npz   # reusable statistics

The Inception network is pytorch-fid's FID network: convert its weights once with
  python convert_weights.py --src pt_inception-2015-12-05-6726825d.pth --dst pretrained_models/inception
Attribute editing accuracy (the STGAN paper's measure) of an STGAN, AttGAN or StarGAN model, read by an
attribute classifier trained with `python train.py --model attr_classifier --dataset celeba`:
  python eval.py --attr_accuracy --checkpoint runs/celeba_stgan/model --classifier runs/celeba_attr/model \
      --dataset dataset/celeba
  python eval.py --classifier runs/celeba_attr/model --dataset dataset/celeba     # the classifier's own accuracy
Each test image (CelebA's test partition) has each attribute toggled; an edit counts when the classifier reads
the target value. Also printed: how often the other attributes are read as kept, and the classifier's accuracy
on the unedited images (the ceiling).

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
    a = ap.add_argument_group("attribute editing accuracy (STGAN, AttGAN, StarGAN)")
    a.add_argument("--attr_accuracy", action="store_true", help="score the editing model --checkpoint")
    a.add_argument("--checkpoint", help="the editing model dir (model.json)")
    a.add_argument("--classifier", help="an attribute classifier model dir (train.py --model attr_classifier)")
    a.add_argument("--dataset", help="CelebA's layout: list_attr_celeba.txt, img_align_celeba/, "
                                     "list_eval_partition.txt (its test partition is scored)")
    a.add_argument("--intensity", type=float, default=1.0, help="STGAN / AttGAN edit strength (default 1)")
    a.add_argument("--max_images", type=int, default=None, help="score the first N test images only")
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


def _write_json(path, result):
    """Exit code 0, after writing `result` to `path` (if given) atomically; a one-line error if it cannot."""
    from core.files import write_json_atomic
    if path:
        try:
            write_json_atomic(path, result)
        except OSError as e:
            return cli.fail(f"cannot write {path}: {cli.os_error_text(e)}")
    return 0


def attribute_main(args):
    """--classifier [--attr_accuracy --checkpoint]: the classifier's accuracy, or the editing accuracy."""
    if args.attr_accuracy and not args.checkpoint:
        return cli.fail("--attr_accuracy needs --checkpoint (the editing model) and --classifier")
    if not args.dataset:
        return cli.fail("--classifier needs --dataset (CelebA's layout: list_attr_celeba.txt, img_align_celeba/)")
    if args.max_images is not None and args.max_images < 1:
        return cli.fail("--max_images must be at least 1")
    for path in [args.classifier, args.dataset] + ([args.checkpoint] if args.attr_accuracy else []):
        if not os.path.exists(path):
            return cli.fail(f"not found: {path}")
    if args.json:
        try:
            cli.writable_dir(os.path.dirname(os.path.abspath(args.json)), "the output folder")
        except cli.UserError as e:
            return cli.fail(str(e))
    from core import runtime
    runtime.configure(args.mode, args.device_target)
    from tqdm import tqdm

    from data.folders import DataError
    from data.images import ImageReadError
    from metrics.attributes import (AttributeModelError, classifier_accuracy, editing_accuracy, load_classifier,
                                    load_editor, report, test_split)
    try:
        clf = load_classifier(args.classifier)
        if not args.attr_accuracy:
            x, attrs = test_split(args.dataset, clf.names, clf.size, clf.crop, args.max_images)
            acc = classifier_accuracy(clf.read, x, attrs, clf.names, clf.names)
            for n, v in acc.items():
                print(f"{n:<20} {v:.3f}")
            mean = float(sum(acc.values()) / len(acc))
            print(f"{'mean':<20} {mean:.3f}  ({len(x)} test images)")
            result = {"classifier_accuracy": acc, "mean_accuracy": mean, "n_images": len(x)}
        else:
            ed = load_editor(args.checkpoint, args.intensity)
            known = [n for n in ed.names if n in clf.names]
            if not known:
                return cli.fail(f"the classifier reads none of the model's attributes ({' '.join(ed.names)})")
            missing = [n for n in ed.names if n not in clf.names]
            if missing:
                print(f"not scored (the classifier does not read them): {' '.join(missing)}")
            if clf.crop != ed.crop:
                print(f"note: the classifier was trained on the {clf.crop} crop, the model edits the {ed.crop} crop")
            x, attrs = test_split(args.dataset, ed.names, ed.size, ed.crop, args.max_images)
            print(f"model: {ed.label}; {len(x)} test images, intensity {args.intensity:g}")
            real = classifier_accuracy(clf.read, x, attrs, ed.names, clf.names)
            with tqdm(total=len(known), desc="attributes", disable=args.quiet, dynamic_ncols=True) as bar:
                scores = editing_accuracy(ed.edit, clf.read, x, attrs, ed.names, clf.names, progress=bar)
            table, result = report(scores, real)
            result["n_images"] = len(x)
            print(table)
    except (AttributeModelError, DataError, ImageReadError) as e:
        return cli.fail(str(e))
    return _write_json(args.json, result)


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.classifier or args.attr_accuracy:
        return attribute_main(args)
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

    from core.files import atomic_write
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
    return _write_json(args.json, result)


if __name__ == "__main__":
    sys.exit(main())
