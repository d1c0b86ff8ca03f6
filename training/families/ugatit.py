"""U-GAT-IT / photo2cartoon training: networks, losses and defaults for the shared GAN engine.

Losses as published: LSGAN on the patch and CAM logits of the global (n_layers 7) and local (n_layers 5)
discriminators; L1 cycle and identity; BCE on the generators' CAM logits (fake from the other domain -> 1,
identity -> 0); photo2cartoon adds a face-ID term (1 - cosine similarity of MobileFaceNet embeddings).
The discriminators are updated first, then the generators; rho and w are clamped to [0, 1] after each
generator step.
"""

import cv2
import numpy as np

import mindspore as ms
from mindspore import nn, ops

from training.losses import bce_logits as _bce_logits, l1 as _l1, mse as _mse
from .common import adopt_pretrained, build_named_nets, export_model_dir, to_img as _to_img, unpaired_data

NAME = "ugatit"
DEFAULT_ARCH = "photo2cartoon"
G_NETS = ("genA2B", "genB2A")
D_NETS = ("disGA", "disGB", "disLA", "disLB")
D_FIRST = True
G_TERMS = ("G_adv", "G_cycle", "G_identity", "G_cam", "G_faceid")
D_TERMS = ("D_adv_A", "D_adv_B")

COMMON = dict(lr=1e-4, beta1=0.5, beta2=0.999, weight_decay=1e-4, batch_size=1, iterations=1_000_000,
              print_freq=1000, save_freq=10000, sample_freq=1000, seed=0, img_size=256, adv_weight=1.0,
              identity_weight=10.0, cam_weight=1000.0, n_dis_global=7, n_dis_local=5)
DEFAULTS = {
    "photo2cartoon": dict(COMMON, ngf=32, light=True, n_blocks=4, cycle_weight=50.0, faceid_weight=1.0),
    "ugatit": dict(COMMON, ngf=64, light=True, n_blocks=4, cycle_weight=10.0, faceid_weight=0.0),
}
# config keys that shape the networks: a resume or fine-tune must agree on these
NET_KEYS = ("arch", "ngf", "light", "n_blocks", "img_size", "n_dis_global", "n_dis_local")


def check_config(cfg):
    """A one-line problem with the config, or None. The discriminators' reflection pads need at least
    3 pixels left after their n_layers - 2 stride-2 convolutions."""
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
    return None


def config_from_pretrained(cfg, explicit, meta):
    """Adopt the generator options of a converted/trained model dir; a conflicting explicit flag is an error."""
    gen = meta["networks"].get("genA2B") or meta["networks"].get("genB2A")
    found = {}
    if gen:
        found = {k: gen["config"][k] for k in ("ngf", "light", "n_blocks", "img_size")
                 if k in gen["config"] and not (k == "img_size" and gen["config"].get("light"))}
    return adopt_pretrained(cfg, explicit, found)


def net_configs(cfg):
    if cfg["arch"] == "photo2cartoon":
        gen = ("ugatit_p2c_generator", dict(ngf=cfg["ngf"], img_size=cfg["img_size"], light=cfg["light"]))
    else:
        gen = ("ugatit_generator", dict(ngf=cfg["ngf"], n_blocks=cfg["n_blocks"], img_size=cfg["img_size"],
                                        light=cfg["light"]))
    dis_g = ("ugatit_discriminator", dict(input_nc=3, ndf=cfg["ngf"], n_layers=cfg["n_dis_global"]))
    dis_l = ("ugatit_discriminator", dict(input_nc=3, ndf=cfg["ngf"], n_layers=cfg["n_dis_local"]))
    return {"genA2B": gen, "genB2A": gen, "disGA": dis_g, "disGB": dis_g, "disLA": dis_l, "disLB": dis_l}


def build_nets(cfg):
    return build_named_nets(net_configs(cfg))


class GeneratorLoss(nn.Cell):
    def __init__(self, nets, cfg, face_id=None):
        super().__init__(auto_prefix=False)
        for n in G_NETS + D_NETS:
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
        return _mse(g_logit, 1.0) + _mse(g_cam, 1.0) + _mse(l_logit, 1.0) + _mse(l_cam, 1.0)

    def construct(self, real_a, real_b):
        fake_a2b, fake_a2b_cam, _ = self.genA2B(real_a)
        fake_b2a, fake_b2a_cam, _ = self.genB2A(real_b)
        # cycle and identity passes share one call per generator (batch-concatenated): every layer of these
        # generators works per sample, so this is the published computation, with 4 generator calls in the
        # compiled graph instead of 6 (GRAPH_MODE inlines each call; compile time grows with them).
        n = real_a.shape[0]
        out_b2a, cam_b2a, _ = self.genB2A(ops.concat((fake_a2b, real_a), 0))
        out_a2b, cam_a2b, _ = self.genA2B(ops.concat((fake_b2a, real_b), 0))
        fake_a2b2a, fake_a2a, fake_a2a_cam = out_b2a[:n], out_b2a[n:], cam_b2a[n:]
        fake_b2a2b, fake_b2b, fake_b2b_cam = out_a2b[:n], out_a2b[n:], cam_a2b[n:]
        adv_a = self._adv(fake_b2a, self.disGA, self.disLA)
        adv_b = self._adv(fake_a2b, self.disGB, self.disLB)
        cyc_a, cyc_b = _l1(fake_a2b2a, real_a), _l1(fake_b2a2b, real_b)
        idt_a, idt_b = _l1(fake_a2a, real_a), _l1(fake_b2b, real_b)
        cam_a = _bce_logits(fake_b2a_cam, 1.0) + _bce_logits(fake_a2a_cam, 0.0)
        cam_b = _bce_logits(fake_a2b_cam, 1.0) + _bce_logits(fake_b2b_cam, 0.0)
        fid = ops.zeros((), ms.float32)
        if self.use_fid:
            fid = self.face_id.distance(real_a, fake_a2b) + self.face_id.distance(real_b, fake_b2a)
        adv, cyc, idt, cam = adv_a + adv_b, cyc_a + cyc_b, idt_a + idt_b, cam_a + cam_b
        loss = self.adv * adv + self.cyc * cyc + self.idt * idt + self.cam * cam + self.fid * fid
        return loss, (adv, cyc, idt, cam, fid)


class Translate(nn.Cell):
    """The discriminator step's inputs from the generators: (fake_A2B, fake_B2A), computed outside the
    discriminator's gradient graph (the engine runs it as a plain forward before the D step)."""

    def __init__(self, nets):
        super().__init__(auto_prefix=False)
        self.genA2B, self.genB2A = nets["genA2B"], nets["genB2A"]

    def construct(self, real_a, real_b):
        return self.genA2B(real_a)[0], self.genB2A(real_b)[0]


class DiscriminatorLoss(nn.Cell):
    def __init__(self, nets, cfg):
        super().__init__(auto_prefix=False)
        for n in D_NETS:
            setattr(self, n, nets[n])
        self.adv = cfg["adv_weight"]

    def _d(self, real, fake, dis):
        r_logit, r_cam, _ = dis(real)
        f_logit, f_cam, _ = dis(fake)
        return _mse(r_logit, 1.0) + _mse(f_logit, 0.0) + _mse(r_cam, 1.0) + _mse(f_cam, 0.0)

    def construct(self, real_a, real_b, fake_a2b, fake_b2a):
        d_a = self._d(real_a, fake_b2a, self.disGA) + self._d(real_a, fake_b2a, self.disLA)
        d_b = self._d(real_b, fake_a2b, self.disGB) + self._d(real_b, fake_a2b, self.disLB)
        d_a, d_b = self.adv * d_a, self.adv * d_b
        return d_a + d_b, (d_a, d_b)


def make_losses(nets, cfg):
    face_id = None
    if cfg.get("faceid_weights") and cfg["faceid_weight"] > 0:
        from training.face_id import FaceIDDistance
        face_id = FaceIDDistance(cfg["faceid_weights"])
    return GeneratorLoss(nets, cfg, face_id), DiscriminatorLoss(nets, cfg), Translate(nets)


def build_data(cfg, dataset_dir):
    """dataset_dir/{trainA,trainB,testA,testB} (see common.unpaired_data)."""
    return unpaired_data(cfg, dataset_dir)


def clamp01_params(nets):
    """rho (adaLIN/LIN) and w_gamma/w_beta (Soft-AdaLIN) of both generators: clamped to [0, 1] after each
    generator step, inside the compiled step."""
    return [p for n in G_NETS for p in nets[n].get_parameters()
            if p.name.rsplit(".", 1)[-1] in ("rho", "w_gamma", "w_beta")]


# --------------------------------------------------------------------------------------- outputs


def _heat(cam, size):
    cam = cam[0]
    cam = cam - cam.min()
    cam = cam / max(float(cam.max()), 1e-12)
    cam = cv2.resize((cam * 255).astype(np.uint8), (size, size))
    return cv2.applyColorMap(cam, cv2.COLORMAP_JET)[:, :, ::-1]


def sample_grid(nets, inputs, cfg=None):
    """Columns = samples; rows: A, CAM heatmap (A->B), fake B, cycle A | B, heatmap (B->A), fake A, cycle B."""
    real_a, real_b = (ms.Tensor(x) for x in inputs)
    cols = []
    for real, fwd, back in ((real_a, nets["genA2B"], nets["genB2A"]), (real_b, nets["genB2A"], nets["genA2B"])):
        fake, _, heat = fwd(real)
        cyc = back(fake)[0]
        r, f, h, c = real.asnumpy(), fake.asnumpy(), heat.asnumpy(), cyc.asnumpy()
        s = r.shape[2]
        cols.append([np.concatenate([_to_img(r[i]), _heat(h[i], s), _to_img(f[i]), _to_img(c[i])], 0)
                     for i in range(r.shape[0])])
    return np.concatenate([np.concatenate(a, 1) for a in cols], 0)


def export(nets, cfg, directory, label=None):
    """Write an inference model directory (model.json + one .ckpt per net), loadable by models.load_network."""
    export_model_dir(nets, net_configs(cfg), cfg["arch"], directory, label or f"trained {cfg['arch']}",
                     {k: cfg[k] for k in NET_KEYS if k in cfg})
