"""StarGAN: one generator for many domains (Choi et al. 2018), trained as its published code does.

As published: WGAN-GP (penalty 10, on the source map), domain classification (1; BCE summed over the
attributes for CelebA, cross-entropy for folder-per-domain data such as RaFD), reconstruction L1 (10) of
G(G(x, c_trg), c_org), 5 critic steps per generator step, Adam 1e-4 (0.5, 0.999), batch 16. Target labels
are the batch's labels shuffled within the batch. CelebA (list_attr_celeba.txt) with --selected_attrs
(default Black_Hair Blond_Hair Brown_Hair Male Young), the centre 178 px crop resized to 128 and random
flips; or one subfolder of images per domain (DIR/train/<domain>/, the centre square).
One iteration here is one generator step with its 5 critic steps: the original's 200000 iterations (critic
steps) are `--iterations 40000`, its decay over the last 100000 is `--decay_iters 20000`.
Differences, stated: the learning rate decays linearly to 0 over the last decay_iters, as the paper says; the
published code's update (minus lr0 / num_iters_decay every 1000 iterations) leaves it at 99.9 % instead.
At test time the original never calls eval(), so its generator normalises by each image's own statistics;
test.py does the same by default (--stats instance) and offers the running statistics (--stats running).
"""
import numpy as np
from mindspore import nn, ops

from data.celeba import HAIR_COLOURS
from inference.domains import DOMAIN_OPTIONS, TranslateRunner, target_labels
from training.losses import FirstOutput, GradientPenalty, bce_logits, l1
from . import Family, Losses, Option, TrainingData, adopt_pretrained, register_family
from .common import grid, to_img, wgan_gp_config_problem

CELEBA_5 = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young")
RAFD_8 = ("angry", "contemptuous", "disgusted", "fearful", "happy", "neutral", "sad", "surprised")


def classification_loss(logits, target, domains):
    """CelebA: BCE with logits summed over the attributes, averaged over the batch; domains (one-hot
    targets): cross-entropy."""
    if domains:
        return -(target * ops.log_softmax(logits, 1)).sum(1).mean()
    return bce_logits(logits, target) * float(logits.shape[1])


class GeneratorLoss(nn.Cell):
    terms = ("G_adv", "G_cls", "G_rec")

    def __init__(self, nets, cfg):
        super().__init__(auto_prefix=False)
        self.G, self.D = nets["G"], nets["D"]
        self.w_cls, self.w_rec, self.domains = cfg["lambda_cls"], cfg["lambda_rec"], cfg["label_mode"] == "domains"

    def construct(self, x, a, b, alpha):
        fake = self.G(x, b)
        src, cls = self.D(fake)
        g_adv = -src.mean()
        g_cls = classification_loss(cls, b, self.domains)
        g_rec = l1(self.G(fake, a), x)
        return g_adv + self.w_rec * g_rec + self.w_cls * g_cls, {"G_adv": g_adv, "G_cls": g_cls, "G_rec": g_rec}


class Translate(nn.Cell):
    """The D step's fake G(x, target labels), computed before (outside) the D gradient."""

    def __init__(self, nets):
        super().__init__(auto_prefix=False)
        self.G = nets["G"]

    def construct(self, x, a, b, alpha):
        return self.G(x, b)


class DiscriminatorLoss(nn.Cell):
    terms = ("D_real", "D_fake", "D_cls", "D_gp")

    def __init__(self, nets, cfg):
        super().__init__(auto_prefix=False)
        self.D = nets["D"]
        self.gp = GradientPenalty(FirstOutput(self.D))
        self.w_gp, self.w_cls, self.domains = cfg["lambda_gp"], cfg["lambda_cls"], cfg["label_mode"] == "domains"

    def construct(self, x, a, b, alpha, fake):
        src_real, cls_real = self.D(x)
        src_fake, _ = self.D(fake)
        d_real, d_fake = -src_real.mean(), src_fake.mean()
        d_cls = classification_loss(cls_real, a, self.domains)
        d_gp = self.gp(x, fake, alpha)
        return d_real + d_fake + self.w_cls * d_cls + self.w_gp * d_gp, \
            {"D_real": d_real, "D_fake": d_fake, "D_cls": d_cls, "D_gp": d_gp}


def translate_columns(G, x, labels, names, exclusive, domains):
    """[x, then one batch per target domain] (arrays like x) for images x with labels (N, c)."""
    import mindspore as ms
    targets = np.stack([target_labels(lab, names, exclusive, domains) for lab in labels])   # (N, c, c)
    cols = [x]
    for k in range(len(names)):
        cols.append(G(ms.Tensor(x), ms.Tensor(np.ascontiguousarray(targets[:, k]))).asnumpy())
    return cols


@register_family
class StarGAN(Family):
    name = "stargan"
    summary = "StarGAN: multi-domain translation (CelebA attributes, or one folder per domain as RaFD)"
    archs = {"stargan": dict(lr=1e-4, beta1=0.5, beta2=0.999, weight_decay=0.0, batch_size=16, n_epochs=None,
                             iterations=40000, decay_iters=20000, print_freq=100, save_freq=2000, sample_freq=200,
                             seed=0, img_size=128, g_conv_dim=64, d_conv_dim=64, g_repeat_num=6, d_repeat_num=6,
                             lambda_cls=1.0, lambda_rec=10.0, lambda_gp=10.0, n_critic=5,
                             selected_attrs=list(CELEBA_5), exclusive_attrs=None, label_mode=None,
                             domain_names=None)}
    default_arch = "stargan"
    generators, discriminators = ("G",), ("D",)
    d_first = True
    net_keys = ("g_conv_dim", "d_conv_dim", "g_repeat_num", "d_repeat_num", "img_size", "selected_attrs",
                "label_mode", "domain_names")
    data_layout = ("list_attr_celeba.txt and img_align_celeba/ (CelebA's layout), or one subfolder of images "
                   "per domain (train/<domain>/)")
    options = (
        Option("selected_attrs", str, "CelebA attributes (the domains); ignored for folder-per-domain data",
               nargs="+"),
        Option("exclusive_attrs", str, "attributes of which one at a time is on, as hair colours (default: the "
                                       "selected hair colours)", nargs="+"),
        Option("g_conv_dim", int, "generator width"),
        Option("d_conv_dim", int, "discriminator width"),
        Option("g_repeat_num", int, "generator residual blocks"),
        Option("d_repeat_num", int, "discriminator stride-2 layers"),
        Option("lambda_cls", float, "domain classification weight"),
        Option("lambda_rec", float, "reconstruction weight"),
        Option("lambda_gp", float, "gradient penalty weight"),
        Option("n_critic", int, "discriminator steps per generator step"),
        Option("decay_iters", int, "decay the learning rate linearly to 0 over the last N iterations"),
    )
    test_options = DOMAIN_OPTIONS

    def check_config(self, cfg):
        if cfg.get("label_mode") != "domains":
            if not cfg["selected_attrs"]:
                return "--selected_attrs must name at least one attribute"
            if len(set(cfg["selected_attrs"])) != len(cfg["selected_attrs"]):
                return "--selected_attrs names an attribute twice"
        r = cfg["d_repeat_num"]
        if cfg["img_size"] % 2 ** r or cfg["img_size"] < 2 ** r:
            return f"--img_size {cfg['img_size']} must be a multiple of 2^d_repeat_num = {2 ** r}"
        if cfg["img_size"] % 4:
            return f"--img_size {cfg['img_size']} must be a multiple of 4 (two stride-2 layers in G)"
        return wgan_gp_config_problem(cfg, "StarGAN")

    def finalize_schedule(self, cfg, n_train):
        if cfg.get("iterations") is None:
            cfg["iterations"] = max(1, cfg["n_epochs"] * n_train // (cfg["batch_size"] * cfg["n_critic"]))
        cfg["decay_start"] = max(0, cfg["iterations"] - cfg["decay_iters"])

    def names(self, cfg):
        return list(cfg["domain_names"]) if cfg.get("label_mode") == "domains" else list(cfg["selected_attrs"])

    def exclusive(self, cfg):
        names = self.names(cfg)
        if cfg.get("label_mode") == "domains":
            return []
        if cfg.get("exclusive_attrs") is not None:
            return [n for n in cfg["exclusive_attrs"] if n in names]
        return [n for n in names if n in HAIR_COLOURS]

    def config_from_pretrained(self, cfg, explicit, meta):
        g = meta["networks"].get("G", {}).get("config", {})
        d = meta["networks"].get("D", {}).get("config", {})
        info = meta.get("domains", {})
        found = {}
        if "conv_dim" in g:
            found.update(g_conv_dim=g["conv_dim"], g_repeat_num=g["repeat_num"])
        if "conv_dim" in d:
            found.update(d_conv_dim=d["conv_dim"], d_repeat_num=d["repeat_num"], img_size=d["image_size"])
        problem = adopt_pretrained(cfg, explicit, found)
        if problem or not info:
            return problem
        cfg["pretrained_domains"] = (info["label_mode"], list(info["names"]))
        return None

    def net_configs(self, cfg):
        c = len(self.names(cfg))
        return {"G": ("stargan_generator", dict(conv_dim=cfg["g_conv_dim"], c_dim=c, repeat_num=cfg["g_repeat_num"])),
                "D": ("stargan_discriminator", dict(image_size=cfg["img_size"], conv_dim=cfg["d_conv_dim"], c_dim=c,
                                                    repeat_num=cfg["d_repeat_num"]))}

    def build_nets(self, cfg):
        from models.stargan import use_instance_stats
        nets = super().build_nets(cfg)
        use_instance_stats(nets["G"])      # the sample sheets, as the original draws them
        return nets

    def second_order_nets(self, cfg):
        return ("D",)

    def losses(self, nets, cfg):
        return Losses(GeneratorLoss(nets, cfg), DiscriminatorLoss(nets, cfg), Translate(nets))

    def data(self, cfg, dataset_dir):
        import os

        from data.celeba import load_face, read_attribute_list
        from data.folders import DataError, domain_folders
        from data.pipelines import attribute_batches
        if os.path.isfile(os.path.join(dataset_dir, "list_attr_celeba.txt")):
            mode = "attributes"
            paths, attrs, skipped, split = read_attribute_list(dataset_dir, cfg["selected_attrs"])
            train = split["train"] or list(range(len(paths)))
            test = split["test"] or train
            tr_paths, tr_attrs = [paths[i] for i in train], attrs[train]
            te_paths, te_attrs = [paths[i] for i in test[:4]], attrs[test[:4]]
            skipped_note = f" ({len(skipped)} listed images missing, skipped)" if skipped else ""
        else:
            mode = "domains"
            names, tr_paths, tr_lab, te_paths, te_lab, skipped = domain_folders(dataset_dir)
            if cfg.get("domain_names") not in (None, names):
                raise DataError(f"{dataset_dir} has domains {' '.join(names)}, the model "
                                f"{' '.join(cfg['domain_names'])}")
            cfg["domain_names"] = names
            tr_attrs = np.eye(len(names), dtype=np.float32)[tr_lab]
            if not te_paths:
                pick = [int(np.flatnonzero(tr_lab == k)[0]) for k in range(len(names))][:4]
                te_paths, te_lab = [tr_paths[i] for i in pick], tr_lab[pick]
            te_paths, te_attrs = te_paths[:4], np.eye(len(names), dtype=np.float32)[te_lab[:4]]
            skipped_note = f" ({len(skipped)} files skipped)" if skipped else ""
        if cfg.get("label_mode") not in (None, mode):
            raise DataError(f"{dataset_dir} holds {mode} data, but the model was trained on {cfg['label_mode']}")
        cfg["label_mode"] = mode
        if mode == "attributes":
            cfg["domain_names"] = None
        pre = cfg.pop("pretrained_domains", None)
        if pre and (pre[0] != mode or pre[1] != self.names(cfg)):
            raise DataError(f"the pretrained model's domains ({' '.join(pre[1])}) differ from this dataset's "
                            f"({' '.join(self.names(cfg))})")
        notes = [f"{len(tr_paths)} training images, {'domains' if mode == 'domains' else 'attributes'}: "
                 f"{' '.join(self.names(cfg))}" + skipped_note]
        samples = (np.stack([load_face(p, cfg["img_size"], crop="stargan") for p in te_paths]), te_attrs)
        per_iter = cfg["n_critic"]

        def factory(start_iter):
            return attribute_batches(tr_paths, tr_attrs, cfg["img_size"], cfg["batch_size"], cfg["seed"],
                                     start_iter * per_iter, cfg["iterations"] * per_iter, cfg.get("workers", 2),
                                     crop="stargan")
        return TrainingData(factory, samples, notes, len(tr_paths), skipped)

    def eval_sets(self, cfg, dataset_dir):
        """One set per target domain, as StarGAN v2 scores its translations: the test images not in the domain
        translated into it (StarGAN's test targets), against the test images in it. Both sides at the training
        crop and size (reals quantised to 8 bits), so the score compares translations, not crops. [] without
        a test split (CelebA's list_eval_partition.txt, or DIR/test/<domain>/)."""
        import os

        from data.celeba import load_face, read_attribute_list
        from data.folders import DataError, domain_folders
        from metrics.during_training import EvalSet
        domains = cfg["label_mode"] == "domains"
        names = self.names(cfg)
        if domains:
            try:
                _, _, _, paths, lab, _ = domain_folders(dataset_dir)
            except DataError:
                return []
            labels = np.eye(len(names), dtype=np.float32)[lab] if len(paths) else None
        elif os.path.isfile(os.path.join(dataset_dir, "list_eval_partition.txt")):
            all_paths, attrs, _, split = read_attribute_list(dataset_dir, cfg["selected_attrs"])
            paths, labels = [all_paths[i] for i in split["test"]], attrs[split["test"]]
        else:
            return []
        if not len(paths):
            return []
        x = np.stack([load_face(p, cfg["img_size"], crop="stargan") for p in paths])
        reals = np.round((x + 1.0) * 127.5) / 255.0
        exclusive = self.exclusive(cfg)
        sets = []
        for k, name in enumerate(names):
            src, dst = np.flatnonzero(labels[:, k] < 0.5), np.flatnonzero(labels[:, k] > 0.5)
            if not len(src) or not len(dst):
                continue
            targets = np.stack([target_labels(labels[i], names, exclusive, domains)[k] for i in src])
            sets.append(EvalSet(f"to_{name}", x[src], list(reals[dst].astype(np.float32)),
                                lambda nets, xs, c: nets["G"](xs, c), targets.astype(np.float32)))
        return sets

    def sample_grid(self, nets, samples, cfg):
        """Rows: samples; columns: the input, then each target domain (as the original's sample sheets)."""
        x, labels = samples
        cols = translate_columns(nets["G"], x, labels, self.names(cfg), self.exclusive(cfg),
                                 cfg["label_mode"] == "domains")
        return grid([[to_img(c[i]) for c in cols] for i in range(len(x))])

    def model_json_extra(self, cfg):
        return {"domains": {"names": self.names(cfg), "exclusive": self.exclusive(cfg),
                            "label_mode": cfg["label_mode"], "img_size": cfg["img_size"]}}

    def runner(self, args, checkpoint):
        return TranslateRunner(checkpoint, args)
