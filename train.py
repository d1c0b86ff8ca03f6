#!/usr/bin/env python
"""Train a face GAN with MindSpore (GRAPH_MODE by default), resumable.

  python train.py --dataset photo2cartoon                         # dataset/photo2cartoon/{trainA,trainB,testA,testB}
  python train.py --dataset photo2cartoon --pretrained_model pretrained_models/photo2cartoon   # fine-tune
  python train.py --dataset selfie2anime --arch ugatit --iterations 100000
  python train.py --dataset photo2cartoon --resume                # continue the run in runs/photo2cartoon_photo2cartoon

A = photos, B = the target style. Published defaults per --arch (photo2cartoon: adv 1, cycle 50, identity 10,
CAM 1000, face-ID 1; ugatit: adv 1, cycle 10, identity 10, CAM 1000), Adam 1e-4 (0.5, 0.999), weight decay
1e-4, linear lr decay to 0 over the second half. The run directory gets config.json, samples/, loss_curve.png,
checkpoints/ (all nets + optimiser state, atomic) and model/ (an inference model dir for test.py --checkpoint).
Ctrl-C or SIGTERM saves a checkpoint and exits; --resume continues exactly.
"""
import argparse
import functools
import json
import os
import sys

ROOT = os.path.dirname(os.path.abspath(__file__))


def build_parser():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", required=True, help="dataset name under --dataset_root, or a path")
    ap.add_argument("--dataset_root", default=os.path.join(ROOT, "dataset"))
    ap.add_argument("--model", default="ugatit", choices=["ugatit"], help="model family")
    ap.add_argument("--arch", default="photo2cartoon", choices=["photo2cartoon", "ugatit"],
                    help="generator design and its published loss weights")
    ap.add_argument("--pretrained_model", default=None,
                    help="model dir (model.json + .ckpt) to fine-tune from, e.g. a converted checkpoint")
    ap.add_argument("--faceid_weights", default=None,
                    help="MobileFaceNet model dir (convert_weights.py --arch mobilefacenet); off if absent")
    ap.add_argument("--result_dir", default=os.path.join(ROOT, "runs"))
    ap.add_argument("--run_name", default=None, help="default: <dataset>_<arch>")
    ap.add_argument("--resume", action="store_true", help="continue from the run's latest checkpoint")
    g = ap.add_argument_group("schedule and sizes (defaults: the published values for --arch)")
    for flag, typ in (("iterations", int), ("batch_size", int), ("img_size", int), ("ngf", int),
                      ("n_blocks", int), ("lr", float), ("weight_decay", float), ("seed", int),
                      ("print_freq", int), ("save_freq", int), ("sample_freq", int),
                      ("n_dis_global", int), ("n_dis_local", int)):
        g.add_argument("--" + flag, type=typ, default=None)
    g.add_argument("--light", default=None, type=lambda s: s.lower() in ("1", "true", "yes"),
                   help="light generator (true/false)")
    g.add_argument("--no_decay", action="store_true", help="constant learning rate")
    w = ap.add_argument_group("loss weights")
    for flag in ("adv_weight", "cycle_weight", "identity_weight", "cam_weight", "faceid_weight"):
        w.add_argument("--" + flag, type=float, default=None)
    r = ap.add_argument_group("runtime")
    r.add_argument("--mode", choices=["graph", "pynative"], default="graph")
    r.add_argument("--device_target", default="auto", help="CPU, GPU, Ascend or auto")
    r.add_argument("--workers", type=int, default=2, help="parallel decoding workers")
    r.add_argument("--threads", type=int, default=None, help="MindSpore CPU threads (runtime_num_threads)")
    r.add_argument("-q", "--quiet", action="store_true", help="no progress bar (log lines instead)")
    return ap


def resolve_config(args, family):
    cfg = dict(family.DEFAULTS[args.arch])
    cfg["arch"] = args.arch
    explicit = {}
    for k in list(cfg) + ["n_blocks", "light"]:
        v = getattr(args, k, None)
        if v is not None:
            cfg[k] = v
            explicit[k] = v
    cfg.setdefault("n_blocks", 4)
    cfg["decay_start"] = cfg["iterations"] if args.no_decay else cfg["iterations"] // 2
    cfg.update(mode=args.mode, workers=args.workers, faceid_weights=args.faceid_weights)
    return cfg, explicit


class UserError(Exception):
    pass


def apply_pretrained(cfg, explicit, directory, family):
    from models import NetworkLoadError, read_model_json
    path = directory
    if not os.path.isfile(os.path.join(path, "model.json")) and os.path.isfile(os.path.join(path, cfg["arch"], "model.json")):
        path = os.path.join(path, cfg["arch"])
    try:
        meta = read_model_json(path)
    except NetworkLoadError as e:
        raise UserError(f"--pretrained_model: {e}") from None
    if meta.get("arch") != cfg["arch"]:
        raise UserError(f"--pretrained_model {path} is a {meta.get('arch')} model, but --arch is {cfg['arch']}")
    gen = meta["networks"].get("genA2B") or meta["networks"].get("genB2A")
    if gen:
        for k in ("ngf", "light", "n_blocks", "img_size"):
            if k not in gen["config"] or (k == "img_size" and gen["config"].get("light")):
                continue
            if k in explicit and explicit[k] != gen["config"][k]:
                raise UserError(f"--{k} {explicit[k]} does not match the pretrained model ({k}={gen['config'][k]})")
            cfg[k] = gen["config"][k]
    return path, meta


def load_pretrained(nets, path, meta):
    from models import load_network
    loaded = []
    for name, net in nets.items():
        if name not in meta["networks"]:
            continue
        src = {p.name: p for p in load_network(path, name).get_parameters()}
        for p in net.get_parameters():
            p.set_data(src[p.name[len(name) + 1:]].value())
        loaded.append(name)
    return loaded


def main(argv=None):
    args = build_parser().parse_args(argv)
    import cli_common  # noqa: F401
    from cli_common import fail
    from training.families import FAMILIES
    family = FAMILIES[args.model]
    cfg, explicit = resolve_config(args, family)
    for k in ("iterations", "batch_size", "print_freq", "save_freq", "sample_freq"):
        if cfg[k] < 1:
            return fail(f"--{k} must be at least 1")
    if cfg["img_size"] < 32 or cfg["img_size"] % 16:
        return fail("--img_size must be a multiple of 16 and at least 32 (the hourglass pools 16x)")
    problem = family.check_config(cfg)
    if problem:
        return fail(problem)
    dataset_dir = args.dataset if os.path.isdir(args.dataset) else os.path.join(args.dataset_root, args.dataset)
    if not os.path.isdir(dataset_dir):
        return fail(f"dataset not found: {dataset_dir} (expected trainA/ trainB/ testA/ testB/ inside)")
    run_dir = os.path.join(args.result_dir, args.run_name or f"{os.path.basename(os.path.normpath(dataset_dir))}_{cfg['arch']}")

    from training.checkpoint import CheckpointMismatch, latest_checkpoint
    from training.data import DataError
    latest = latest_checkpoint(run_dir)
    if latest and not args.resume:
        return fail(f"{run_dir} already holds a training run: pass --resume to continue it, or --run_name NEW")
    if args.resume and latest:
        with open(latest[:-5] + ".json", encoding="utf-8") as f:
            saved = json.load(f)["config"]
        for k in family.NET_KEYS + ("batch_size",):
            if k in saved and saved[k] != cfg.get(k) and k not in explicit:
                cfg[k] = saved[k]
            elif k in saved and saved[k] != cfg.get(k):
                return fail(f"--{k} {cfg.get(k)} does not match the run being resumed ({k}={saved[k]})")
        cfg["seed"] = saved["seed"]
    pretrained = None
    try:
        if args.pretrained_model and not (args.resume and latest):
            pretrained = apply_pretrained(cfg, explicit, args.pretrained_model, family)
        if cfg.get("faceid_weights") and not os.path.isfile(os.path.join(cfg["faceid_weights"], "model.json")):
            raise UserError(f"--faceid_weights {cfg['faceid_weights']} is not a converted MobileFaceNet dir "
                            f"(python convert_weights.py --arch mobilefacenet --src model_mobilefacenet.pth --dst DIR)")
        factory, samples, notes = family.build_data(cfg, dataset_dir)
    except (UserError, DataError) as e:
        return fail(str(e))

    from models import NetworkLoadError, runtime
    device = runtime.configure(args.mode, args.device_target, args.threads)
    from training.engine import GANTrainer, write_json_atomic
    import mindspore as ms
    ms.set_seed(cfg["seed"])
    nets = family.build_nets(cfg)
    log = functools.partial(print, flush=True)
    try:
        if pretrained:
            loaded = load_pretrained(nets, *pretrained)
            log(f"fine-tuning from {pretrained[0]}: {', '.join(loaded)}")
        trainer = GANTrainer(family, cfg, run_dir, nets, factory, samples, log)
        if args.resume and latest:
            trainer.resume(latest)
            log(f"resumed from {latest} at iteration {trainer.iteration}")
    except (NetworkLoadError, CheckpointMismatch) as e:
        return fail(str(e))
    for n in notes:
        log(n)
    if "faceid_weight" in cfg and cfg["faceid_weight"] > 0 and not cfg.get("faceid_weights"):
        log("face-ID loss off: no --faceid_weights given")
    log(f"{family.NAME}/{cfg['arch']} on {device} ({args.mode} mode), run dir {run_dir}")
    write_json_atomic(os.path.join(run_dir, "config.json"), cfg)
    done = trainer.train(progress=not args.quiet)
    if done:
        log(f"finished {trainer.iteration} iterations; inference model: {os.path.join(run_dir, 'model')}")
    return 0 if done else 130


if __name__ == "__main__":
    sys.exit(main())
