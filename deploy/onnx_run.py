"""test.py --onnx FILE: an exported generator run by onnxruntime, without MindSpore.

The file's "facegan" metadata (written by export.py) says what it is. photo2cartoon / U-GAT-IT generators go
through the same steps as with a model dir (inference/cartoon.py: face front end, white background,
composite); CycleGAN and Pix2Pix generators through inference/translate.py (resize, or the aligned face crop);
STGAN / AttGAN, StarGAN, DCGAN, CGAN and SPADE generators through their family's own test.py runner, with its
options (`family_runner`). Nothing here imports MindSpore.
"""
import json
import os

from families.base import Runner
from inference.cartoon import GENERATORS as CARTOON
from inference.cartoon import InferenceError
from inference.translate import GENERATORS as TRANSLATE


_described = {}      # (path, mtime, size) -> (session, description): test.py asks twice (options, then runner)


def describe(path):
    """(onnxruntime session, the export's description) of an exported file; one-line InferenceError if it is
    not one. A file is opened once per process."""
    try:
        st = os.stat(path)
        key = (os.path.abspath(path), st.st_mtime_ns, st.st_size)
    except OSError:
        key = None
    if key in _described:
        return _described[key]
    import onnxruntime as ort
    try:
        session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    except Exception as e:   # noqa: BLE001 (onnxruntime raises its own exception types for unreadable files)
        first = next((ln.strip() for ln in str(e).splitlines() if ln.strip()), type(e).__name__)
        raise InferenceError(f"{path} is not a readable ONNX file: {first[:200]}") from None
    raw = session.get_modelmeta().custom_metadata_map.get("facegan")
    if raw is None:
        raise InferenceError(f"{path} was not written by export.py (no facegan metadata)")
    result = session, json.loads(raw)
    if key is not None:
        _described[key] = result
    return result


# exported generators that test.py runs through their family's own runner, with its options but those fixed at
# export (the norms' statistics)
FIXED_AT_EXPORT = ("stats", "bn_stats")


def runner_options(path):
    """(the test.py options of the runner an exported file goes through, whether it takes photos); a photo ->
    image generator, or a file that cannot be read (OnnxRunner reports it), takes the photo options only."""
    try:
        _, desc = describe(path)
    except InferenceError:
        return (), True
    model = desc.get("model")
    if model == "stgan_generator":
        from inference.attributes import EDIT_OPTIONS as options
    elif model == "stargan_generator":
        from inference.domains import DOMAIN_OPTIONS as options
    elif model == "dcgan_generator":
        from inference.sampling import DCGAN_OPTIONS as options
    elif model == "cgan_generator":
        from inference.sampling import CGAN_OPTIONS as options
    elif model == "spade_generator":         # its encoder (--style) is not exported
        from inference.synthesis import SYNTHESIS_OPTIONS
        options = tuple(o for o in SYNTHESIS_OPTIONS if o.name != "style")
    else:
        return (), True
    return tuple(o for o in options if o.name not in FIXED_AT_EXPORT), model not in ("dcgan_generator",
                                                                                       "cgan_generator",
                                                                                       "spade_generator")


def _batched(session, fixed):
    """run(*arrays) -> the first output, over any batch: a file exported for a fixed batch runs chunk by chunk
    (the last chunk padded by repeating its last item)."""
    import numpy as np
    names = [i.name for i in session.get_inputs()]

    def run(*arrays):
        n = len(arrays[0])
        if fixed is None or n == fixed:
            return session.run(None, dict(zip(names, arrays)))[0]
        outs = []
        for start in range(0, n, fixed):
            part = [a[start:start + fixed] for a in arrays]
            short = fixed - len(part[0])
            if short:
                part = [np.concatenate([p] + [p[-1:]] * short) for p in part]
            outs.append(session.run(None, dict(zip(names, part)))[0][:fixed - short])
        return np.concatenate(outs)
    return run


def family_runner(path, args):
    """An exported STGAN / AttGAN / StarGAN / DCGAN / CGAN / SPADE generator behind its family's test.py runner,
    which gets (meta, run) in place of a model dir: the same options, the same outputs."""
    session, desc = describe(path)
    model, inputs = desc["model"], desc["inputs"]
    batch = inputs[0]["shape"][0]
    run = _batched(session, None if batch == "N" else int(batch))
    meta = dict(desc.get("model_json", {}))
    meta["label"] = f"{desc.get('label') or model} (ONNX, {path})"
    shape = inputs[0]["shape"]
    if model == "stgan_generator":
        from inference.attributes import EditRunner
        meta["networks"] = {"G": {"config": {"img_size": int(shape[-1])}}}
        return EditRunner(None, args, (meta, run))
    if model == "stargan_generator":
        from inference.domains import TranslateRunner
        meta["stats"] = desc.get("stats", "instance")
        meta.setdefault("domains", {})["img_size"] = int(shape[-1])
        return TranslateRunner(None, args, (meta, run))
    if model == "dcgan_generator":
        from inference.sampling import DCGANSampler
        meta["networks"] = {"G": {"config": {"nz": int(shape[1])}}}
        return DCGANSampler(None, args, (meta, run))
    if model == "spade_generator":
        from inference.synthesis import SynthesisRunner
        meta.update(use_vae=len(inputs) > 1, hw=(int(shape[2]), int(shape[3])))
        if meta["use_vae"]:
            meta["z_dim"] = int(inputs[1]["shape"][1])
        return SynthesisRunner(None, args, (meta, lambda x, z: run(x) if z is None else run(x, z)))
    from inference.sampling import CGANSampler
    meta["networks"] = {"G": {"config": {"nz": int(shape[1]), "n_classes": int(inputs[1]["shape"][1])}}}
    return CGANSampler(None, args, (meta, run))


class OnnxRunner(Runner):
    verb = "processed"

    def __init__(self, path, preprocess=None):
        session, desc = describe(path)
        model = desc["model"]
        if model not in CARTOON + TRANSLATE:
            ins = ", ".join(f"{i['name']} {i['shape']}" for i in desc["inputs"])
            raise InferenceError(f"test.py --onnx runs generators; {path} is a {model}: run it with onnxruntime "
                                 f"(inputs: {ins})")
        shape = desc["inputs"][0]["shape"]
        if shape[0] not in (1, "N"):
            raise InferenceError(f"{path} was exported for batch {shape[0]}; export with --batch 1 or "
                                 f"--dynamic_batch for test.py")
        size, name = int(shape[-1]), session.get_inputs()[0].name

        def run(x):
            return session.run(None, {name: x})[0]
        self.label = f"{desc.get('label') or model} (ONNX, {path})"
        if model in CARTOON:
            from inference.cartoon import Cartoonizer
            self.cartoonizer = Cartoonizer.from_generate(run, size, self.label)
            self.needs_face = (preprocess or "face") == "face"
            self.suffixes, self.verb = ("cartoon",), "cartoonized"
        else:
            from inference.translate import Translator
            self.cartoonizer = None
            self.t = Translator.from_run(run, size, "resize", label=self.label)
            self.needs_face = preprocess == "face"
            self.size = size
            self.suffixes, self.verb = ("fakeB",), "translated"

    def __call__(self, image):
        if self.cartoonizer is not None:
            if self.needs_face:
                return {"cartoon": self.cartoonizer.cartoonize_face(image)}
            return {"cartoon": self.cartoonizer.cartoonize(image)}
        if self.needs_face:
            import cv2
            image = cv2.resize(image.crop_rgb, (self.size, self.size), interpolation=cv2.INTER_AREA)
        return self.t.translate(image)
