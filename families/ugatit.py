"""U-GAT-IT and photo2cartoon: unpaired image translation with CAM attention and (Soft-)AdaLIN.

Losses as published: LSGAN on the patch and CAM logits of a global (n_layers 7) and a local (n_layers 5)
discriminator per domain; L1 cycle and identity; BCE on the generators' CAM logits (fake from the other
domain -> 1, identity -> 0); photo2cartoon adds a face-ID term (1 - cosine similarity of MobileFaceNet
embeddings). The discriminators are updated first, then the generators; rho and w are clamped to [0, 1]
after each generator step. Adam 1e-4 (0.5, 0.999), weight decay 1e-4, linear decay to 0 over the second half.
Not in the papers: --paired_weight adds an L1 term from genA2B(A) to the trainB image of the same name, for
trainB folders that hold a teacher's output of each trainA image (distillation; docs/families.md).
"""
import json
import os

import numpy as np
from mindspore import nn, ops

from training.losses import bce_logits, l1, mse
from . import Family, Losses, Option, Runner, adopt_pretrained, parse_bool, register_family
from .common import heatmap, to_img, unpaired_data

COMMON = dict(lr=1e-4, beta1=0.5, beta2=0.999, weight_decay=1e-4, batch_size=1, iterations=1_000_000,
              print_freq=1000, save_freq=10000, sample_freq=1000, seed=0, img_size=256, adv_weight=1.0,
              identity_weight=10.0, cam_weight=1000.0, n_dis_global=7, n_dis_local=5, faceid_weights=None,
              paired_weight=0.0)
GENERATORS = ("ugatit_p2c_generator", "ugatit_generator")


class GeneratorLoss(nn.Cell):
    terms = ("G_adv", "G_cycle", "G_identity", "G_cam", "G_faceid")

    def __init__(self, nets, cfg, face_id=None):
        super().__init__(auto_prefix=False)
        # --paired_weight: an L1 term from genA2B(A) to the B image of the same name (a teacher's output)
        self.paired = cfg.get("paired_weight", 0.0)
        if self.paired > 0:
            self.terms = self.terms + ("G_paired",)
        for n in UGATIT.generators + UGATIT.discriminators:
            setattr(self, n, nets[n])
        self.adv, self.cyc = cfg["adv_weight"], cfg["cycle_weight"]
        self.idt, self.cam = cfg["identity_weight"], cfg["cam_weight"]
        self.fid = cfg["faceid_weight"] if face_id is not None else 0.0
        self.use_fid = face_id is not None and cfg["faceid_weight"] > 0
        if self.use_fid:
            self.face_id = face_id

    def _adv(self, fake, dis_g, dis_l):
        g_logit, g_cam, _ = dis_g(fake)
        l_logit, l_cam, _ = dis_l(fake)
        return mse(g_logit, 1.0) + mse(g_cam, 1.0) + mse(l_logit, 1.0) + mse(l_cam, 1.0)

    def construct(self, real_a, real_b):
        fake_a2b, fake_a2b_cam, _ = self.genA2B(real_a)
        fake_b2a, fake_b2a_cam, _ = self.genB2A(real_b)
        # cycle and identity passes share one call per generator (batch-concatenated): every layer of these
        # generators works per sample, so this is the published computation, with 4 generator calls in the
        # compiled graph instead of 6 (graph mode inlines each call; compile time grows with them).
        n = real_a.shape[0]
        out_b2a, cam_b2a, _ = self.genB2A(ops.concat((fake_a2b, real_a), 0))
        out_a2b, cam_a2b, _ = self.genA2B(ops.concat((fake_b2a, real_b), 0))
        fake_a2b2a, fake_a2a, fake_a2a_cam = out_b2a[:n], out_b2a[n:], cam_b2a[n:]
        fake_b2a2b, fake_b2b, fake_b2b_cam = out_a2b[:n], out_a2b[n:], cam_a2b[n:]
        adv = self._adv(fake_b2a, self.disGA, self.disLA) + self._adv(fake_a2b, self.disGB, self.disLB)
        cyc = l1(fake_a2b2a, real_a) + l1(fake_b2a2b, real_b)
        idt = l1(fake_a2a, real_a) + l1(fake_b2b, real_b)
        cam = ((bce_logits(fake_b2a_cam, 1.0) + bce_logits(fake_a2a_cam, 0.0))
               + (bce_logits(fake_a2b_cam, 1.0) + bce_logits(fake_b2b_cam, 0.0)))
        fid = ops.zeros((), adv.dtype)
        if self.use_fid:
            fid = self.face_id.distance(real_a, fake_a2b) + self.face_id.distance(real_b, fake_b2a)
        loss = self.adv * adv + self.cyc * cyc + self.idt * idt + self.cam * cam + self.fid * fid
        terms = {"G_adv": adv, "G_cycle": cyc, "G_identity": idt, "G_cam": cam, "G_faceid": fid}
        if self.paired > 0:
            paired = l1(fake_a2b, real_b)
            loss = loss + self.paired * paired
            terms["G_paired"] = paired
        return loss, terms


class Translate(nn.Cell):
    """The discriminator step's inputs: (fake_A2B, fake_B2A), a forward run outside the D step's gradient."""

    def __init__(self, nets):
        super().__init__(auto_prefix=False)
        self.genA2B, self.genB2A = nets["genA2B"], nets["genB2A"]

    def construct(self, real_a, real_b):
        return self.genA2B(real_a)[0], self.genB2A(real_b)[0]


class DiscriminatorLoss(nn.Cell):
    terms = ("D_adv_A", "D_adv_B")

    def __init__(self, nets, cfg):
        super().__init__(auto_prefix=False)
        for n in UGATIT.discriminators:
            setattr(self, n, nets[n])
        self.adv = cfg["adv_weight"]

    def _d(self, real, fake, dis):
        r_logit, r_cam, _ = dis(real)
        f_logit, f_cam, _ = dis(fake)
        return mse(r_logit, 1.0) + mse(f_logit, 0.0) + mse(r_cam, 1.0) + mse(f_cam, 0.0)

    def construct(self, real_a, real_b, fake_a2b, fake_b2a):
        d_a = self.adv * (self._d(real_a, fake_b2a, self.disGA) + self._d(real_a, fake_b2a, self.disLA))
        d_b = self.adv * (self._d(real_b, fake_a2b, self.disGB) + self._d(real_b, fake_a2b, self.disLB))
        return d_a + d_b, {"D_adv_A": d_a, "D_adv_B": d_b}


class CartoonRunner(Runner):
    """photo -> face front end -> generator -> composite on white (inference.cartoon.Cartoonizer)."""
    verb = "cartoonized"


    def __init__(self, checkpoint, direction, no_preprocess):
        from inference.cartoon import Cartoonizer
        self.cartoonizer = Cartoonizer(checkpoint, direction)
        self.needs_face = not no_preprocess
        self.suffixes = ("cartoon",)
        self.label = self.cartoonizer.label

    def __call__(self, image):
        if self.needs_face:
            return {"cartoon": self.cartoonizer.cartoonize_face(image)}
        return {"cartoon": self.cartoonizer.cartoonize(image)}


@register_family
class UGATIT(Family):
    name = "ugatit"
    summary = "U-GAT-IT / photo2cartoon: unpaired translation (photo -> cartoon), --arch photo2cartoon | ugatit"
    archs = {
        "photo2cartoon": dict(COMMON, ngf=32, light=True, n_blocks=4, cycle_weight=50.0, faceid_weight=1.0),
        "ugatit": dict(COMMON, ngf=64, light=True, n_blocks=4, cycle_weight=10.0, faceid_weight=0.0),
    }
    default_arch = "photo2cartoon"
    generators = ("genA2B", "genB2A")
    discriminators = ("disGA", "disGB", "disLA", "disLB")
    d_first = True
    net_keys = ("ngf", "light", "n_blocks", "img_size", "n_dis_global", "n_dis_local")
    data_layout = "trainA/ trainB/ (testA/ testB/) of images, or trainA.txt trainB.txt lists"
    output_folder = "cartoon"
    options = (
        Option("ngf", int, "generator and discriminator width"),
        Option("n_blocks", int, "residual blocks (--arch ugatit)"),
        Option("light", parse_bool, "light generator: the FC head on pooled features (true/false)"),
        Option("n_dis_global", int, "layers of the global discriminators"),
        Option("n_dis_local", int, "layers of the local discriminators"),
        Option("adv_weight", float, "adversarial loss weight"),
        Option("cycle_weight", float, "cycle L1 weight"),
        Option("identity_weight", float, "identity L1 weight"),
        Option("cam_weight", float, "CAM loss weight"),
        Option("faceid_weight", float, "face-ID loss weight (photo2cartoon)"),
        Option("faceid_weights", str, "MobileFaceNet model dir (convert_weights.py --arch mobilefacenet); "
                                      "without it the face-ID loss is off"),
        Option("paired_weight", float, "weight of an L1 term from genA2B(A) to trainB's image of the same "
                                       "name (e.g. a teacher's output: distillation); 0 = unpaired, as "
                                       "published"),
    )
    test_options = (
        Option("direction", str, "AtoB = photo -> cartoon (genA2B), BtoA the other way", ("AtoB", "BtoA"),
               default="AtoB"),
        Option("no_preprocess", help="inputs are already aligned faces (resized to the generator's size, no "
                                     "mask)", flag=True),
    )

    def check_config(self, cfg):
        """The hourglass pools 16x; the discriminators' reflection pads need at least 3 pixels left after
        their n_layers - 2 stride-2 convolutions."""
        if cfg["img_size"] < 32 or cfg["img_size"] % 16:
            return "--img_size must be a multiple of 16 and at least 32 (the hourglass pools 16x)"
        for key in ("n_dis_global", "n_dis_local"):
            n = cfg[key]
            if n < 3:
                return f"--{key} must be at least 3"
            if cfg["img_size"] // 2 ** (n - 2) < 3:
                need = 3 * 2 ** (n - 2)
                return (f"--img_size {cfg['img_size']} is too small for a discriminator with {key}={n} "
                        f"(needs >= {need}); lower --{key}")
        if cfg.get("paired_weight", 0.0) < 0:
            return "--paired_weight must be 0 or more"
        if cfg.get("faceid_weights") and not os.path.isfile(os.path.join(cfg["faceid_weights"], "model.json")):
            return (f"--faceid_weights {cfg['faceid_weights']} is not a converted MobileFaceNet dir "
                    f"(python convert_weights.py --arch mobilefacenet --src model_mobilefacenet.pth --dst DIR)")
        return None

    def config_from_pretrained(self, cfg, explicit, meta):
        gen = meta["networks"].get("genA2B") or meta["networks"].get("genB2A")
        found = {}
        if gen:
            found = {k: gen["config"][k] for k in ("ngf", "light", "n_blocks", "img_size")
                     if k in gen["config"] and not (k == "img_size" and gen["config"].get("light"))}
        return adopt_pretrained(cfg, explicit, found)

    def net_configs(self, cfg):
        if cfg["arch"] == "photo2cartoon":
            gen = ("ugatit_p2c_generator", dict(ngf=cfg["ngf"], img_size=cfg["img_size"], light=cfg["light"]))
        else:
            gen = ("ugatit_generator", dict(ngf=cfg["ngf"], n_blocks=cfg["n_blocks"], img_size=cfg["img_size"],
                                            light=cfg["light"]))
        dis_g = ("ugatit_discriminator", dict(input_nc=3, ndf=cfg["ngf"], n_layers=cfg["n_dis_global"]))
        dis_l = ("ugatit_discriminator", dict(input_nc=3, ndf=cfg["ngf"], n_layers=cfg["n_dis_local"]))
        return {"genA2B": gen, "genB2A": gen, "disGA": dis_g, "disGB": dis_g, "disLA": dis_l, "disLB": dis_l}

    def losses(self, nets, cfg):
        face_id = None
        if cfg.get("faceid_weights") and cfg["faceid_weight"] > 0:
            from training.face_id import FaceIDDistance
            face_id = FaceIDDistance(cfg["faceid_weights"])
        return Losses(GeneratorLoss(nets, cfg, face_id), DiscriminatorLoss(nets, cfg), Translate(nets))

    def notes(self, cfg):
        if cfg["faceid_weight"] > 0 and not cfg.get("faceid_weights"):
            return ["face-ID loss off: no --faceid_weights given"]
        return []

    def clamp01_params(self, nets):
        """rho (adaLIN / LIN) and w_gamma / w_beta (Soft-AdaLIN) of both generators."""
        return [p for n in self.generators for p in nets[n].get_parameters()
                if p.name.rsplit(".", 1)[-1] in ("rho", "w_gamma", "w_beta")]

    def data(self, cfg, dataset_dir):
        if cfg.get("paired_weight", 0.0) > 0:
            from .common import same_name_pairs_data
            return same_name_pairs_data(cfg, dataset_dir)
        return unpaired_data(cfg, dataset_dir)

    def eval_sets(self, cfg, dataset_dir):
        from .common import unpaired_eval_sets
        return unpaired_eval_sets(cfg, dataset_dir, lambda nets, x: nets["genA2B"](x)[0],
                                  lambda nets, x: nets["genB2A"](x)[0])

    def sample_grid(self, nets, samples, cfg):
        """Columns: samples; rows: A, CAM heatmap (A->B), fake B, cycle A | B, heatmap (B->A), fake A, cycle B."""
        import mindspore as ms
        cols = []
        for x, fwd, back in ((samples[0], nets["genA2B"], nets["genB2A"]), (samples[1], nets["genB2A"], nets["genA2B"])):
            real = ms.Tensor(x)
            fake, _, heat = fwd(real)
            cyc = back(fake)[0]
            r, f, h, c = real.asnumpy(), fake.asnumpy(), heat.asnumpy(), cyc.asnumpy()
            s = r.shape[2]
            cols.append([np.concatenate([to_img(r[i]), heatmap(h[i], s), to_img(f[i]), to_img(c[i])], 0)
                         for i in range(r.shape[0])])
        return np.concatenate([np.concatenate(a, 1) for a in cols], 0)

    def default_checkpoint(self, root):
        """The converted published weights first, then the bundled demo model."""
        from inference.cartoon import default_checkpoint
        return default_checkpoint() or os.path.join(root, "pretrained_models", "photo2cartoon")

    def runner(self, args, checkpoint):
        return CartoonRunner(checkpoint, args.direction, args.no_preprocess)

    def compile_cache_parts(self, args, checkpoint):
        """The cartoon path compiles one graph: the chosen generator at batch 1 and its img_size, on the CPU
        kernels as this machine enables them. Its model.json (configs, not weights) names it."""
        import kernels
        try:
            with open(os.path.join(checkpoint, "model.json"), encoding="utf-8") as f:
                networks = json.load(f).get("networks")
        except (OSError, ValueError):
            return None
        return [json.dumps(networks, sort_keys=True), args.direction, "cartoon batch 1", kernels.enabled(),
                kernels.why_not()]
