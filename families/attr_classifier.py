"""The attribute classifier: what `eval.py --attr_accuracy` reads edited faces with.

The STGAN paper scores attribute editing with a classifier trained on CelebA's attribute list: an edit counts
when the classifier reads the target value of the edited attribute. This family trains that classifier with
the shared training engine (one network, no discriminator): BCE with logits averaged over the attributes,
Adam 2e-4 (0.5, 0.999), batch 32, 5 epochs, the learning rate / 10 halfway; CelebA's training partition
with --selected_attrs (default STGAN's 13), random horizontal flips, and the crop of the models it will
judge (--crop stgan: the 170 px crop STGAN and AttGAN train on; stargan: StarGAN's centre 178 px).
The network (models/attr_classifier.py) is STGAN's critic trunk and attribute head.
Its accuracy on the test partition is what `eval.py --classifier DIR --dataset DIR` prints.
"""
import numpy as np
from mindspore import nn, ops

from data.celeba import CELEBA_13
from training.losses import bce_logits
from . import Family, Losses, Option, Runner, TrainingData, register_family
from .common import celeba_split, to_img


class ClassifierLoss(nn.Cell):
    terms = ("C_bce", "C_acc")

    def __init__(self, nets):
        super().__init__(auto_prefix=False)
        self.C = nets["C"]

    def construct(self, x, a, b, alpha):
        logits = self.C(x)
        loss = bce_logits(logits, a)
        acc = ops.stop_gradient(((logits > 0).astype(a.dtype) == a).astype(a.dtype).mean())
        return loss, {"C_bce": loss, "C_acc": acc}


def predict(net, x, batch=64):
    """Attribute probabilities (N, n_attrs) of images x (N, 3, s, s) float32 in [-1, 1]."""
    import mindspore as ms
    out = [net(ms.Tensor(x[i:i + batch])).asnumpy() for i in range(0, len(x), batch)]
    return 1.0 / (1.0 + np.exp(-np.concatenate(out).astype(np.float64)))


def annotate(tile, names, probs, truth=None, width=220):
    """The image beside one line per attribute: its probability, green when read as present; with `truth`,
    a wrong reading is marked with an x."""
    import cv2
    side = max(128, tile.shape[0])
    img = cv2.resize(tile, (side, side), interpolation=cv2.INTER_NEAREST)
    line = 16
    panel = np.full((max(side, line * len(names) + 8), width, 3), 255, np.uint8)
    canvas = np.full((panel.shape[0], side, 3), 255, np.uint8)
    canvas[:side] = img
    for k, (name, p) in enumerate(zip(names, probs)):
        colour = (20, 140, 20) if p >= 0.5 else (120, 120, 120)
        text = f"{name[:18]} {p:.2f}"
        if truth is not None and (p >= 0.5) != bool(truth[k]):
            text += " x"
            colour = (200, 30, 30)
        cv2.putText(panel, text, (4, line * (k + 1)), cv2.FONT_HERSHEY_SIMPLEX, 0.4, colour, 1, cv2.LINE_AA)
    return np.concatenate([canvas, panel], 1)


class ClassifyRunner(Runner):
    """photo -> (aligned face, or the image resized) -> the face beside each attribute's probability."""
    verb = "classified"
    suffixes = ("attributes",)

    def __init__(self, checkpoint, args):
        from inference.cartoon import InferenceError
        from metrics.attributes import load_classifier
        self.clf = load_classifier(checkpoint, InferenceError)
        self.needs_face = (args.preprocess or "face") == "face"
        self.label = self.clf.label

    def __call__(self, image):
        if self.needs_face:
            image = image.crop_rgb
        x = self.clf.prepare(image)
        probs = predict(self.clf.net, x[None])[0]
        print("  " + " ".join(f"{n}:{p:.2f}" for n, p in zip(self.clf.names, probs)))
        return {"attributes": annotate(to_img(x), self.clf.names, probs)}


@register_family
class AttributeClassifierFamily(Family):
    name = "attr_classifier"
    summary = "the attribute classifier that scores attribute editing (eval.py --attr_accuracy)"
    archs = {"attr_classifier": dict(lr=2e-4, beta1=0.5, beta2=0.999, weight_decay=0.0, batch_size=32, n_epochs=5,
                                     iterations=None, print_freq=100, save_freq=2000, sample_freq=1000, seed=0,
                                     img_size=128, dim=64, n_layers=5, fc_dim=1024, crop="stgan",
                                     selected_attrs=list(CELEBA_13), n_critic=1, lr_schedule="step")}
    default_arch = "attr_classifier"
    generators, discriminators = ("C",), ()
    net_keys = ("dim", "n_layers", "fc_dim", "img_size", "selected_attrs", "crop")
    data_layout = "list_attr_celeba.txt and img_align_celeba/ (CelebA's layout)"
    options = (
        Option("selected_attrs", str, "CelebA attribute names (default STGAN's 13)", nargs="+"),
        Option("crop", str, "the crop of the editing models it will judge: stgan (170 px) or stargan (178 px)",
               ("stgan", "stargan")),
        Option("dim", int, "width of the first conv"),
        Option("n_layers", int, "stride-2 conv layers"),
        Option("fc_dim", int, "hidden width of the attribute head"),
    )
    test_options = (
        Option("preprocess", str, "face (the face front end; default) or resize (already cropped faces)",
               ("face", "resize")),
    )

    def check_config(self, cfg):
        if not cfg["selected_attrs"]:
            return "--selected_attrs must name at least one attribute"
        if len(set(cfg["selected_attrs"])) != len(cfg["selected_attrs"]):
            return "--selected_attrs names an attribute twice"
        if cfg["img_size"] % 2 ** cfg["n_layers"] or cfg["img_size"] < 2 ** cfg["n_layers"]:
            return f"--img_size {cfg['img_size']} must be a multiple of 2^n_layers = {2 ** cfg['n_layers']}"
        return None

    def finalize_schedule(self, cfg, n_train):
        if cfg.get("iterations") is None:
            cfg["iterations"] = max(1, cfg["n_epochs"] * n_train // cfg["batch_size"])
        cfg["decay_start"] = cfg["iterations"] // 2

    def config_from_pretrained(self, cfg, explicit, meta):
        from . import adopt_pretrained
        c = meta["networks"].get("C", {}).get("config", {})
        found = {k: c[k] for k in ("dim", "n_layers", "fc_dim", "img_size") if k in c}
        info = meta.get("attributes", {})
        if "selected_attrs" in info:
            found["selected_attrs"] = list(info["selected_attrs"])
        if "crop" in info:
            found["crop"] = info["crop"]
        return adopt_pretrained(cfg, explicit, found)

    def net_configs(self, cfg):
        return {"C": ("attr_classifier", dict(n_attrs=len(cfg["selected_attrs"]), dim=cfg["dim"],
                                              n_layers=cfg["n_layers"], fc_dim=cfg["fc_dim"],
                                              img_size=cfg["img_size"]))}

    def losses(self, nets, cfg):
        return Losses(ClassifierLoss(nets), None)

    def data(self, cfg, dataset_dir):
        from data.celeba import load_face
        from data.pipelines import attribute_batches
        paths, attrs, tr_paths, tr_attrs, test, skipped, note = celeba_split(dataset_dir, cfg["selected_attrs"])
        notes = [note]
        k = test[:6]
        samples = (np.stack([load_face(paths[i], cfg["img_size"], crop=cfg["crop"]) for i in k]), attrs[k])

        def factory(start_iter):
            return attribute_batches(tr_paths, tr_attrs, cfg["img_size"], cfg["batch_size"], cfg["seed"],
                                     start_iter, cfg["iterations"], cfg.get("workers", 2), crop=cfg["crop"])
        return TrainingData(factory, samples, notes, len(tr_paths), skipped)

    def sample_grid(self, nets, samples, cfg):
        """Test images beside their attribute probabilities (a wrong reading marked)."""
        x, attrs = samples
        probs = predict(nets["C"], x)
        return np.concatenate([annotate(to_img(x[i]), cfg["selected_attrs"], probs[i], attrs[i])
                               for i in range(len(x))], 0)

    def model_json_extra(self, cfg):
        return {"attributes": {"selected_attrs": list(cfg["selected_attrs"]), "crop": cfg["crop"]}}

    def runner(self, args, checkpoint):
        return ClassifyRunner(checkpoint, args)
