"""CycleGAN: unpaired A <-> B translation (e.g. makeup on / off), as junyanz/pytorch-CycleGAN-and-pix2pix.

G_A: A -> B judged by D_A (real B vs fake B), G_B: B -> A judged by D_B; cycle L1 with lambda_A = lambda_B =
10; identity L1 weighted lambda_identity (0.5) times the cycle weight of the target domain; adversarial loss
lsgan (or vanilla, wgangp); an image pool of 50 fakes for the discriminators; discriminator loss x 0.5;
Adam 2e-4 (0.5, 0.999); constant lr for n_epochs, then linear decay over n_epochs_decay. Generators step
first, then the discriminators on the same fakes (taken from the generator step, through the pool).

Differences, stated: the lr decays linearly per iteration to 0 (the original steps once per epoch and stops
at 1/(n_epochs_decay + 1)); with `--gan_mode wgangp` the gradient penalty (10, "mixed") is applied (the
original computes the WGAN loss but never adds its penalty).
"""
import math

from mindspore import nn, ops

from models.cyclegan import DISCRIMINATORS, GENERATORS, NORMS, build
from training.losses import GAN_MODES, GradientPenalty, gan_loss, l1
from . import Family, Losses, Option, Runner, adopt_pretrained, parse_bool, register_family
from .common import grid, to_img, unpaired_data

# options and defaults shared with pix2pix
TRANSLATION_COMMON = dict(lr=2e-4, beta1=0.5, beta2=0.999, weight_decay=0.0, batch_size=1, n_epochs=100,
                          n_epochs_decay=100, iterations=None, print_freq=100, save_freq=5000, sample_freq=500,
                          seed=0, img_size=256, input_nc=3, output_nc=3, ngf=64, ndf=64, n_layers_D=3,
                          lambda_gp=10.0)
TRANSLATION_OPTIONS = (
    Option("netG", str, "generator", tuple(GENERATORS)),
    Option("netD", str, "discriminator", tuple(DISCRIMINATORS)),
    Option("norm", str, "normalisation", NORMS),
    Option("gan_mode", str, "adversarial loss", GAN_MODES),
    Option("ngf", int, "generator width"),
    Option("ndf", int, "discriminator width"),
    Option("n_layers_D", int, "discriminator layers (--netD n_layers)"),
    Option("no_dropout", parse_bool, "no dropout in the generator (true/false)"),
    Option("n_epochs", int, "epochs at the initial lr"),
    Option("n_epochs_decay", int, "epochs of linear decay to 0"),
    Option("lambda_gp", float, "gradient penalty weight (--gan_mode wgangp)"),
    Option("input_nc", int, "input channels"),
    Option("output_nc", int, "output channels"),
)
TRANSLATION_NET_KEYS = ("netG", "netD", "ngf", "ndf", "norm", "no_dropout", "n_layers_D", "img_size", "input_nc",
                        "output_nc")


def check_translation_config(cfg):
    size = cfg["img_size"]
    if cfg["netG"].startswith("unet"):
        need = 2 ** GENERATORS[cfg["netG"]][1]["num_downs"]
        if size % need:
            return f"--img_size {size} does not fit {cfg['netG']} (a multiple of {need} is needed)"
    elif size % 4 or size < 16:
        return f"--img_size {size}: the resnet generators need a multiple of 4, at least 16"
    if cfg["netD"] != "pixel" and size // 2 ** (3 if cfg["netD"] == "basic" else cfg["n_layers_D"]) < 2:
        return f"--img_size {size} is too small for --netD {cfg['netD']}"
    return None


def finalize_epochs(cfg, n_train):
    """Epoch-based schedule -> iterations: an epoch is ceil(n_train / batch_size) iterations, n_train being
    the larger domain (as the original's dataset length). An explicit --iterations wins (decay over the
    same fraction as the epochs)."""
    per_epoch = max(1, math.ceil(n_train / cfg["batch_size"]))
    epochs = cfg["n_epochs"] + cfg["n_epochs_decay"]
    if cfg.get("iterations") is None:
        cfg["iterations"] = epochs * per_epoch
        cfg["decay_start"] = cfg["n_epochs"] * per_epoch
    else:
        cfg["decay_start"] = int(cfg["iterations"] * cfg["n_epochs"] / max(1, epochs))
    cfg["iterations_per_epoch"] = per_epoch


def generator_config(cfg, input_nc, output_nc):
    return build(cfg["netG"], input_nc, output_nc, cfg["ngf"], cfg["norm"], not cfg["no_dropout"])


def discriminator_config(cfg, input_nc):
    return build(cfg["netD"], input_nc, 1, cfg["ndf"], cfg["norm"], n_layers_D=cfg["n_layers_D"])


def translation_from_pretrained(cfg, explicit, meta):
    """The network options of a converted / trained CycleGAN or pix2pix model dir."""
    found = {}
    for name, entry in meta["networks"].items():
        c, model = entry["config"], entry["model"]
        if name.startswith("G"):
            found.update(ngf=c["ngf"], norm=c["norm"])
            if model == "cyclegan_resnet_generator":
                found["netG"] = f"resnet_{c['n_blocks']}blocks"
                found["no_dropout"] = not c["use_dropout"]
            else:
                found["netG"] = f"unet_{2 ** c['num_downs']}"
        elif name.startswith("D"):
            found["ndf"] = c["ndf"]
            if model == "pixel_discriminator":
                found["netD"] = "pixel"
            elif c["n_layers"] == 3:
                found["netD"] = "basic"
            else:
                found.update(netD="n_layers", n_layers_D=c["n_layers"])
    return adopt_pretrained(cfg, explicit, found)


class GeneratorLoss(nn.Cell):
    terms = ("G_A", "G_B", "cycle_A", "cycle_B", "idt_A", "idt_B")

    def __init__(self, nets, cfg):
        super().__init__(auto_prefix=False)
        for n in ("G_A", "G_B", "D_A", "D_B"):
            setattr(self, n, nets[n])
        self.mode = cfg["gan_mode"]
        self.lambda_a, self.lambda_b, self.lambda_idt = cfg["lambda_A"], cfg["lambda_B"], cfg["lambda_identity"]
        self.use_idt = self.lambda_idt > 0 and cfg["input_nc"] == cfg["output_nc"]
        # one call per generator for cycle + identity when every layer works per sample (not batch norm)
        self.batched = cfg["norm"] != "batch"

    def construct(self, real_a, real_b, noise):
        fake_b = self.G_A(real_a)
        fake_a = self.G_B(real_b)
        n = real_a.shape[0]
        if self.use_idt and self.batched:
            out_b = self.G_B(ops.concat((fake_b, real_a), 0))
            out_a = self.G_A(ops.concat((fake_a, real_b), 0))
            rec_a, idt_b, rec_b, idt_a = out_b[:n], out_b[n:], out_a[:n], out_a[n:]
        else:
            rec_a, rec_b = self.G_B(fake_b), self.G_A(fake_a)
            idt_a, idt_b = real_b, real_a
            if self.use_idt:
                idt_a, idt_b = self.G_A(real_b), self.G_B(real_a)
        g_a = gan_loss(self.D_A(fake_b), True, self.mode)
        g_b = gan_loss(self.D_B(fake_a), True, self.mode)
        cyc_a = l1(rec_a, real_a) * self.lambda_a
        cyc_b = l1(rec_b, real_b) * self.lambda_b
        idt_a_loss = l1(idt_a, real_b) * (self.lambda_b * self.lambda_idt)
        idt_b_loss = l1(idt_b, real_a) * (self.lambda_a * self.lambda_idt)
        loss = g_a + g_b + cyc_a + cyc_b + idt_a_loss + idt_b_loss
        terms = {"G_A": g_a, "G_B": g_b, "cycle_A": cyc_a, "cycle_B": cyc_b, "idt_A": idt_a_loss, "idt_B": idt_b_loss}
        return loss, terms, {"fake_B": fake_b, "fake_A": fake_a}


def discriminator_term(dis, gp, real, fake, alpha, mode, lambda_gp):
    """0.5 * (GAN(D(real), real) + GAN(D(fake), fake)) [+ lambda_gp * gradient penalty for wgangp]."""
    loss = (gan_loss(dis(real), True, mode) + gan_loss(dis(fake), False, mode)) * 0.5
    if gp is not None:
        loss = loss + lambda_gp * gp(real, fake, alpha)
    return loss


class DiscriminatorLoss(nn.Cell):
    terms = ("D_A", "D_B")

    def __init__(self, nets, cfg):
        super().__init__(auto_prefix=False)
        self.D_A, self.D_B = nets["D_A"], nets["D_B"]
        self.mode, self.lambda_gp = cfg["gan_mode"], cfg["lambda_gp"]
        self.wgangp = cfg["gan_mode"] == "wgangp"
        if self.wgangp:
            self.gp_a, self.gp_b = GradientPenalty(self.D_A), GradientPenalty(self.D_B)

    def construct(self, real_a, real_b, noise, fake_b, fake_a):
        gp_a = self.gp_a if self.wgangp else None
        gp_b = self.gp_b if self.wgangp else None
        d_a = discriminator_term(self.D_A, gp_a, real_b, fake_b, noise[:, 0], self.mode, self.lambda_gp)
        d_b = discriminator_term(self.D_B, gp_b, real_a, fake_a, noise[:, 1], self.mode, self.lambda_gp)
        return d_a + d_b, {"D_A": d_a, "D_B": d_b}


class TranslateRunner(Runner):
    """photo -> generator -> image (inference.translate.Translator), and the cycle reconstruction."""
    verb = "translated"


    def __init__(self, checkpoint, args, arch):
        from inference.translate import Translator
        pre = args.preprocess or "resize"
        self.t = Translator(checkpoint, args.direction, args.save_cycle, args.load_size,
                            "resize" if pre == "face" else pre, args.eval, expect_arch=arch)
        self.needs_face = pre == "face"
        self.size = args.load_size
        self.suffixes = (f"fake{self.t.out_domain}",) + ((f"rec{self.t.in_domain}",) if args.save_cycle else ())
        self.label = self.t.label

    def __call__(self, image):
        if self.needs_face:
            import cv2
            image = cv2.resize(image.crop_rgb, (self.size, self.size), interpolation=cv2.INTER_AREA)
        return self.t.translate(image)


TRANSLATION_TEST_OPTIONS = (
    Option("direction", str, "AtoB runs G_A (G for pix2pix), BtoA runs G_B", ("AtoB", "BtoA"), default="AtoB"),
    Option("preprocess", str, "how photos reach the generator: resize (to --load_size and back), none (the "
                              "photo's own size) or face (the aligned face crop)", ("resize", "none", "face")),
    Option("load_size", int, "size for --preprocess resize", default=256),
    Option("save_cycle", help="also write the cycle reconstruction (the other generator on the result)", flag=True),
    Option("eval", help="batch-norm running statistics and no dropout (the original's --eval); default: the "
                        "original's test-time forward", flag=True),
)


class TranslationFamily(Family):
    """What CycleGAN and Pix2Pix share: junyanz's option names, the epoch schedule, the model dirs."""
    net_keys = TRANSLATION_NET_KEYS

    def check_config(self, cfg):
        return check_translation_config(cfg)

    def finalize_schedule(self, cfg, n_train):
        finalize_epochs(cfg, n_train)

    def config_from_pretrained(self, cfg, explicit, meta):
        return translation_from_pretrained(cfg, explicit, meta)

    def runner(self, args, checkpoint):
        return TranslateRunner(checkpoint, args, self.name)


@register_family
class CycleGAN(TranslationFamily):
    name = "cyclegan"
    summary = "CycleGAN: unpaired A <-> B translation (makeup off / on), junyanz's options"
    archs = {"cyclegan": dict(TRANSLATION_COMMON, netG="resnet_9blocks", netD="basic", norm="instance",
                              no_dropout=True, gan_mode="lsgan", lambda_A=10.0, lambda_B=10.0, lambda_identity=0.5,
                              pool_size=50)}
    default_arch = "cyclegan"
    generators = ("G_A", "G_B")
    discriminators = ("D_A", "D_B")
    d_first = False
    feeds_d = ("fake_B", "fake_A")
    data_layout = "trainA/ trainB/ (testA/ testB/) of images, or trainA.txt trainB.txt lists"
    options = TRANSLATION_OPTIONS + (
        Option("lambda_A", float, "cycle weight A -> B -> A"),
        Option("lambda_B", float, "cycle weight B -> A -> B"),
        Option("lambda_identity", float, "identity weight, relative to the cycle weight"),
        Option("pool_size", int, "image pool of earlier fakes for the discriminators (0: none)"),
    )
    test_options = TRANSLATION_TEST_OPTIONS

    def net_configs(self, cfg):
        a, b = cfg["input_nc"], cfg["output_nc"]
        return {"G_A": generator_config(cfg, a, b), "G_B": generator_config(cfg, b, a),
                "D_A": discriminator_config(cfg, b), "D_B": discriminator_config(cfg, a)}

    def second_order_nets(self, cfg):
        return ("D_A", "D_B") if cfg["gan_mode"] == "wgangp" else ()

    def losses(self, nets, cfg):
        return Losses(GeneratorLoss(nets, cfg), DiscriminatorLoss(nets, cfg))

    def d_feed(self, cfg):
        from training.pool import ImagePool
        return ImagePool(cfg["pool_size"], cfg["seed"], 2)

    def data(self, cfg, dataset_dir):
        """Unpaired A/B images, plus the two WGAN-GP interpolation weights per sample."""
        return unpaired_data(cfg, dataset_dir, n_uniform=2)

    def eval_sets(self, cfg, dataset_dir):
        from .common import unpaired_eval_sets
        return unpaired_eval_sets(cfg, dataset_dir, lambda nets, x: nets["G_A"](x),
                                  lambda nets, x: nets["G_B"](x))

    def sample_grid(self, nets, samples, cfg):
        """Rows: real A, fake B, reconstructed A | real B, fake A, reconstructed B; columns: samples."""
        import mindspore as ms
        rows = []
        for x, fwd, back in ((samples[0], nets["G_A"], nets["G_B"]), (samples[1], nets["G_B"], nets["G_A"])):
            real = ms.Tensor(x)
            fake = fwd(real)
            rec = back(fake)
            for t in (real, fake, rec):
                rows.append([to_img(a) for a in t.asnumpy()])
        return grid(rows)
