"""Pix2Pix training (paired A -> B) for the shared GAN engine.

As published: U-Net 256 generator with dropout, conditional `basic` PatchGAN on concat(A, B) (6 channels),
batch norm, vanilla GAN loss + 100 x L1, discriminator loss x 0.5, no image pool, Adam 2e-4 (0.5, 0.999),
n_epochs + n_epochs_decay schedule. Data: side-by-side A|B images (the original's aligned format) or a list
file of `A<TAB>B` paths; `--direction BtoA` swaps the halves.

Differences, stated: the generator steps first and the discriminator then uses the same fake (the original
updates D first, then G, on one shared forward): one generator forward per iteration either way, so batch
norm's running statistics move once per iteration as in the original. The lr decays linearly per iteration to
0. With dropout (the default), a resumed run draws different dropout masks from the uninterrupted one
(MindSpore's in-graph random state is not checkpointable); everything else resumes exactly.
"""
from mindspore import nn, ops

from training.losses import GradientPenalty, gan_loss, l1
from . import cyclegan as _shared
from .common import build_named_nets, export_model_dir, grid, to_img

NAME = "pix2pix"
DEFAULT_ARCH = "pix2pix"
G_NETS = ("G",)
D_NETS = ("D",)
D_FIRST = False
G_FEEDS_D = 1
G_TERMS = ("G_GAN", "G_L1")
D_TERMS = ("D_real", "D_fake")

DEFAULTS = {"pix2pix": dict(_shared.TRANSLATION_COMMON, netG="unet_256", netD="basic", norm="batch",
                            no_dropout=False, gan_mode="vanilla", lambda_L1=100.0, direction="AtoB")}
NET_KEYS = _shared.NET_KEYS
FLAGS = {k: v for k, v in _shared.FLAGS.items() if k not in ("lambda_A", "lambda_B", "lambda_identity", "pool_size")}
FLAGS.update(lambda_L1=float, direction=str)
check_config = _shared.check_translation_config
finalize_config = _shared.finalize_config
config_from_pretrained = _shared.config_from_pretrained


def net_configs(cfg):
    return {"G": _shared.generator_config(cfg, cfg["input_nc"], cfg["output_nc"]),
            "D": _shared.discriminator_config(cfg, cfg["input_nc"] + cfg["output_nc"])}


def build_nets(cfg):
    return build_named_nets(net_configs(cfg))


class GeneratorLoss(nn.Cell):
    def __init__(self, nets, cfg):
        super().__init__(auto_prefix=False)
        self.G, self.D = nets["G"], nets["D"]
        self.mode, self.lambda_l1 = cfg["gan_mode"], cfg["lambda_L1"]

    def construct(self, real_a, real_b, noise):
        fake_b = self.G(real_a)
        g_gan = gan_loss(self.D(ops.concat((real_a, fake_b), 1)), True, self.mode)
        g_l1 = l1(fake_b, real_b) * self.lambda_l1
        return g_gan + g_l1, (g_gan, g_l1, fake_b)


class DiscriminatorLoss(nn.Cell):
    def __init__(self, nets, cfg):
        super().__init__(auto_prefix=False)
        self.D = nets["D"]
        self.mode, self.lambda_gp = cfg["gan_mode"], cfg["lambda_gp"]
        self.wgangp = cfg["gan_mode"] == "wgangp"
        if self.wgangp:
            self.gp = GradientPenalty(self.D)

    def construct(self, real_a, real_b, noise, fake_b):
        real_ab = ops.concat((real_a, real_b), 1)
        fake_ab = ops.concat((real_a, fake_b), 1)
        d_real = gan_loss(self.D(real_ab), True, self.mode) * 0.5
        d_fake = gan_loss(self.D(fake_ab), False, self.mode) * 0.5
        loss = d_real + d_fake
        if self.wgangp:
            loss = loss + self.lambda_gp * self.gp(real_ab, fake_ab, noise[:, 0])
        return loss, (d_real, d_fake)


def make_losses(nets, cfg):
    return GeneratorLoss(nets, cfg), DiscriminatorLoss(nets, cfg), None


def clamp01_params(nets):
    return []


def build_data(cfg, dataset_dir):
    from training.data import aligned_batches, aligned_pairs, fixed_pairs
    pairs, bad = aligned_pairs(dataset_dir, "train")
    swap = cfg.get("direction", "AtoB") == "BtoA"
    notes = [f"train: {len(pairs)} pairs" + (f" ({bad} unreadable skipped)" if bad else "")]
    try:
        test_pairs, _ = aligned_pairs(dataset_dir, "test")
    except Exception:
        test_pairs = pairs
    samples = fixed_pairs(test_pairs, cfg["img_size"], min(4, len(test_pairs)), swap)

    def factory(start_iter):
        return aligned_batches(pairs, cfg["img_size"], cfg["batch_size"], cfg["seed"], start_iter,
                               cfg["iterations"], cfg.get("workers", 2), n_uniform=1, swap=swap)
    return factory, samples, notes, len(pairs)


def sample_grid(nets, inputs, cfg=None):
    """Rows: input A, generated B, real B; columns: samples."""
    import mindspore as ms
    real_a, real_b = inputs
    fake = nets["G"](ms.Tensor(real_a)).asnumpy()
    return grid([[to_img(a) for a in x] for x in (real_a, fake, real_b)])


def export(nets, cfg, directory, label=None):
    export_model_dir(nets, net_configs(cfg), cfg["arch"], directory, label or f"trained {cfg['arch']}",
                     {k: cfg[k] for k in NET_KEYS + ("direction",) if k in cfg})
