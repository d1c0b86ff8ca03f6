"""SPADE: semantic image synthesis (a label map in, a photo-like image out), as NVlabs/SPADE trains it.

Networks (models/spade.py): SPADEGenerator, MultiscaleDiscriminator on concat(label map, image), and with
--use_vae the ConvEncoder, whose z (mu + exp(logvar / 2) * eps) replaces the downsampled label map.
Losses (pix2pix_model.py): hinge GAN (or ls / original), feature matching on every intermediate feature of every
scale (L1, lambda_feat 10, divided by num_D), VGG19 perceptual loss (relu1_1 .. relu5_1 weighted 1/32 .. 1, L1,
lambda_vgg 10; weights from torchvision's vgg19 via convert_weights.py --arch vgg19, without which the loss is
off and the log says so), KLD for the VAE (lambda_kld 0.05, summed). D sees fake and real in one batch, and
its step regenerates the fake with the generator in training mode (spectral norm's power iteration and batch
norm's running statistics move there too, as in the original). Adam with TTUR by default: G at lr / 2, D at
lr * 2, betas (0, 0.9); --no_TTUR: lr for both, betas (0.5, 0.999). n_epochs at the initial lr, then
n_epochs_decay of linear decay (per iteration here, per epoch in the original).

Data: data/semantic.py (the seed's list file, Cityscapes, ADE20K, a custom folder pair); each layout brings the
original's dataset options (label_nc, don't-care label, instance maps, resize and crop), a flag overrides one.
Batch norm in the generator is per device: on one device the original's synchronised batch norm is batch norm.
"""
import math
import os

import numpy as np
from mindspore import nn, ops

from inference.synthesis import SYNTHESIS_OPTIONS
from training.losses import as_function, gan_loss, l1  # noqa: F401
from . import Family, Losses, Option, TrainingData, adopt_pretrained, parse_bool, register_family
from .common import grid, to_img
from .cyclegan import finalize_epochs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GAN_MODES = ("hinge", "ls", "original")
VGG_WEIGHTS = (1.0 / 32, 1.0 / 16, 1.0 / 8, 1.0 / 4, 1.0)
LABEL_KEYS = ("label_nc", "contain_dontcare_label", "no_instance")
G_KEYS = ("ngf", "crop_size", "aspect_ratio", "num_upsampling_layers", "use_vae", "z_dim", "norm_G")


def semantic_nc(cfg):
    """Label-map channels. Before the data has decided label_nc (None: from the label maps), 1 class stands in
    for it, so that the networks of a default config can be listed."""
    label_nc = cfg["label_nc"] if cfg["label_nc"] is not None else 1
    return label_nc + int(cfg["contain_dontcare_label"]) + int(not cfg["no_instance"])


def _adv(pred, real, mode, for_d):
    """One scale's adversarial term (the original's GANLoss): hinge, ls (MSE) or original (BCE on logits)."""
    if mode == "hinge":
        if not for_d:
            return -pred.mean()
        return ops.relu(1.0 - pred).mean() if real else ops.relu(1.0 + pred).mean()
    return gan_loss(pred, real, "lsgan" if mode == "ls" else "vanilla")


class _Generate(nn.Cell):
    """fake = G(label map) or, with the VAE, G(label map, mu + exp(logvar / 2) * eps) with (mu, logvar) = E(real)."""

    def __init__(self, nets, cfg):
        super().__init__(auto_prefix=False)
        self.G = nets["G"]
        self.use_vae = cfg["use_vae"]
        if self.use_vae:
            self.E = nets["E"]

    def fake_and_kld(self, x, real, eps):
        if not self.use_vae:
            return self.G(x), 0.0
        mu, logvar = self.E(real)
        z = eps * ops.exp(0.5 * logvar) + mu
        kld = -0.5 * (1.0 + logvar - mu * mu - ops.exp(logvar)).sum()
        return self.G(x, z), kld


class GeneratorLoss(_Generate):
    def __init__(self, nets, cfg, vgg=None):
        super().__init__(nets, cfg)
        self.D = nets["D"]
        self.mode, self.num_D, self.per = cfg["gan_mode"], cfg["num_D"], cfg["n_layers_D"] + 1
        self.feat = not cfg["no_ganFeat_loss"]
        self.lambda_feat, self.lambda_vgg, self.lambda_kld = cfg["lambda_feat"], cfg["lambda_vgg"], cfg["lambda_kld"]
        self.use_vgg = vgg is not None
        if self.use_vgg:
            self.vgg = vgg
        on = (True, self.feat, self.use_vgg, self.use_vae)
        self.terms = tuple(t for t, o in zip(("G_GAN", "G_GAN_Feat", "G_VGG", "G_KLD"), on) if o)

    def construct(self, x, real, *z):
        fake, kld = self.fake_and_kld(x, real, z[0] if self.use_vae else None)
        n = x.shape[0]
        feats = self.D(ops.concat((ops.concat((x, fake), 1), ops.concat((x, real), 1)), 0))
        adv = 0.0
        fm = 0.0
        for i in range(self.num_D):
            adv = adv + _adv(feats[i * self.per + self.per - 1][:n], True, self.mode, False)
            if self.feat:
                for j in range(self.per - 1):
                    f = feats[i * self.per + j]
                    fm = fm + l1(f[:n], ops.stop_gradient(f[n:])) * (self.lambda_feat / self.num_D)
        adv = adv / self.num_D
        vgg = 0.0
        if self.use_vgg:
            ff, fr = self.vgg(fake), self.vgg(real)
            for k in range(5):
                vgg = vgg + l1(ff[k], ops.stop_gradient(fr[k])) * VGG_WEIGHTS[k]
            vgg = vgg * self.lambda_vgg
        kld = kld * self.lambda_kld
        terms = {"G_GAN": adv}
        if self.feat:
            terms["G_GAN_Feat"] = fm
        if self.use_vgg:
            terms["G_VGG"] = vgg
        if self.use_vae:
            terms["G_KLD"] = kld
        return adv + fm + vgg + kld, terms


class RegenerateFake(_Generate):
    """The D step's fake: a fresh generator forward (training mode, no gradient), with its own eps for the VAE."""

    def construct(self, x, real, *z):
        fake, _ = self.fake_and_kld(x, real, z[1] if self.use_vae else None)
        return ops.stop_gradient(fake)


class DiscriminatorLoss(nn.Cell):
    terms = ("D_Fake", "D_real")

    def __init__(self, nets, cfg):
        super().__init__(auto_prefix=False)
        self.D = nets["D"]
        self.mode, self.num_D, self.per = cfg["gan_mode"], cfg["num_D"], cfg["n_layers_D"] + 1

    def construct(self, x, real, *rest):
        fake = rest[-1]
        n = x.shape[0]
        feats = self.D(ops.concat((ops.concat((x, fake), 1), ops.concat((x, real), 1)), 0))
        d_fake = 0.0
        d_real = 0.0
        for i in range(self.num_D):
            pred = feats[i * self.per + self.per - 1]
            d_fake = d_fake + _adv(pred[:n], False, self.mode, True)
            d_real = d_real + _adv(pred[n:], True, self.mode, True)
        d_fake, d_real = d_fake / self.num_D, d_real / self.num_D
        return d_fake + d_real, {"D_Fake": d_fake, "D_real": d_real}


def load_vgg(path):
    """The frozen VGG19 feature network of a converted model dir (convert_weights.py --arch vgg19)."""
    import kernels
    from models import load_network
    vgg = load_network(path, "vgg19", expect_model="vgg19_features")
    for p in vgg.get_parameters():
        p.requires_grad = False
        p.name = "vgg." + p.name
    vgg.set_train(False)
    return kernels.accelerate(vgg) if not vgg.compile_cache else vgg


def default_vgg():
    path = os.path.join(ROOT, "pretrained_models", "vgg19")
    return path if os.path.isfile(os.path.join(path, "model.json")) else None


@register_family
class SPADE(Family):
    name = "spade"
    summary = "SPADE: label maps -> photo-like images (NVlabs/SPADE; Cityscapes, ADE20K, a list file or folders)"
    archs = {"spade": dict(
        lr=2e-4, beta1=0.0, beta2=0.9, weight_decay=0.0, batch_size=1, iterations=None, n_epochs=50,
        n_epochs_decay=0, print_freq=100, save_freq=5000, sample_freq=1000, seed=0, img_size=None,
        dataset_mode="auto", label_nc=None, contain_dontcare_label=False, no_instance=None,
        preprocess_mode="resize_and_crop", load_size=286, crop_size=256, aspect_ratio=1.0, no_flip=False,
        ngf=64, ndf=64, norm_G="spectralspadesyncbatch3x3", norm_D="spectralinstance", norm_E="spectralinstance",
        num_upsampling_layers="normal", n_layers_D=4, num_D=2, use_vae=False, z_dim=256,
        gan_mode="hinge", lambda_feat=10.0, lambda_vgg=10.0, lambda_kld=0.05, no_ganFeat_loss=False,
        no_vgg_loss=False, vgg_weights=None, no_TTUR=False)}
    default_arch = "spade"
    generators = ("G", "E")
    discriminators = ("D",)
    d_first = False           # the original: generator step, then discriminator step (on a regenerated fake)
    net_keys = LABEL_KEYS + G_KEYS + ("ndf", "norm_D", "norm_E", "n_layers_D", "num_D")
    takes_photos = False
    data_layout = ("train.txt of label<TAB>image[<TAB>instance], Cityscapes (gtFine/, leftImg8bit/), ADE20K "
                   "(*_train_* files), or train_label/ + train_img/ [+ train_inst/]")
    options = (
        Option("dataset_mode", str, "data layout (auto: detected)", ("auto",) + ("list", "cityscapes", "ade20k",
                                                                                 "custom")),
        Option("label_nc", int, "label classes, don't-care aside (default: the layout's, or the largest id + 1)"),
        Option("contain_dontcare_label", parse_bool, "label 255 is a don't-care class of its own"),
        Option("no_instance", parse_bool, "no instance maps (default: whether the data has them)"),
        Option("preprocess_mode", str, "resize and crop", ("resize_and_crop", "crop", "scale_width_and_crop",
                                                            "scale_shortside_and_crop", "fixed")),
        Option("load_size", int, "resize to this before cropping"),
        Option("crop_size", int, "crop (and image) width; --img_size sets it too"),
        Option("aspect_ratio", float, "width / height (preprocess_mode fixed)"),
        Option("no_flip", parse_bool, "no random horizontal flip"),
        Option("ngf", int, "generator (and encoder) width"),
        Option("ndf", int, "discriminator width"),
        Option("norm_G", str, "[spectral]spade<instance|batch|syncbatch><k>x<k>"),
        Option("norm_D", str, "[spectral]<instance|none>"),
        Option("norm_E", str, "[spectral]<instance|none>"),
        Option("num_upsampling_layers", str, "generator depth", ("normal", "more", "most")),
        Option("n_layers_D", int, "layers per discriminator"),
        Option("num_D", int, "discriminator scales"),
        Option("use_vae", parse_bool, "train the image encoder (style-guided synthesis)"),
        Option("z_dim", int, "latent size with --use_vae"),
        Option("gan_mode", str, "adversarial loss", GAN_MODES),
        Option("lambda_feat", float, "feature matching weight"),
        Option("lambda_vgg", float, "VGG loss weight"),
        Option("lambda_kld", float, "KLD weight (--use_vae)"),
        Option("no_ganFeat_loss", parse_bool, "no feature matching loss"),
        Option("no_vgg_loss", parse_bool, "no VGG loss"),
        Option("vgg_weights", str, "VGG19 model dir (convert_weights.py --arch vgg19; default "
                                   "pretrained_models/vgg19 when it exists)"),
        Option("no_TTUR", parse_bool, "one lr for G and D, betas (0.5, 0.999)"),
        Option("n_epochs", int, "epochs at the initial lr"),
        Option("n_epochs_decay", int, "epochs of linear decay to 0"),
    )
    test_options = SYNTHESIS_OPTIONS

    # ---------------------------------------------------------------- configuration
    def adapt_config(self, cfg, explicit, dataset_dir):
        """The layout's dataset options for every key not given, then the TTUR betas."""
        from data.folders import DataError
        from data.semantic import PRESETS, detect_mode
        mode = cfg["dataset_mode"]
        if mode == "auto":
            try:
                mode = detect_mode(dataset_dir)
            except DataError as e:
                return str(e)
            cfg["dataset_mode"] = mode
        if "img_size" in explicit:
            if "crop_size" in explicit and explicit["crop_size"] != explicit["img_size"]:
                return "--img_size and --crop_size disagree (they are the same setting for SPADE)"
            cfg["crop_size"] = explicit["crop_size"] = explicit["img_size"]
        for k, v in PRESETS[mode].items():
            if k not in explicit:
                cfg[k] = v
        if cfg["no_TTUR"]:
            for k, v in (("beta1", 0.5), ("beta2", 0.999)):
                if k not in explicit:
                    cfg[k] = v
        return None

    def check_config(self, cfg):
        from models.spade import NUM_UP_LAYERS, output_size, parse_plain_norm, parse_spade_norm
        try:
            parse_spade_norm(cfg["norm_G"])
            parse_plain_norm(cfg["norm_D"])
            parse_plain_norm(cfg["norm_E"])
        except ValueError as e:
            return str(e)
        if cfg["gan_mode"] not in GAN_MODES:
            return f"--gan_mode must be one of {', '.join(GAN_MODES)}"
        crop, k = cfg["crop_size"], 2 ** NUM_UP_LAYERS[cfg["num_upsampling_layers"]]
        if crop % k:
            return (f"--crop_size {crop} must be a multiple of {k} ({cfg['num_upsampling_layers']} upsampling "
                    f"doubles the latent map {int(math.log2(k))} times)")
        fixed = cfg["preprocess_mode"] == "fixed"
        if not fixed and cfg["aspect_ratio"] != 1.0:
            return f"--aspect_ratio {cfg['aspect_ratio']} needs --preprocess_mode fixed (the others crop squares)"
        data_hw = (int(round(crop / cfg["aspect_ratio"])), crop)
        if output_size(crop, cfg["aspect_ratio"], cfg["num_upsampling_layers"]) != data_hw:
            return (f"crop_size {crop} / aspect_ratio {cfg['aspect_ratio']} give {data_hw[1]}x{data_hw[0]} images, "
                    f"which the generator's latent map cannot double up to")
        if cfg["use_vae"] and cfg["z_dim"] != 256:
            return "--use_vae needs --z_dim 256 (the encoder's mu and logvar have 256 entries, as the original's)"
        if cfg["use_vae"] and crop < 256:
            return "--use_vae needs --crop_size 256 or more (the encoder's six layers take 256 x 256 to 4 x 4)"
        if not fixed and cfg["load_size"] < crop:
            return f"--load_size {cfg['load_size']} is smaller than --crop_size {crop}"
        return None

    def finalize_schedule(self, cfg, n_train):
        finalize_epochs(cfg, n_train)

    def optimizer_settings(self, cfg):
        lr = cfg["lr"]
        g_lr, d_lr = (lr, lr) if cfg["no_TTUR"] else (lr / 2, lr * 2)
        common = {k: cfg[k] for k in ("beta1", "beta2", "weight_decay")}
        return {"G": dict(common, lr=g_lr), "D": dict(common, lr=d_lr)}

    def notes(self, cfg):
        out = [f"label map: {cfg['label_nc']} classes"
               + (" + don't-care" if cfg["contain_dontcare_label"] else "")
               + ("" if cfg["no_instance"] else " + instance edges") + f" = {semantic_nc(cfg)} channels; "
               f"{cfg['dataset_mode']} layout, {cfg['preprocess_mode']} {cfg['load_size']} -> {cfg['crop_size']}"]
        if not cfg["no_vgg_loss"] and not cfg.get("vgg_weights"):
            out.append("VGG loss off: no VGG19 weights (convert torchvision's vgg19 state_dict with "
                       "convert_weights.py --arch vgg19 --dst pretrained_models/vgg19, or --vgg_weights DIR)")
        return out

    def config_from_pretrained(self, cfg, explicit, meta):
        nets = meta["networks"]
        found = {k: v for k, v in meta.get("labels", {}).items() if k in LABEL_KEYS}
        g = nets.get("G", {}).get("config", {})
        found.update({k: g[k] for k in G_KEYS if k in g})
        d = nets.get("D", {}).get("config", {})
        found.update({k: d[k] for k in ("ndf", "n_layers_D", "num_D", "norm_D") if k in d})
        if "E" in nets:
            found["norm_E"] = nets["E"]["config"]["norm_E"]
        return adopt_pretrained(cfg, explicit, found) or self.check_config(cfg)

    # ---------------------------------------------------------------- networks and losses
    def net_configs(self, cfg):
        nc = semantic_nc(cfg)
        out = {"G": ("spade_generator", dict(semantic_nc=nc, ngf=cfg["ngf"], crop_size=cfg["crop_size"],
                                             aspect_ratio=cfg["aspect_ratio"],
                                             num_upsampling_layers=cfg["num_upsampling_layers"],
                                             use_vae=cfg["use_vae"], z_dim=cfg["z_dim"], norm_G=cfg["norm_G"])),
               "D": ("spade_discriminator", dict(input_nc=nc + 3, ndf=cfg["ndf"], n_layers_D=cfg["n_layers_D"],
                                                 num_D=cfg["num_D"], norm_D=cfg["norm_D"]))}
        if cfg["use_vae"]:
            out["E"] = ("spade_encoder", dict(ngf=cfg["ngf"], crop_size=cfg["crop_size"], norm_E=cfg["norm_E"]))
        return out

    def losses(self, nets, cfg):
        vgg = load_vgg(cfg["vgg_weights"]) if cfg.get("vgg_weights") and not cfg["no_vgg_loss"] else None
        return Losses(GeneratorLoss(nets, cfg, vgg), DiscriminatorLoss(nets, cfg), RegenerateFake(nets, cfg))

    def model_json_extra(self, cfg):
        return {"labels": {k: cfg[k] for k in LABEL_KEYS},
                "preprocess": {k: cfg[k] for k in ("preprocess_mode", "load_size", "crop_size", "aspect_ratio")}}

    # ---------------------------------------------------------------- data
    def data(self, cfg, dataset_dir):
        from data.folders import DataError
        from data.semantic import find_samples, largest_label, load_sample, semantic_batches, test_options
        samples, skipped = find_samples(dataset_dir, cfg["dataset_mode"])
        has_inst = samples[0][2] is not None
        if cfg["no_instance"] is None:
            cfg["no_instance"] = not has_inst
        elif not cfg["no_instance"] and not has_inst:
            raise DataError(f"{dataset_dir}: --no_instance false, but the {cfg['dataset_mode']} samples have no "
                            f"instance maps")
        notes = [f"train: {len(samples)} samples" + (f" ({len(skipped)} skipped)" if skipped else "")]
        if cfg.get("label_nc") is None:
            top = largest_label(samples)
            cfg["label_nc"] = top + 1
            notes.append(f"label_nc {top + 1}: the largest class id in the label maps + 1 (--label_nc sets it)")
        if cfg.get("vgg_weights") is None and not cfg["no_vgg_loss"]:
            cfg["vgg_weights"] = default_vgg()
        test, _ = find_samples(dataset_dir, cfg["dataset_mode"], "test")
        opts = self.data_options(cfg)
        shown = (test or samples)[:4]
        loaded = []
        for s in shown:
            try:
                loaded.append(load_sample(s, test_options(opts)))
            except ValueError as e:
                raise DataError(str(e)) from None
        samples_xy = (np.stack([a for a, _ in loaded]), np.stack([b for _, b in loaded]))
        z_dim = cfg["z_dim"] if cfg["use_vae"] else 0

        def factory(start_iter):
            return semantic_batches(samples, opts, cfg["batch_size"], cfg["seed"], start_iter, cfg["iterations"],
                                    z_dim, not cfg["no_flip"], cfg.get("workers", 2))
        return TrainingData(factory, samples_xy, notes, len(samples), skipped)

    @staticmethod
    def data_options(cfg):
        return {k: cfg[k] for k in LABEL_KEYS + ("preprocess_mode", "load_size", "crop_size", "aspect_ratio")}

    def eval_sets(self, cfg, dataset_dir):
        """The test label maps synthesised, scored against the test images (at the training crop)."""
        from data.semantic import find_samples, load_sample, test_options
        from metrics.during_training import EvalSet
        test, _ = find_samples(dataset_dir, cfg["dataset_mode"], "test")
        if not test:
            return []
        opts = test_options(self.data_options(cfg))
        loaded = [load_sample(s, opts) for s in test]
        xs = np.stack([a for a, _ in loaded])
        reals = [(b + 1.0) / 2.0 for _, b in loaded]
        z_dim = cfg["z_dim"] if cfg["use_vae"] else 0

        def synth(nets, x):
            import mindspore as ms
            if not z_dim:
                return nets["G"](x)
            z = np.random.default_rng([cfg["seed"], 41, x.shape[0]]).standard_normal((x.shape[0], z_dim))
            return nets["G"](x, ms.Tensor(z.astype(np.float32)))
        return [EvalSet("label2image", xs, reals, synth)]

    def sample_grid(self, nets, samples, cfg):
        """Rows: the label maps (coloured), the synthesised images, the real images; columns: samples."""
        import mindspore as ms
        from data.semantic import colorize
        x, real = samples
        if cfg["use_vae"]:      # the encoder's mean for each real image: the style of the real one
            mu, _ = nets["E"](ms.Tensor(real))
            fake = nets["G"](ms.Tensor(x), mu).asnumpy()
        else:
            fake = nets["G"](ms.Tensor(x)).asnumpy()
        opts = self.data_options(cfg)
        return grid([[colorize(a, opts) for a in x], [to_img(a) for a in fake], [to_img(a) for a in real]])

    # ---------------------------------------------------------------- inference
    def runner(self, args, checkpoint):
        from inference.synthesis import SynthesisRunner
        return SynthesisRunner(checkpoint, args)
