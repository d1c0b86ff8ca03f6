"""STGAN / AttGAN attribute editing on photos: "make me bald", with an intensity slider.

    e = AttributeEditor("runs/celeba_stgan/model")        # after core.runtime.configure(...)
    present = e.parse_attrs("Male Young")                 # what the photo shows now (the user says so)
    out = e.edit(face_rgb, present, ["Bald"], [1.0])      # rows: edits, columns: intensities
    strip = e.edit(face_rgb, present, ["Bald"], np.linspace(-1, 1, 10), with_input=True)

An edit toggles the attribute (on if absent, off if present, with CelebA's conflicts applied: Bald turns
Bangs off, one hair colour at a time, ...). Intensity is the strength of the toggle on the original
scale of the test-time slider: 1 = full edit (twice what training used), 0.5 = training strength,
0 = the attribute neutral, negative = pushed the other way.
"""
import os

import cv2
import numpy as np

from families.base import Option, Runner

from .cartoon import InferenceError


# test.py --model stgan's options (and test.py --onnx's for an exported STGAN / AttGAN generator)
EDIT_OPTIONS = (
    Option("attrs", str, "the attributes the photo has now, e.g. \"Male Young\"", default=""),
    Option("edit", str, "the attribute to toggle, or all"),
    Option("intensity", float, "strength of the edit (1 = full, 0.5 = training strength, negative = the "
                               "other way)", default=1.0),
    Option("slide", str, "MIN:MAX:COUNT intensities in one strip, e.g. -1:1:10"),
    Option("preprocess", str, "face (the face front end; default) or resize (already aligned faces; "
                              "CelebA's 178x218 images get CelebA's crop)", ("face", "resize")),
)


def generator_input(source, target, thres_int, label, edit_index=None, intensity=None):
    """The attribute vector fed to the generator. Attributes (0/1) become +-thres_int; STGAN (`label="diff"`)
    takes target - source, AttGAN (`"target"`) the target. With `edit_index`, that attribute's target value is
    `intensity` (on the +-1 scale, as the original test scripts' slider: -1 strongly off, +1 strongly on, and
    +-thres_int what training saw)."""
    src = (np.asarray(source, np.float32) * 2.0 - 1.0) * thres_int
    tgt = (np.asarray(target, np.float32) * 2.0 - 1.0) * thres_int
    if edit_index is not None:
        tgt[..., edit_index] = intensity
    return (tgt - src if label == "diff" else tgt).astype(np.float32)


def edit_columns(net, x, attrs, names, thres, label, intensity=1.0):
    """For a batch x (N, 3, H, W in [-1, 1]) with attributes attrs (N, n_attrs, 0/1): [input, reconstruction,
    one edit per attribute (toggled, at `intensity`, with CelebA's conflicts)] as arrays like x. What the
    training sample grids show."""
    import mindspore as ms
    from data.celeba import apply_conflicts
    cols = [x, net(ms.Tensor(x), ms.Tensor(generator_input(attrs, attrs, thres, label))).asnumpy()]
    for k, name in enumerate(names):
        target = attrs.copy()
        target[:, k] = 1.0 - target[:, k]
        for row in target:
            apply_conflicts(row, names, name)
        signed = np.where(target[:, k] > 0.5, intensity, -intensity)
        inp = np.stack([generator_input(a, t, thres, label, k, s) for a, t, s in zip(attrs, target, signed)])
        cols.append(net(ms.Tensor(x), ms.Tensor(inp)).asnumpy())
    return cols


class AttributeEditor:
    def __init__(self, checkpoint=None, loaded=None):
        """From a model dir (`checkpoint`), or `loaded` = (model.json-like meta, run(x, attributes) -> images),
        e.g. an exported ONNX file's (deploy/onnx_run.py)."""
        if loaded is None:
            meta, run = self._open(checkpoint)
        else:
            meta, run = loaded
        info = meta["attributes"]
        self.names = list(info["selected_attrs"])
        # how the generator reads its attribute input: "diff" (STGAN) or "target" (AttGAN)
        self.thres, self.mode = float(info["thres_int"]), info["label"]
        self.run = run
        self.size = int(meta["networks"]["G"]["config"]["img_size"])
        self.label = meta.get("label", meta.get("arch"))

    @staticmethod
    def _open(checkpoint):
        if not os.path.isfile(os.path.join(checkpoint, "model.json")):
            raise InferenceError(f"no attribute model at {checkpoint}: train one with "
                                 f"python train.py --model stgan --dataset celeba (it writes RUN/model)")
        from models import NetworkLoadError, load_network, read_model_json
        try:
            meta = read_model_json(checkpoint)
        except NetworkLoadError as e:
            raise InferenceError(str(e)) from None
        if meta.get("arch") not in ("stgan", "attgan") or "attributes" not in meta:
            raise InferenceError(f"{checkpoint} is a {meta.get('arch')} model, not an STGAN/AttGAN one")
        try:
            net = load_network(checkpoint, "G", expect_model="stgan_generator")
        except NetworkLoadError as e:
            raise InferenceError(str(e)) from None
        net.set_train(False)

        def run(x, a):
            import mindspore as ms
            return net(ms.Tensor(x), ms.Tensor(a)).asnumpy()
        return meta, run

    def parse_attrs(self, text):
        """'Male, Young' -> 0/1 vector over the model's attributes; unknown names are an error."""
        given = [t for t in text.replace(",", " ").split() if t]
        unknown = [t for t in given if t not in self.names]
        if unknown:
            raise InferenceError(f"unknown attribute {', '.join(unknown)}; this model knows: {' '.join(self.names)}")
        return np.array([1.0 if n in given else 0.0 for n in self.names], np.float32)

    def check_edit(self, edit):
        if edit == "all":
            return list(self.names)
        if edit not in self.names:
            raise InferenceError(f"--edit {edit}: not an attribute of this model ({' '.join(self.names)} or all)")
        return [edit]

    def edit(self, rgb, present, edits, intensities, with_input=False):
        """rgb: an aligned face (HxWx3 uint8, resized to the model's size). Returns a grid image: one row per
        edit, one column per intensity (plus the input first with `with_input`)."""
        from data.celeba import apply_conflicts
        img = cv2.resize(rgb, (self.size, self.size), interpolation=cv2.INTER_AREA)
        x = (img.astype(np.float32) / 127.5 - 1.0).transpose(2, 0, 1)[None]
        rows = []
        for name in edits:
            k = self.names.index(name)
            target = present.copy()
            target[k] = 1.0 - target[k]
            apply_conflicts(target, self.names, name)
            direction = 1.0 if target[k] > 0.5 else -1.0
            inp = np.stack([generator_input(present, target, self.thres, self.mode, k, direction * float(t))
                            for t in intensities])
            y = self.run(np.repeat(x, len(inp), 0), inp)
            tiles = [np.clip((t.transpose(1, 2, 0) + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8) for t in y]
            rows.append(np.concatenate(([img] if with_input else []) + tiles, 1))
        return np.concatenate(rows, 0)


def parse_slide(text):
    """'-1:1:10' -> 10 intensities from -1 to 1."""
    try:
        lo, hi, n = text.split(":")
        lo, hi, n = float(lo), float(hi), int(n)
    except ValueError:
        raise InferenceError(f"--slide {text}: expected MIN:MAX:COUNT, e.g. -1:1:10") from None
    if n < 2:
        raise InferenceError("--slide needs a COUNT of at least 2")
    return list(np.linspace(lo, hi, n))


class EditRunner(Runner):
    """photo -> aligned face -> one row per edited attribute, one column per intensity
    (inference.attributes.AttributeEditor)."""
    verb = "edited"

    def __init__(self, checkpoint, args, loaded=None):
        """`loaded`: (meta, run) instead of the model dir, see AttributeEditor."""
        if args.edit is None:
            raise InferenceError("an STGAN / AttGAN model needs --edit ATTRIBUTE (or all)")
        self.editor = AttributeEditor(checkpoint, loaded)
        self.present = self.editor.parse_attrs(args.attrs)
        self.edits = self.editor.check_edit(args.edit)
        self.intensities = parse_slide(args.slide) if args.slide else [args.intensity]
        self.with_input = bool(args.slide) or len(self.edits) > 1
        self.suffix = args.edit + ("_slide" if args.slide else "")
        self.suffixes = (self.suffix,)
        self.needs_face = (args.preprocess or "face") == "face"
        self.label = self.editor.label

    def __call__(self, image):
        if self.needs_face:
            image = image.crop_rgb
        else:
            from data.celeba import CELEBA_CROP, CELEBA_SIZE
            if image.shape[1::-1] == CELEBA_SIZE:   # CelebA's aligned images: the crop STGAN trained on
                x, y, side = CELEBA_CROP
                image = image[y:y + side, x:x + side]
        return {self.suffix: self.editor.edit(image, self.present, self.edits, self.intensities, self.with_input)}
