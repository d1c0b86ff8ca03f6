"""CGAN: class-conditional images from noise (Mirza & Osindero 2014), the seed library's MNIST model.

Training as DCGAN's loop (families/dcgan.py): BCE on D's probability, one D step on the real batch (x, y)
and on G(z, y) with the same labels, then one G step; Adam 2e-4 (0.5, 0.999), constant learning rate; the
seed's sizes: noise 100, gf_dim 128, df_dim 64, 28 px. Data: MNIST with its labels, a folder with one
subfolder per class, or `--dataset digits` (scikit-learn's digits, offline).
test.py samples in eval mode (BatchNorm on its running statistics): a batch of one class has batch statistics
unlike training's mixed batches (measured on the digits toy: 25 % of a one-class batch read as that class on
batch statistics, 75 % on running ones).
Differences, stated: labels are one-hot and concatenated before every layer (the seed feeds one number and
skips the last layer), as the paper describes.
"""
import numpy as np

from . import Family, Losses, Option, register_family
from .common import grid, to_img
from inference.sampling import CGAN_OPTIONS, CGANSampler, one_hot
from .dcgan import (DiscriminatorLoss, Generate, GeneratorLoss, adopt_networks, epochs_to_iterations,
                    noise, noise_data)


@register_family
class CGAN(Family):
    name = "cgan"
    summary = "CGAN: class-conditional images from noise (MNIST with labels, class folders, --dataset digits)"
    archs = {"cgan": dict(lr=2e-4, beta1=0.5, beta2=0.999, weight_decay=0.0, batch_size=64, n_epochs=20,
                          iterations=None, print_freq=100, save_freq=2000, sample_freq=500, seed=0, img_size=28,
                          nz=100, gf_dim=128, df_dim=64, nc=None, n_classes=None, n_critic=1, decay_epochs=None)}
    default_arch = "cgan"
    generators, discriminators = ("G",), ("D",)
    d_first = True
    net_keys = ("nz", "gf_dim", "df_dim", "nc", "n_classes", "img_size")
    builtin_datasets = ("digits",)
    takes_photos = False
    data_layout = ("MNIST's train-images-idx3-ubyte and train-labels-idx1-ubyte, or one subfolder of images per "
                   "class (or --dataset digits)")
    options = (
        Option("nz", int, "latent size"),
        Option("gf_dim", int, "generator width"),
        Option("df_dim", int, "discriminator width"),
        Option("nc", int, "image channels (default: 1 for MNIST / digits, 3 for class folders)"),
        Option("decay_epochs", int, "decay the learning rate linearly to 0 over the last N epochs (default: "
                                    "constant)"),
    )
    test_options = CGAN_OPTIONS

    def check_config(self, cfg):
        if cfg["img_size"] % 4 or cfg["img_size"] < 8:
            return f"--img_size {cfg['img_size']} must be a multiple of 4, at least 8"
        return None

    def finalize_schedule(self, cfg, n_train):
        epochs_to_iterations(cfg, n_train)

    def config_from_pretrained(self, cfg, explicit, meta):
        return adopt_networks(cfg, explicit, meta, ("nz", "gf_dim", "nc", "n_classes", "img_size"), ("df_dim",))

    def net_configs(self, cfg):
        k = dict(n_classes=cfg["n_classes"], img_size=cfg["img_size"], nc=cfg["nc"])
        return {"G": ("cgan_generator", dict(nz=cfg["nz"], gf_dim=cfg["gf_dim"], **k)),
                "D": ("cgan_discriminator", dict(df_dim=cfg["df_dim"], **k))}

    def losses(self, nets, cfg):
        return Losses(GeneratorLoss(nets, True), DiscriminatorLoss(nets, True), Generate(nets, True))

    def data(self, cfg, dataset_dir):
        d = noise_data(cfg, dataset_dir, True, (cfg["nz"],))
        n = cfg["n_classes"]
        d.samples = (np.tile(noise(cfg["seed"] + 1000, 8, cfg["nz"], False), (n, 1)),
                     one_hot(np.repeat(np.arange(n), 8), n))
        return d

    def sample_grid(self, nets, samples, cfg):
        import mindspore as ms
        z, y = samples
        tiles = [to_img(a) for a in nets["G"](ms.Tensor(z), ms.Tensor(y)).asnumpy()]
        return grid([tiles[k * 8:(k + 1) * 8] for k in range(cfg["n_classes"])])

    def runner(self, args, checkpoint):
        return CGANSampler(checkpoint, args)
