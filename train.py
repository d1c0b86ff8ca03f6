#!/usr/bin/env python
"""Train a face GAN with MindSpore (GRAPH_MODE by default), resumable.

  python train.py --dataset photo2cartoon                         # dataset/photo2cartoon/{trainA,trainB,testA,testB}
  python train.py --dataset photo2cartoon --pretrained_model pretrained_models/photo2cartoon   # fine-tune
  python train.py --dataset selfie2anime --arch ugatit --iterations 100000
  python train.py --dataset photo2cartoon --resume                # continue runs/photo2cartoon_photo2cartoon
  python train.py --model cyclegan --dataset makeup               # dataset/makeup/{trainA,trainB}
  python train.py --model pix2pix --dataset facades --direction BtoA
  python train.py --model stgan --dataset celeba                  # list_attr_celeba.txt + img_align_celeba/
  python train.py --model stgan --help                            # a family's own options

Every family trains with its published defaults (its --arch picks among them); a flag overrides one, and a
flag another family owns is refused. The run directory gets config.json, samples/, loss_curve.png,
checkpoints/ (all nets + optimiser states, atomic), skipped_files.txt (if any) and model/ (an inference model
dir for test.py --checkpoint). Ctrl-C or SIGTERM saves a checkpoint and exits; --resume continues exactly.
"""
import argparse
import functools
import json
import os
import sys

from core import cli

ROOT = os.path.dirname(os.path.abspath(__file__))
# schedule and size flags every family has (defaults: the family's published values)
COMMON_FLAGS = (("iterations", int), ("batch_size", int), ("img_size", int), ("lr", float), ("beta1", float),
                ("beta2", float), ("weight_decay", float), ("seed", int), ("print_freq", int), ("save_freq", int),
                ("sample_freq", int))
RUNTIME_KEYS = ("dataset", "dataset_root", "model", "arch", "pretrained_model", "result_dir", "run_name", "resume",
                "no_decay", "mode", "device_target", "workers", "threads", "quiet", "eval_freq", "inception",
                "eval_dims", "distributed", "amp")


def _defaults_text(family, name):
    vals = {arch: cfg.get(name) for arch, cfg in family.archs.items()}
    if len(set(map(repr, vals.values()))) == 1:
        return f"default {next(iter(vals.values()))}"
    return "default " + ", ".join(f"{v} ({a})" for a, v in vals.items())


def build_parser(family):
    from families import list_families, get_family
    others = "; ".join(f"{n}: {get_family(n).summary}" for n in list_families())
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=f"model families ({others}). python train.py --model NAME --help shows "
                                        f"NAME's options.")
    ap.add_argument("--dataset", required=True, help="dataset name under --dataset_root, or a path")
    ap.add_argument("--dataset_root", default=os.path.join(ROOT, "dataset"))
    ap.add_argument("--model", default="ugatit", choices=list_families(), help="model family (default ugatit)")
    ap.add_argument("--arch", default=None, choices=list(family.archs),
                    help=f"{family.name}: the design and its published defaults (default {family.default_arch})")
    ap.add_argument("--pretrained_model", default=None,
                    help="model dir (model.json + .ckpt) to fine-tune from, e.g. a converted checkpoint")
    ap.add_argument("--result_dir", default=os.path.join(ROOT, "runs"))
    ap.add_argument("--run_name", default=None, help="default: <dataset>_<arch>")
    ap.add_argument("--resume", action="store_true", help="continue from the run's latest checkpoint")
    g = ap.add_argument_group("schedule and sizes (defaults: the published values of the family's --arch)")
    for flag, typ in COMMON_FLAGS:
        g.add_argument("--" + flag, type=typ, default=None, help=_defaults_text(family, flag))
    g.add_argument("--no_decay", action="store_true", help="constant learning rate")
    f = ap.add_argument_group(f"{family.name} ({family.summary})")
    for o in family.options:
        f.add_argument("--" + o.name, type=o.type, default=None, choices=o.choices, nargs=o.nargs,
                       help=f"{o.help} ({_defaults_text(family, o.name)})")
    e = ap.add_argument_group("evaluation while training (FID / KID on the test split; metrics/during_training.py)")
    e.add_argument("--eval_freq", type=int, default=0, help="every N iterations and at the end (default 0: off)")
    e.add_argument("--inception", default=os.path.join(ROOT, "pretrained_models", "inception"),
                   help="converted FID Inception model dir (without it evaluation is off, with one log line)")
    e.add_argument("--eval_dims", type=int, default=2048, choices=[64, 192, 768, 2048],
                   help="FID feature block (2048 needs more than 2048 test images per direction)")
    r = ap.add_argument_group("runtime")
    r.add_argument("--mode", choices=["graph", "pynative"], default="graph")
    r.add_argument("--device_target", default="auto", help="CPU, GPU, Ascend or auto")
    r.add_argument("--workers", type=int, default=2, help="parallel decoding workers")
    r.add_argument("--threads", type=int, default=None, help="MindSpore CPU threads (runtime_num_threads)")
    r.add_argument("--amp", choices=["O0", "O1", "O2"], default=None,
                   help="mixed precision with dynamic loss scaling, for GPUs: O1 float16 convolutions, O2 float16 "
                        "but the norms (default O0: float32; training/amp.py)")
    r.add_argument("-q", "--quiet", action="store_true", help="no progress bar (log lines instead)")
    r.add_argument("--distributed", action="store_true",
                   help="data-parallel worker (automatic under msrun: msrun --worker_num N --local_worker_num N "
                        "train.py ...; --batch_size is per worker)")
    return ap


def parse_args(argv):
    return cli.parse_family_args(argv, build_parser, lambda fam: [o.name for o in fam.options])


def resolve_config(args, family):
    """The family's published defaults for --arch, overridden by the flags given; returns (cfg, explicit)."""
    cfg = family.defaults(args.arch or family.default_arch)
    explicit = {}
    for k, v in vars(args).items():
        if v is None or k in RUNTIME_KEYS:
            continue
        cfg[k] = v
        explicit[k] = v
    cfg.update(mode=args.mode, workers=args.workers, amp=args.amp or "O0")
    if args.amp:
        explicit["amp"] = args.amp
    return cfg, explicit


def apply_pretrained(cfg, explicit, directory, family):
    from models import NetworkLoadError, read_model_json
    path = directory
    if not os.path.isfile(os.path.join(path, "model.json")) and os.path.isfile(os.path.join(path, cfg["arch"], "model.json")):
        path = os.path.join(path, cfg["arch"])
    try:
        meta = read_model_json(path)
    except NetworkLoadError as e:
        raise cli.UserError(f"--pretrained_model: {e}") from None
    if meta.get("arch") != cfg["arch"]:
        raise cli.UserError(f"--pretrained_model {path} is a {meta.get('arch')} model, but --arch is {cfg['arch']}")
    problem = family.config_from_pretrained(cfg, explicit, meta)
    if problem:
        raise cli.UserError(problem)
    return path, meta


def load_pretrained(nets, path, meta):
    """Copy every network of the pretrained model dir into the training nets of the same name, strictly."""
    from models import load_params_strict, read_params
    loaded = []
    for name, net in nets.items():
        if name in meta["networks"]:
            params = read_params(path, name)
            load_params_strict(net, {f"{name}.{k}": v for k, v in params.items()}, f"{path}/{name}.ckpt")
            loaded.append(name)
    return loaded


def adopt_resumed(cfg, explicit, family, latest, workers=1):
    """The run being resumed decides the network shape and the batch; an explicit flag that disagrees is an
    error, and so is another number of data-parallel workers (it would change every batch from here on)."""
    with open(latest[:-5] + ".json", encoding="utf-8") as f:
        saved = json.load(f)["config"]
    was = int(saved.get("world_size", 1))
    if was != workers:
        how = "without msrun" if was == 1 else f"with msrun --worker_num {was}"
        raise cli.UserError(f"the run being resumed was trained on {was} worker{'s' * (was > 1)} and this is "
                            f"{workers}: resume it {how} (another count would change its batches)")
    for k in ("arch",) + tuple(family.net_keys) + ("batch_size", "amp"):
        if k in saved and saved[k] != cfg.get(k):
            if k in explicit:
                raise cli.UserError(f"--{k} {cfg.get(k)} does not match the run being resumed ({k}={saved[k]})")
            cfg[k] = saved[k]
    cfg["seed"] = saved["seed"]


def _evaluator(args, family, cfg, dataset_dir, log):
    """(evaluator, eval_freq) for --eval_freq, or (None, 0) with the reason logged."""
    if not args.eval_freq:
        return None, 0
    if args.eval_freq < 0:
        raise cli.UserError("--eval_freq must be 0 (off) or positive")
    sets = family.eval_sets(cfg, dataset_dir)
    if not sets:
        log(f"--eval_freq: no test split of {dataset_dir} for {family.name} to score (see docs/families.md): "
            f"evaluation off")
        return None, 0
    if not os.path.isfile(os.path.join(args.inception, "model.json")):
        log(f"--eval_freq: no Inception weights at {args.inception} (convert pytorch-fid's "
            f"pt_inception-2015-12-05-6726825d.pth with convert_weights.py): evaluation off")
        return None, 0
    from metrics.during_training import TrainingEvaluator
    from metrics.fid import MetricError
    try:
        ev = TrainingEvaluator(sets, args.inception, args.eval_dims)
    except MetricError as e:
        raise cli.UserError(str(e)) from None
    log(f"evaluating every {args.eval_freq} iterations: FID / KID of " + ", ".join(
        f"{s.name} ({len(s.sources)} sources, {len(s.real_files)} reals)" for s in sets) + f", {args.eval_dims} dims")
    return ev, args.eval_freq


def main(argv=None):
    from training import distributed
    if distributed.is_scheduler():       # msrun's scheduler process runs this script too: it only serves
        distributed.serve_scheduler()
        return 0
    family, args = parse_args(argv)
    cfg, explicit = resolve_config(args, family)
    for k in ("iterations", "batch_size", "print_freq", "save_freq", "sample_freq"):
        if cfg.get(k) is not None and cfg[k] < 1:
            return cli.fail(f"--{k} must be at least 1")
    if cfg["amp"] == "O1" and family.second_order_nets(cfg):
        return cli.fail(f"--amp O1 does not compile for {family.name}: MindSpore 2.10 meets float16 and float32 "
                        "gradients in one sum while differentiating its WGAN-GP critic; use --amp O2")
    dataset_dir = args.dataset if os.path.isdir(args.dataset) else os.path.join(args.dataset_root, args.dataset)
    if not os.path.isdir(dataset_dir) and args.dataset in family.builtin_datasets:
        dataset_dir = args.dataset          # a dataset shipped inside a package (e.g. scikit-learn's digits)
    elif not os.path.isdir(dataset_dir):
        return cli.fail(f"dataset not found: {dataset_dir} (--model {family.name} expects {family.data_layout})")
    problem = family.adapt_config(cfg, explicit, dataset_dir) or family.check_config(cfg)
    if problem:
        return cli.fail(problem)
    run_dir = os.path.join(args.result_dir, args.run_name or f"{os.path.basename(os.path.normpath(dataset_dir))}_{cfg['arch']}")

    from training.checkpoint import CheckpointMismatch, latest_checkpoint
    from data.folders import DataError
    latest = latest_checkpoint(run_dir)
    created = not os.path.exists(run_dir)
    try:
        cli.writable_dir(run_dir, "the run directory")
    except cli.UserError as e:
        return cli.fail(str(e))
    if latest and not args.resume:
        return cli.fail(f"{run_dir} already holds a training run: pass --resume to continue it, or --run_name NEW")
    pretrained = None
    try:
        if args.resume and latest:
            adopt_resumed(cfg, explicit, family, latest, distributed.expected_size(args.distributed))
        elif args.pretrained_model:
            pretrained = apply_pretrained(cfg, explicit, args.pretrained_model, family)
        data = family.data(cfg, dataset_dir)
    except (cli.UserError, DataError) as e:
        if created:            # nothing of a run that never started is left behind
            try:
                os.rmdir(run_dir)
            except OSError:
                pass
        return cli.fail(str(e))
    family.finalize_schedule(cfg, data.n_train)
    if args.no_decay:
        cfg["decay_start"] = cfg["iterations"]

    from core import runtime
    device = runtime.configure(args.mode, args.device_target, args.threads)
    rank, workers = distributed.setup(args.distributed)
    cfg.update(world_size=workers, global_batch_size=cfg["batch_size"] * workers)
    import mindspore as ms
    from models import NetworkLoadError
    from training.engine import GANTrainer
    ms.set_seed(cfg["seed"])
    nets = family.build_nets(cfg)
    log = functools.partial(print, flush=True) if rank == 0 else (lambda *a, **k: None)
    try:
        if pretrained:
            loaded = load_pretrained(nets, *pretrained)
            log(f"fine-tuning from {pretrained[0]}: {', '.join(loaded)}")
        trainer = GANTrainer(family, cfg, run_dir, nets, data.factory, data.samples, log,
                             *_evaluator(args, family, cfg, dataset_dir, log),
                             compile_cache=[os.path.realpath(dataset_dir)])
        if args.resume and latest:
            trainer.resume(latest)
            log(f"resumed from {latest} at iteration {trainer.iteration}")
    except (NetworkLoadError, CheckpointMismatch, cli.UserError) as e:
        return cli.fail(str(e))
    for n in data.notes + family.notes(cfg):
        log(n)
    from core.files import write_json_atomic, write_text_atomic
    from training.engine import TrainingStopped
    for path, why in data.skipped[:20]:
        log(f"  skipped {path}: {why}")
    if len(data.skipped) > 20:
        log(f"  ... and {len(data.skipped) - 20} more")
    if cfg["amp"] != "O0" and device == "CPU":
        log(f"--amp {cfg['amp']}: float16 on a CPU is computed without hardware support, slower than float32 "
            "(mixed precision is meant for GPUs)")
    where = f"{device}, {workers} data-parallel workers" if workers > 1 else device
    log(f"{family.name}/{cfg['arch']} on {where} ({args.mode} mode), run dir {run_dir}")
    try:
        if data.skipped and rank == 0:
            write_text_atomic(os.path.join(run_dir, "skipped_files.txt"),
                              "".join(f"{why}\t{path}\n" for path, why in data.skipped))
            log(f"skipped files listed in {os.path.join(run_dir, 'skipped_files.txt')}")
        if rank == 0:
            write_json_atomic(os.path.join(run_dir, "config.json"), cfg)
        done = trainer.train(progress=not args.quiet and rank == 0)
    except TrainingStopped as e:
        return cli.fail(str(e))
    except OSError as e:
        return cli.fail(f"cannot write to the run directory {run_dir}: {cli.os_error_text(e)}")
    if done:
        log(f"finished {trainer.iteration} iterations; inference model: {os.path.join(run_dir, 'model')}")
    return 0 if done else 130


if __name__ == "__main__":
    sys.exit(main())
