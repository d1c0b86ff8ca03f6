"""STGAN and AttGAN: facial attribute editing ("make me bald", with an intensity slider).

As published: WGAN-GP (penalty 10 on the adversarial head), attribute classification (BCE on the
discriminator's attribute head: weight 10 for G on the edited image, 1 for D on the real one),
reconstruction L1 100 (the image re-generated with "no change": difference 0 for STGAN, the source
attributes for AttGAN), Adam 2e-4 (0.5, 0.999), 5 discriminator steps (each on its own batch) per generator
step, lr / 10 halfway through, thres_int 0.5. Target attributes are the source attributes shuffled within
the batch. Data: CelebA's list_attr_celeba.txt + img_align_celeba/ (CelebA's 170 px crop, then img_size),
with --selected_attrs.
Differences, stated: no attribute-intensity sampling during training (targets are +-thres_int); the
generator step reuses the last discriminator batch rather than drawing a sixth.
"""
import numpy as np
from mindspore import nn

from data.celeba import CELEBA_13
from inference.attributes import EDIT_OPTIONS, EditRunner, edit_columns
from training.losses import FirstOutput, GradientPenalty, bce_logits, l1
from . import Family, Losses, Option, TrainingData, adopt_pretrained, parse_bool, register_family
from .common import celeba_split, grid, to_img, wgan_gp_config_problem

COMMON = dict(lr=2e-4, beta1=0.5, beta2=0.999, weight_decay=0.0, batch_size=32, n_epochs=100, iterations=None,
              print_freq=100, save_freq=2000, sample_freq=500, seed=0, img_size=128, dim=64, enc_layers=5,
              dec_layers=5, dis_dim=64, dis_layers=5, dis_fc_dim=1024, thres_int=0.5, lambda_gp=10.0,
              lambda_att_g=10.0, lambda_att_d=1.0, lambda_rec=100.0, n_critic=5, selected_attrs=list(CELEBA_13),
              lr_schedule="step")


def _signed(source, target, thres, label):
    """The generator's attribute input in tensor maths: (2t - 1) * thres [- (2s - 1) * thres]."""
    tgt = (target * 2.0 - 1.0) * thres
    return tgt - (source * 2.0 - 1.0) * thres if label == "diff" else tgt


class GeneratorLoss(nn.Cell):
    terms = ("G_adv", "G_att", "G_rec")

    def __init__(self, nets, cfg):
        super().__init__(auto_prefix=False)
        self.G, self.D = nets["G"], nets["D"]
        self.thres, self.label = cfg["thres_int"], cfg["label"]
        self.w_att, self.w_rec = cfg["lambda_att_g"], cfg["lambda_rec"]

    def construct(self, x, a, b, alpha):
        fake = self.G(x, _signed(a, b, self.thres, self.label))
        rec = self.G(x, _signed(a, a, self.thres, self.label))
        adv, att = self.D(fake)
        g_adv = -adv.mean()
        g_att = bce_logits(att, b)
        g_rec = l1(rec, x)
        return g_adv + self.w_att * g_att + self.w_rec * g_rec, {"G_adv": g_adv, "G_att": g_att, "G_rec": g_rec}


class Translate(nn.Cell):
    """The D step's fake: G(x, target attributes), computed before (outside) the D gradient."""

    def __init__(self, nets, cfg):
        super().__init__(auto_prefix=False)
        self.G = nets["G"]
        self.thres, self.label = cfg["thres_int"], cfg["label"]

    def construct(self, x, a, b, alpha):
        return self.G(x, _signed(a, b, self.thres, self.label))


class DiscriminatorLoss(nn.Cell):
    terms = ("D_adv", "D_gp", "D_att")

    def __init__(self, nets, cfg):
        super().__init__(auto_prefix=False)
        self.D = nets["D"]
        self.gp = GradientPenalty(FirstOutput(self.D))
        self.w_gp, self.w_att = cfg["lambda_gp"], cfg["lambda_att_d"]

    def construct(self, x, a, b, alpha, fake):
        adv_real, att_real = self.D(x)
        adv_fake, _ = self.D(fake)
        d_adv = adv_fake.mean() - adv_real.mean()
        d_gp = self.gp(x, fake, alpha)
        d_att = bce_logits(att_real, a)
        return d_adv + self.w_gp * d_gp + self.w_att * d_att, {"D_adv": d_adv, "D_gp": d_gp, "D_att": d_att}


@register_family
class STGAN(Family):
    name = "stgan"
    summary = "STGAN / AttGAN: facial attribute editing with an intensity slider, --arch stgan | attgan"
    archs = {"stgan": dict(COMMON, shortcut_layers=4, inject_layers=4, use_stu=True, label="diff"),
             "attgan": dict(COMMON, shortcut_layers=1, inject_layers=1, use_stu=False, label="target")}
    default_arch = "stgan"
    generators = ("G",)
    discriminators = ("D",)
    d_first = True
    net_keys = ("dim", "enc_layers", "dec_layers", "shortcut_layers", "inject_layers", "use_stu", "img_size",
                "dis_dim", "dis_layers", "dis_fc_dim", "selected_attrs", "label", "thres_int")
    data_layout = "list_attr_celeba.txt and img_align_celeba/ (CelebA's layout)"
    options = (
        Option("selected_attrs", str, "CelebA attribute names (default the 13: Bald Bangs Black_Hair ... Young)",
               nargs="+"),
        Option("use_stu", parse_bool, "Selective Transfer Units (true/false)"),
        Option("dim", int, "generator width"),
        Option("enc_layers", int, "encoder layers"),
        Option("dec_layers", int, "decoder layers"),
        Option("shortcut_layers", int, "skip connections (through STUs with --use_stu)"),
        Option("inject_layers", int, "decoder layers the attributes are injected into"),
        Option("dis_dim", int, "discriminator width"),
        Option("dis_layers", int, "discriminator layers"),
        Option("dis_fc_dim", int, "discriminator heads' hidden width"),
        Option("thres_int", float, "attribute intensity in training"),
        Option("lambda_gp", float, "gradient penalty weight"),
        Option("lambda_att_g", float, "attribute loss weight for G"),
        Option("lambda_att_d", float, "attribute loss weight for D"),
        Option("lambda_rec", float, "reconstruction L1 weight"),
        Option("n_critic", int, "discriminator steps per generator step"),
    )
    test_options = EDIT_OPTIONS

    def check_config(self, cfg):
        if not cfg["selected_attrs"]:
            return "--selected_attrs must name at least one attribute"
        if len(set(cfg["selected_attrs"])) != len(cfg["selected_attrs"]):
            return "--selected_attrs names an attribute twice"
        for key in ("enc_layers", "dis_layers"):
            if cfg["img_size"] % 2 ** cfg[key] or cfg["img_size"] < 2 ** cfg[key]:
                return f"--img_size {cfg['img_size']} must be a multiple of 2^{key} = {2 ** cfg[key]}"
        if cfg["dec_layers"] != cfg["enc_layers"]:
            return "--dec_layers must equal --enc_layers"
        for key in ("shortcut_layers", "inject_layers"):
            if not 0 <= cfg[key] < cfg["dec_layers"]:
                return f"--{key} must be between 0 and dec_layers - 1"
        return wgan_gp_config_problem(cfg, "STGAN / AttGAN")

    def finalize_schedule(self, cfg, n_train):
        """An epoch is n_train / (batch_size * n_critic) iterations (each takes n_critic batches); the lr drops
        to a tenth halfway."""
        per_epoch = max(1, n_train // (cfg["batch_size"] * cfg["n_critic"]))
        if cfg.get("iterations") is None:
            cfg["iterations"] = cfg["n_epochs"] * per_epoch
        cfg["decay_start"] = cfg["iterations"] // 2
        cfg["iterations_per_epoch"] = per_epoch

    def config_from_pretrained(self, cfg, explicit, meta):
        g = meta["networks"].get("G", {}).get("config", {})
        d = meta["networks"].get("D", {}).get("config", {})
        extra = meta.get("attributes", {})
        found = {k: g[k] for k in ("dim", "enc_layers", "dec_layers", "shortcut_layers", "inject_layers", "use_stu",
                                   "img_size") if k in g}
        found.update({f"dis_{k}": d[k] for k in ("dim",) if k in d})
        if "n_layers" in d:
            found["dis_layers"] = d["n_layers"]
        if "fc_dim" in d:
            found["dis_fc_dim"] = d["fc_dim"]
        if "selected_attrs" in extra:
            found["selected_attrs"] = list(extra["selected_attrs"])
        return adopt_pretrained(cfg, explicit, found)

    def net_configs(self, cfg):
        n = len(cfg["selected_attrs"])
        return {"G": ("stgan_generator", dict(n_attrs=n, dim=cfg["dim"], enc_layers=cfg["enc_layers"],
                                              dec_layers=cfg["dec_layers"], shortcut_layers=cfg["shortcut_layers"],
                                              inject_layers=cfg["inject_layers"], use_stu=cfg["use_stu"],
                                              img_size=cfg["img_size"])),
                "D": ("stgan_discriminator", dict(n_attrs=n, dim=cfg["dis_dim"], n_layers=cfg["dis_layers"],
                                                  fc_dim=cfg["dis_fc_dim"], img_size=cfg["img_size"]))}

    def second_order_nets(self, cfg):
        return ("D",)

    def losses(self, nets, cfg):
        return Losses(GeneratorLoss(nets, cfg), DiscriminatorLoss(nets, cfg), Translate(nets, cfg))

    def data(self, cfg, dataset_dir):
        from data.celeba import load_face
        from data.pipelines import attribute_batches
        paths, attrs, tr_paths, tr_attrs, test, skipped, note = celeba_split(dataset_dir, cfg["selected_attrs"])
        notes = [note]
        k = test[:4]
        samples = (np.stack([load_face(paths[i], cfg["img_size"]) for i in k]), attrs[k])
        per_iter = cfg["n_critic"]

        def factory(start_iter):
            return attribute_batches(tr_paths, tr_attrs, cfg["img_size"], cfg["batch_size"], cfg["seed"],
                                     start_iter * per_iter, cfg["iterations"] * per_iter, cfg.get("workers", 2))
        return TrainingData(factory, samples, notes, len(tr_paths), skipped)

    def sample_grid(self, nets, samples, cfg):
        """Rows: samples; columns: input, reconstruction, each attribute toggled."""
        x, attrs = samples
        cols = edit_columns(nets["G"], x, attrs, cfg["selected_attrs"], cfg["thres_int"], cfg["label"])
        return grid([[to_img(c[i]) for c in cols] for i in range(len(x))])

    def model_json_extra(self, cfg):
        return {"attributes": {"selected_attrs": list(cfg["selected_attrs"]), "thres_int": cfg["thres_int"],
                               "label": cfg["label"]}}

    def runner(self, args, checkpoint):
        return EditRunner(checkpoint, args)
