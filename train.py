#!/usr/bin/env python
"""Train a face GAN with MindSpore (GRAPH_MODE by default), resumable.

  python train.py --dataset photo2cartoon                         # dataset/photo2cartoon/{trainA,trainB,testA,testB}
  python train.py --dataset photo2cartoon --pretrained_model pretrained_models/photo2cartoon   # fine-tune
  python train.py --dataset selfie2anime --arch ugatit --iterations 100000
  python train.py --dataset photo2cartoon --resume                # continue the run in runs/photo2cartoon_photo2cartoon
  python train.py --model cyclegan --dataset makeup               # dataset/makeup/{trainA,trainB}: A with makeup
  python train.py --model pix2pix --dataset facades --direction BtoA   # dataset/facades/train/*.jpg (A|B side by side)
  python train.py --model stgan --dataset celeba                  # list_attr_celeba.txt + img_align_celeba/

U-GAT-IT: A = photos, B = the target style. Published defaults per --arch (photo2cartoon: adv 1, cycle 50,
identity 10, CAM 1000, face-ID 1; ugatit: adv 1, cycle 10, identity 10, CAM 1000), Adam 1e-4 (0.5, 0.999),
weight decay 1e-4, linear lr decay to 0 over the second half. CycleGAN / Pix2Pix: the original project's
defaults (resnet_9blocks + basic D + lsgan + pool 50 / unet_256 + basic D + vanilla + L1 100; Adam 2e-4,
100 + 100 epochs). Lists instead of folders: trainA.txt (PaddleCV), train.txt with `A<TAB>B` lines.
STGAN / AttGAN: WGAN-GP 10, attribute loss 10 (G) / 1 (D), reconstruction 100, 5 D steps per G step, Adam 2e-4,
lr / 10 halfway, batch 32, 128 px, the 13 usual CelebA attributes. The run directory gets config.json, samples/, loss_curve.png,
checkpoints/ (all nets + optimiser state, atomic) and model/ (an inference model dir for test.py --checkpoint).
Ctrl-C or SIGTERM saves a checkpoint and exits; --resume continues exactly.
"""
import argparse
import functools
import json
import os
import sys

ROOT = os.path.dirname(os.path.abspath(__file__))


MODELS = ("ugatit", "cyclegan", "pix2pix", "stgan")
RUNTIME_KEYS = ("dataset", "dataset_root", "model", "arch", "pretrained_model", "faceid_weights", "result_dir",
                "run_name", "resume", "no_decay", "mode", "device_target", "workers", "threads", "quiet")


def _bool(s):
    if s.lower() in ("1", "true", "yes", "on"):
        return True
    if s.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, not {s!r}")


def build_parser():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", required=True, help="dataset name under --dataset_root, or a path")
    ap.add_argument("--dataset_root", default=os.path.join(ROOT, "dataset"))
    ap.add_argument("--model", default="ugatit", choices=MODELS, help="model family")
    ap.add_argument("--arch", default=None, help="ugatit: photo2cartoon (default) or ugatit; stgan: stgan "
                    "(default) or attgan: the design and its published loss weights")
    ap.add_argument("--pretrained_model", default=None,
                    help="model dir (model.json + .ckpt) to fine-tune from, e.g. a converted checkpoint")
    ap.add_argument("--result_dir", default=os.path.join(ROOT, "runs"))
    ap.add_argument("--run_name", default=None, help="default: <dataset>_<arch>")
    ap.add_argument("--resume", action="store_true", help="continue from the run's latest checkpoint")
    g = ap.add_argument_group("schedule and sizes (defaults: the published values for the model)")
    for flag, typ in (("iterations", int), ("batch_size", int), ("img_size", int), ("lr", float),
                      ("weight_decay", float), ("seed", int), ("print_freq", int), ("save_freq", int),
                      ("sample_freq", int)):
        g.add_argument("--" + flag, type=typ, default=None)
    g.add_argument("--no_decay", action="store_true", help="constant learning rate")
    u = ap.add_argument_group("U-GAT-IT / photo2cartoon (--model ugatit)")
    for flag, typ in (("ngf", int), ("n_blocks", int), ("n_dis_global", int), ("n_dis_local", int),
                      ("adv_weight", float), ("cycle_weight", float), ("identity_weight", float),
                      ("cam_weight", float), ("faceid_weight", float)):
        u.add_argument("--" + flag, type=typ, default=None)
    u.add_argument("--light", default=None, type=_bool, help="light generator (true/false)")
    u.add_argument("--faceid_weights", default=None,
                   help="MobileFaceNet model dir (convert_weights.py --arch mobilefacenet); off if absent")
    c = ap.add_argument_group("CycleGAN / Pix2Pix (--model cyclegan | pix2pix; names as in the original)")
    c.add_argument("--netG", default=None, help="resnet_9blocks | resnet_6blocks | unet_256 | unet_128")
    c.add_argument("--netD", default=None, help="basic | n_layers | pixel")
    c.add_argument("--norm", default=None, help="instance | batch | none")
    c.add_argument("--gan_mode", default=None, help="lsgan | vanilla | wgangp")
    c.add_argument("--no_dropout", default=None, type=_bool, help="true/false (cyclegan: true, pix2pix: false)")
    c.add_argument("--direction", default=None, choices=["AtoB", "BtoA"], help="pix2pix: which half is the input")
    for flag, typ in (("ndf", int), ("n_layers_D", int), ("n_epochs", int), ("n_epochs_decay", int),
                      ("lambda_A", float), ("lambda_B", float), ("lambda_identity", float), ("lambda_L1", float),
                      ("lambda_gp", float), ("pool_size", int), ("input_nc", int), ("output_nc", int)):
        c.add_argument("--" + flag, type=typ, default=None)
    t = ap.add_argument_group("STGAN / AttGAN (--model stgan [--arch attgan])")
    t.add_argument("--selected_attrs", nargs="+", default=None,
                   help="CelebA attribute names (default the 13: Bald Bangs Black_Hair ... Young)")
    t.add_argument("--use_stu", default=None, type=_bool, help="Selective Transfer Units (true/false)")
    for flag, typ in (("dim", int), ("enc_layers", int), ("dec_layers", int), ("shortcut_layers", int),
                      ("inject_layers", int), ("dis_dim", int), ("dis_layers", int), ("dis_fc_dim", int),
                      ("thres_int", float), ("lambda_att_g", float), ("lambda_att_d", float), ("lambda_rec", float),
                      ("n_critic", int)):
        t.add_argument("--" + flag, type=typ, default=None)
    r = ap.add_argument_group("runtime")
    r.add_argument("--mode", choices=["graph", "pynative"], default="graph")
    r.add_argument("--device_target", default="auto", help="CPU, GPU, Ascend or auto")
    r.add_argument("--workers", type=int, default=2, help="parallel decoding workers")
    r.add_argument("--threads", type=int, default=None, help="MindSpore CPU threads (runtime_num_threads)")
    r.add_argument("-q", "--quiet", action="store_true", help="no progress bar (log lines instead)")
    return ap


class UserError(Exception):
    pass


def resolve_config(args, family):
    """The family's published defaults for --arch, overridden by the flags given. A flag that the family does
    not use is an error, not silently ignored."""
    arch = args.arch or family.DEFAULT_ARCH
    if arch not in family.DEFAULTS:
        raise UserError(f"--arch {arch} is not an arch of --model {args.model} ({', '.join(family.DEFAULTS)})")
    cfg = dict(family.DEFAULTS[arch])
    cfg["arch"] = arch
    explicit = {}
    for k, v in vars(args).items():
        if v is None or k in RUNTIME_KEYS:
            continue
        if k not in cfg:
            raise UserError(f"--{k} does not apply to --model {args.model}")
        cfg[k] = v
        explicit[k] = v
    cfg.update(mode=args.mode, workers=args.workers)
    if "faceid_weight" in cfg:
        cfg["faceid_weights"] = args.faceid_weights
    elif args.faceid_weights:
        raise UserError(f"--faceid_weights does not apply to --model {args.model}")
    return cfg, explicit


def finalize_schedule(cfg, family, n_train, no_decay):
    if hasattr(family, "finalize_config"):
        family.finalize_config(cfg, n_train)
    else:
        cfg["decay_start"] = cfg["iterations"] // 2
    if no_decay:
        cfg["decay_start"] = cfg["iterations"]


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
    problem = family.config_from_pretrained(cfg, explicit, meta)
    if problem:
        raise UserError(problem)
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


def main(argv=None):
    args = build_parser().parse_args(argv)
    import cli_common  # noqa: F401
    from cli_common import fail
    from training.families import FAMILIES
    family = FAMILIES[args.model]
    try:
        cfg, explicit = resolve_config(args, family)
    except UserError as e:
        return fail(str(e))
    for k in ("iterations", "batch_size", "print_freq", "save_freq", "sample_freq"):
        if cfg[k] is not None and cfg[k] < 1:
            return fail(f"--{k} must be at least 1")
    problem = family.check_config(cfg)
    if problem:
        return fail(problem)
    dataset_dir = args.dataset if os.path.isdir(args.dataset) else os.path.join(args.dataset_root, args.dataset)
    if not os.path.isdir(dataset_dir):
        return fail(f"dataset not found: {dataset_dir} (expected trainA/ trainB/ testA/ testB/ inside, or train/ "
                    f"test/ of A|B pairs for pix2pix)")
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
        factory, samples, notes, n_train = family.build_data(cfg, dataset_dir)
    except (UserError, DataError) as e:
        return fail(str(e))
    finalize_schedule(cfg, family, n_train, args.no_decay)

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
