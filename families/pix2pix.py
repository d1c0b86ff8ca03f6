"""Pix2Pix: paired A -> B translation, as junyanz/pytorch-CycleGAN-and-pix2pix.

U-Net 256 generator with dropout, conditional `basic` PatchGAN on concat(A, B) (6 channels), batch norm,
vanilla GAN loss + 100 x L1, discriminator loss x 0.5, no image pool, Adam 2e-4 (0.5, 0.999),
n_epochs + n_epochs_decay schedule. Data: side-by-side A|B images (the original's aligned format) or a list
file of `A<TAB>B` paths; `--direction BtoA` swaps the halves.

Differences, stated: the generator steps first and the discriminator then uses the same fake (the original
updates D first, then G, on one shared forward): one generator forward per iteration either way, so batch
norm's running statistics move once per iteration as in the original. The lr decays linearly per iteration to
0. Dropout draws its masks from step counters saved with the network (models.layers.Dropout), so a resumed
run is exact with dropout on too.
"""
import numpy as np
from mindspore import nn, ops

from training.losses import GradientPenalty, gan_loss, l1
from . import Losses, Option, TrainingData, register_family
from .common import grid, to_img
from .cyclegan import (TRANSLATION_COMMON, TRANSLATION_NET_KEYS, TRANSLATION_OPTIONS, TRANSLATION_TEST_OPTIONS,
                       TranslationFamily, discriminator_config, generator_config)


class GeneratorLoss(nn.Cell):
    terms = ("G_GAN", "G_L1")

    def __init__(self, nets, cfg):
        super().__init__(auto_prefix=False)
        self.G, self.D = nets["G"], nets["D"]
        self.mode, self.lambda_l1 = cfg["gan_mode"], cfg["lambda_L1"]

    def construct(self, real_a, real_b, noise):
        fake_b = self.G(real_a)
        g_gan = gan_loss(self.D(ops.concat((real_a, fake_b), 1)), True, self.mode)
        g_l1 = l1(fake_b, real_b) * self.lambda_l1
        return g_gan + g_l1, {"G_GAN": g_gan, "G_L1": g_l1}, {"fake_B": fake_b}


class DiscriminatorLoss(nn.Cell):
    terms = ("D_real", "D_fake")

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
        return loss, {"D_real": d_real, "D_fake": d_fake}


@register_family
class Pix2Pix(TranslationFamily):
    name = "pix2pix"
    summary = "Pix2Pix: paired A -> B translation (side-by-side A|B images), junyanz's options"
    archs = {"pix2pix": dict(TRANSLATION_COMMON, netG="unet_256", netD="basic", norm="batch", no_dropout=False,
                             gan_mode="vanilla", lambda_L1=100.0, direction="AtoB")}
    default_arch = "pix2pix"
    generators = ("G",)
    discriminators = ("D",)
    d_first = False
    feeds_d = ("fake_B",)
    net_keys = TRANSLATION_NET_KEYS + ("direction",)
    data_layout = "train/ (test/) of side-by-side A|B images, or train.txt of A<TAB>B paths"
    options = TRANSLATION_OPTIONS + (
        Option("lambda_L1", float, "L1 weight"),
        Option("direction", str, "which half is the input", ("AtoB", "BtoA")),
    )
    test_options = tuple(o for o in TRANSLATION_TEST_OPTIONS if o.name != "save_cycle")

    def net_configs(self, cfg):
        return {"G": generator_config(cfg, cfg["input_nc"], cfg["output_nc"]),
                "D": discriminator_config(cfg, cfg["input_nc"] + cfg["output_nc"])}

    def second_order_nets(self, cfg):
        return ("D",) if cfg["gan_mode"] == "wgangp" else ()

    def losses(self, nets, cfg):
        return Losses(GeneratorLoss(nets, cfg), DiscriminatorLoss(nets, cfg))

    def data(self, cfg, dataset_dir):
        from data.folders import DataError, aligned_pairs
        from data.pipelines import aligned_batches, fixed_pairs
        pairs, skipped = aligned_pairs(dataset_dir, "train")
        swap = cfg.get("direction", "AtoB") == "BtoA"
        notes = [f"train: {len(pairs)} pairs" + (f" ({len(skipped)} files skipped)" if skipped else "")]
        try:
            test_pairs, _ = aligned_pairs(dataset_dir, "test")
        except DataError:
            test_pairs = pairs
        samples = fixed_pairs(test_pairs, cfg["img_size"], min(4, len(test_pairs)), swap)

        def factory(start_iter):
            return aligned_batches(pairs, cfg["img_size"], cfg["batch_size"], cfg["seed"], start_iter,
                                   cfg["iterations"], cfg.get("workers", 2), n_uniform=1, swap=swap)
        return TrainingData(factory, samples, notes, len(pairs), skipped)

    def eval_sets(self, cfg, dataset_dir):
        """The test pairs' sources translated, scored against their targets (read at their own size, as a
        target image file would be)."""
        from data.folders import DataError, aligned_pairs
        from data.images import read_training_rgb
        from data.pipelines import fixed_pairs
        from metrics.during_training import EvalSet
        try:
            pairs, _ = aligned_pairs(dataset_dir, "test")
        except DataError:
            return []
        swap = cfg["direction"] == "BtoA"

        def target(a, b):
            if b is None:                       # side by side: A | B
                img = read_training_rgb(a)
                w = img.shape[1] // 2
                b_img, a_img = img[:, w:2 * w], img[:, :w]
            else:
                a_img, b_img = read_training_rgb(a), read_training_rgb(b)
            t = a_img if swap else b_img
            return np.ascontiguousarray(t.transpose(2, 0, 1), dtype=np.float32) / 255.0
        sources = fixed_pairs(pairs, cfg["img_size"], len(pairs), swap)[0]
        name = "B2A" if swap else "A2B"
        return [EvalSet(name, sources, [target(a, b) for a, b in pairs], lambda nets, x: nets["G"](x))]

    def sample_grid(self, nets, samples, cfg):
        """Rows: input A, generated B, real B; columns: samples."""
        import mindspore as ms
        real_a, real_b = samples
        fake = nets["G"](ms.Tensor(real_a)).asnumpy()
        return grid([[to_img(a) for a in x] for x in (real_a, fake, real_b)])

    def runner(self, args, checkpoint):
        args.save_cycle = False
        return super().runner(args, checkpoint)
