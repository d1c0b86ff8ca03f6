"""Attribute editing accuracy, as the STGAN paper measures it, for STGAN, AttGAN and StarGAN models.

    clf = load_classifier("runs/celeba_attr_classifier/model")        # train.py --model attr_classifier
    ed = load_editor("runs/celeba_stgan/model")
    x, attrs = test_split("dataset/celeba", ed.names, ed.size, ed.crop)   # CelebA's test partition
    scores = editing_accuracy(ed.edit, clf.read, x, attrs, ed.names, clf.names)

For every test image and every attribute the editor knows: the attribute is toggled (with CelebA's conflicts:
one hair colour at a time, Bald turns Bangs off, ...; StarGAN's hair colours are switched on, as its test
targets are), the edited image is read by the classifier, and the edit counts when the classifier reads the
target value of that attribute. Reported per attribute: that accuracy; `kept`, the share of the other
attributes read at their target value (what the edit should leave alone); and the classifier's own accuracy on
the unedited images, the ceiling the editing accuracy is read against.
"""
import os

import cv2
import numpy as np


class AttributeModelError(Exception):
    """A model dir that cannot serve here; one line."""


def _meta(directory, what):
    from models import NetworkLoadError, read_model_json
    if not os.path.isfile(os.path.join(directory, "model.json")):
        raise AttributeModelError(f"no {what} at {directory} (no model.json)")
    try:
        return read_model_json(directory)
    except NetworkLoadError as e:
        raise AttributeModelError(str(e)) from None


def _network(directory, name, model):
    from models import NetworkLoadError, load_network
    try:
        net = load_network(directory, name, expect_model=model)
    except NetworkLoadError as e:
        raise AttributeModelError(str(e)) from None
    net.set_train(False)
    return net


def to_batch(images_u8, size):
    """HxWx3 uint8 images -> (N, 3, size, size) float32 in [-1, 1] (area resize when the size differs)."""
    out = []
    for img in images_u8:
        if img.shape[:2] != (size, size):
            img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
        out.append(img.astype(np.float32).transpose(2, 0, 1) / 127.5 - 1.0)
    return np.stack(out)


def to_u8(x):
    """(N, 3, H, W) in [-1, 1] -> N x HxWx3 uint8, as a saved PNG holds the edit."""
    return np.clip((x.transpose(0, 2, 3, 1) + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8)


class Classifier:
    """A trained attribute classifier (families/attr_classifier.py)."""

    def __init__(self, directory):
        meta = _meta(directory, "attribute classifier")
        if "C" not in meta.get("networks", {}) or meta["networks"]["C"].get("model") != "attr_classifier":
            raise AttributeModelError(f"{directory} is a {meta.get('arch')} model, not an attribute classifier "
                                      f"(train one with python train.py --model attr_classifier)")
        info = meta.get("attributes", {})
        self.names = list(info["selected_attrs"])
        self.crop = info.get("crop", "stgan")
        self.size = int(meta["networks"]["C"]["config"]["img_size"])
        self.label = meta.get("label", "attribute classifier")
        self.net = _network(directory, "C", "attr_classifier")

    def prepare(self, image_u8):
        return to_batch([image_u8], self.size)[0]

    def probabilities(self, x, batch=64):
        """(N, n) probabilities of images x (N, 3, H, W) in [-1, 1], resized to the classifier's size as
        8-bit images when they differ."""
        import mindspore as ms
        if x.shape[2:] != (self.size, self.size):
            x = to_batch(to_u8(x), self.size)
        out = [self.net(ms.Tensor(np.ascontiguousarray(x[i:i + batch], np.float32))).asnumpy()
               for i in range(0, len(x), batch)]
        return 1.0 / (1.0 + np.exp(-np.concatenate(out).astype(np.float64)))

    def read(self, x):
        """0/1 readings (N, n) of images x in [-1, 1], quantised to 8 bits first (as a saved edit)."""
        x = to_batch(to_u8(x), self.size)
        return (self.probabilities(x) >= 0.5).astype(np.float32)


def load_classifier(directory, error=AttributeModelError):
    try:
        return Classifier(directory)
    except AttributeModelError as e:
        raise error(str(e)) from None


class Editor:
    """An STGAN / AttGAN or StarGAN model dir as `edit(x, attrs, k) -> (edited x, target attrs)`."""

    def __init__(self, directory, intensity=1.0):
        meta = _meta(directory, "attribute editing model")
        arch = meta.get("arch")
        self.label = meta.get("label", arch)
        if arch in ("stgan", "attgan") and "attributes" in meta:
            info = meta["attributes"]
            self.kind, self.crop = "stgan", "stgan"
            self.names = list(info["selected_attrs"])
            self.thres, self.gen_label = float(info["thres_int"]), info["label"]
            self.size = int(meta["networks"]["G"]["config"]["img_size"])
            self.G = _network(directory, "G", "stgan_generator")
        elif arch == "stargan" and "domains" in meta:
            from models.stargan import use_instance_stats
            info = meta["domains"]
            if info["label_mode"] == "domains":
                raise AttributeModelError(f"{directory} is a folder-per-domain StarGAN; attribute editing accuracy "
                                          f"needs a model trained on CelebA's attribute list")
            self.kind, self.crop = "stargan", "stargan"
            self.names, self.exclusive = list(info["names"]), list(info.get("exclusive", []))
            self.size = int(info["img_size"])
            self.G = _network(directory, "G", "stargan_generator")
            use_instance_stats(self.G, True)       # as StarGAN's own test script normalises
        else:
            raise AttributeModelError(f"{directory} is a {arch} model, not an attribute editing one "
                                      f"(STGAN, AttGAN or StarGAN)")
        self.intensity = float(intensity)

    def targets(self, attrs, k):
        """The target attributes (N, n) of editing attribute k of images with `attrs`."""
        if self.kind == "stargan":
            from inference.domains import target_labels
            return np.stack([target_labels(a, self.names, self.exclusive, False)[k] for a in attrs])
        from data.celeba import apply_conflicts
        t = np.array(attrs, np.float32, copy=True)
        t[:, k] = 1.0 - t[:, k]
        for row in t:
            apply_conflicts(row, self.names, self.names[k])
        return t

    def edit(self, x, attrs, k, batch=32):
        import mindspore as ms
        t = self.targets(attrs, k)
        if self.kind == "stargan":
            cond = t
        else:
            from inference.attributes import generator_input
            cond = np.stack([generator_input(a, b, self.thres, self.gen_label, k,
                                             self.intensity if b[k] else -self.intensity) for a, b in zip(attrs, t)])
        out = [self.G(ms.Tensor(x[i:i + batch]), ms.Tensor(np.ascontiguousarray(cond[i:i + batch], np.float32)))
               .asnumpy() for i in range(0, len(x), batch)]
        return np.concatenate(out), t


def load_editor(directory, intensity=1.0, error=AttributeModelError):
    try:
        return Editor(directory, intensity)
    except AttributeModelError as e:
        raise error(str(e)) from None


def test_split(dataset_dir, names, size, crop, max_images=None):
    """CelebA's test partition (all images without list_eval_partition.txt) at `size` with `crop`:
    (x (N, 3, s, s) in [-1, 1], attrs (N, len(names)) 0/1)."""
    from data.celeba import load_face, read_attribute_list
    paths, attrs, _, split = read_attribute_list(dataset_dir, names)
    idx = split["test"] or list(range(len(paths)))
    if max_images:
        idx = idx[:max_images]
    return np.stack([load_face(paths[i], size, crop=crop) for i in idx]), attrs[idx]


def classifier_accuracy(read, x, attrs, label_names, read_names):
    """{attribute: share of images x whose reading equals their label}, for the labelled attributes the
    classifier reads."""
    r = read(x)
    return {n: float((r[:, read_names.index(n)] == attrs[:, k]).mean())
            for k, n in enumerate(label_names) if n in read_names}


def editing_accuracy(edit, read, x, attrs, edit_names, read_names, progress=None):
    """{attribute: {"accuracy", "kept", "n"}} for every attribute of `edit_names` that `read_names` has.
    edit(x, attrs, k) -> (edited images, target attrs over edit_names); read(images) -> 0/1 over read_names."""
    cols = [read_names.index(n) if n in read_names else -1 for n in edit_names]
    scores = {}
    for k, name in enumerate(edit_names):
        if cols[k] < 0:
            continue
        y, t = edit(x, attrs, k)
        r = read(y)
        scored = [j for j in range(len(edit_names)) if cols[j] >= 0]
        pred = r[:, [cols[j] for j in scored]]
        target = t[:, scored]
        me = scored.index(k)
        others = [i for i in range(len(scored)) if i != me]
        scores[name] = {"accuracy": float((pred[:, me] == target[:, me]).mean()),
                        "kept": float((pred[:, others] == target[:, others]).mean()) if others else None,
                        "n": int(len(x))}
        if progress is not None:
            progress.update(1)
    return scores


def report(scores, real_acc):
    """The printed table and the JSON-ready summary. real_acc: {attribute: the classifier's accuracy on the
    unedited images}."""
    lines = [f"{'attribute':<20} {'editing acc':>11} {'others kept':>11} {'classifier':>10}"]
    for name, s in scores.items():
        kept = "-" if s["kept"] is None else f"{s['kept']:.3f}"
        lines.append(f"{name:<20} {s['accuracy']:>11.3f} {kept:>11} {real_acc[name]:>10.3f}")
    mean = float(np.mean([s["accuracy"] for s in scores.values()]))
    lines.append(f"{'mean':<20} {mean:>11.3f}")
    return "\n".join(lines), {"mean_accuracy": mean, "attributes": scores,
                              "classifier_accuracy": {n: real_acc[n] for n in scores}}
