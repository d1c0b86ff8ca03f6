"""DCGAN: images from noise (Radford et al. 2016), trained as pytorch/examples' dcgan does.

As published there: BCE on D's sigmoid output (real 1, fake 0), each iteration one D step on a real batch
and on G(z) (detached), then one G step on the same z with target "real"; Adam 2e-4 (0.5, 0.999), constant
learning rate, batch 64, 25 epochs, N(0, 0.02) weights, nz 100, ngf = ndf = 64, 64 px.
Data (data/mnist.py): MNIST's IDX files (one channel), any image folder (three), or `--dataset digits`
(scikit-learn's digits, offline).
As there, G runs forward once per iteration: the D step's fake (detached) is the G step's, whose gradient goes
back through that forward (Family.shares_fake; the engine's shared-fake iteration), so the generator's
BatchNorm running statistics move once per iteration as in the original. Under --amp the two steps are
separate graphs with their own loss scales and G runs twice (its running statistics move twice). The sample
sheets written during training use the running statistics, so they never change the state.
"""
from mindspore import nn

from inference.sampling import DCGAN_OPTIONS, DCGANSampler, noise, square_grid
from training.losses import bce
from . import Family, Losses, Option, TrainingData, adopt_pretrained, register_family
from .common import to_img


class GeneratorLoss(nn.Cell):
    """-log D(G(z)) (BCE to "real"), with D in training mode as in the original's G step."""

    terms = ("G_adv",)

    def __init__(self, nets, conditional):
        super().__init__(auto_prefix=False)
        self.G, self.D, self.conditional = nets["G"], nets["D"], conditional

    def construct(self, *batch):
        if self.conditional:
            _, y, z = batch
            g_adv = bce(self.D(self.G(z, y), y), 1.0)
        else:
            _, z = batch
            g_adv = bce(self.D(self.G(z)), 1.0)
        return g_adv, {"G_adv": g_adv}


class GeneratorLossOnFake(nn.Cell):
    """GeneratorLoss given the fake (the D step's, Losses.generator_on_fake): -log D(fake[, y])."""

    terms = ("G_adv",)

    def __init__(self, nets, conditional):
        super().__init__(auto_prefix=False)
        self.D, self.conditional = nets["D"], conditional

    def construct(self, *batch_and_fake):
        fake = batch_and_fake[-1]
        if self.conditional:
            g_adv = bce(self.D(fake, batch_and_fake[1]), 1.0)
        else:
            g_adv = bce(self.D(fake), 1.0)
        return g_adv, {"G_adv": g_adv}


class Generate(nn.Cell):
    """The D step's fake, G(z[, y]), computed before (outside) the D gradient."""

    def __init__(self, nets, conditional):
        super().__init__(auto_prefix=False)
        self.G, self.conditional = nets["G"], conditional

    def construct(self, *batch):
        if self.conditional:
            _, y, z = batch
            return self.G(z, y)
        return self.G(batch[-1])


class DiscriminatorLoss(nn.Cell):
    """BCE(D(real), 1) + BCE(D(fake), 0), the two batches through D separately (separate batch statistics)."""

    terms = ("D_real", "D_fake")

    def __init__(self, nets, conditional):
        super().__init__(auto_prefix=False)
        self.D, self.conditional = nets["D"], conditional

    def construct(self, *batch_and_fake):
        x, fake = batch_and_fake[0], batch_and_fake[-1]
        if self.conditional:
            y = batch_and_fake[1]
            d_real, d_fake = bce(self.D(x, y), 1.0), bce(self.D(fake, y), 0.0)
        else:
            d_real, d_fake = bce(self.D(x), 1.0), bce(self.D(fake), 0.0)
        return d_real + d_fake, {"D_real": d_real, "D_fake": d_fake}


def noise_data(cfg, dataset_dir, labelled, z_shape):
    """TrainingData for a GAN from noise: the images (data/mnist.py), fixed sample noise; sets cfg["nc"]
    from the data when it is None."""
    from data.mnist import image_set
    from data.pipelines import noise_image_batches
    images = image_set(dataset_dir, cfg["img_size"], labelled)
    if cfg.get("nc") is None:
        cfg["nc"] = images.nc
    n_classes = len(images.classes) if labelled else 0
    if labelled:
        if cfg.get("n_classes") is None:
            cfg["n_classes"] = n_classes
        elif cfg["n_classes"] != n_classes:
            from data.folders import DataError
            raise DataError(f"{dataset_dir} has {n_classes} classes, but the model has n_classes={cfg['n_classes']}")
    notes = [f"{len(images)} training images ({images.source}), {cfg['img_size']} px, {cfg['nc']} channel(s)"
             + (f", {n_classes} classes" if labelled else "")
             + (f" ({len(images.skipped)} files skipped)" if images.skipped else "")]

    def factory(start_iter):
        return noise_image_batches(images, cfg["nc"], z_shape, n_classes, cfg["batch_size"], cfg["seed"],
                                   start_iter, cfg["iterations"], cfg.get("workers", 2))
    return TrainingData(factory, None, notes, len(images), images.skipped)


def adopt_networks(cfg, explicit, meta, g_keys, d_keys):
    """Fine-tuning: take G's `g_keys` and D's `d_keys` from a model dir's networks (see adopt_pretrained)."""
    g = meta["networks"].get("G", {}).get("config", {})
    d = meta["networks"].get("D", {}).get("config", {})
    found = {k: g[k] for k in g_keys if k in g}
    found.update({k: d[k] for k in d_keys if k in d})
    return adopt_pretrained(cfg, explicit, found)


def epochs_to_iterations(cfg, n_train):
    """Iterations from epochs (one batch per iteration); a constant learning rate unless told otherwise."""
    per_epoch = max(1, n_train // cfg["batch_size"])
    if cfg.get("iterations") is None:
        cfg["iterations"] = cfg["n_epochs"] * per_epoch
    cfg["decay_start"] = cfg["iterations"] if cfg.get("decay_epochs") is None else \
        max(0, cfg["iterations"] - cfg["decay_epochs"] * per_epoch)
    cfg["iterations_per_epoch"] = per_epoch




@register_family
class DCGAN(Family):
    name = "dcgan"
    summary = "DCGAN: images from noise (MNIST, an image folder, or --dataset digits offline)"
    archs = {"dcgan": dict(lr=2e-4, beta1=0.5, beta2=0.999, weight_decay=0.0, batch_size=64, n_epochs=25,
                           iterations=None, print_freq=100, save_freq=2000, sample_freq=500, seed=0, img_size=64,
                           nz=100, ngf=64, ndf=64, nc=None, n_critic=1, decay_epochs=None)}
    default_arch = "dcgan"
    generators, discriminators = ("G",), ("D",)
    d_first = True
    shares_fake = True
    net_keys = ("nz", "ngf", "ndf", "nc", "img_size")
    builtin_datasets = ("digits",)
    takes_photos = False
    data_layout = "MNIST's train-images-idx3-ubyte[.gz], or a folder of images (or --dataset digits)"
    options = (
        Option("nz", int, "latent size"),
        Option("ngf", int, "generator width"),
        Option("ndf", int, "discriminator width"),
        Option("nc", int, "image channels (default: 1 for MNIST / digits, 3 for a folder)"),
        Option("decay_epochs", int, "decay the learning rate linearly to 0 over the last N epochs (default: "
                                    "constant, as published)"),
    )
    test_options = DCGAN_OPTIONS

    def check_config(self, cfg):
        s = cfg["img_size"]
        if s < 16 or s & (s - 1):
            return f"--img_size {s} must be a power of two, at least 16 (DCGAN doubles the size per layer)"
        return None

    def finalize_schedule(self, cfg, n_train):
        epochs_to_iterations(cfg, n_train)

    def config_from_pretrained(self, cfg, explicit, meta):
        return adopt_networks(cfg, explicit, meta, ("nz", "ngf", "nc", "img_size"), ("ndf",))

    def net_configs(self, cfg):
        return {"G": ("dcgan_generator", dict(nz=cfg["nz"], ngf=cfg["ngf"], nc=cfg["nc"], img_size=cfg["img_size"])),
                "D": ("dcgan_discriminator", dict(ndf=cfg["ndf"], nc=cfg["nc"], img_size=cfg["img_size"]))}

    def losses(self, nets, cfg):
        return Losses(GeneratorLoss(nets, False), DiscriminatorLoss(nets, False), Generate(nets, False),
                      GeneratorLossOnFake(nets, False))

    def data(self, cfg, dataset_dir):
        d = noise_data(cfg, dataset_dir, False, (cfg["nz"], 1, 1))
        d.samples = noise(cfg["seed"] + 1000, 64, cfg["nz"], True)
        return d

    def sample_grid(self, nets, samples, cfg):
        import mindspore as ms
        return square_grid([to_img(a) for a in nets["G"](ms.Tensor(samples)).asnumpy()])

    def runner(self, args, checkpoint):
        return DCGANSampler(checkpoint, args)
