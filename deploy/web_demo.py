"""The web demo's logic (app.py serves it with Gradio): which models the page offers, and the three tools on an
uploaded photo, each returning images and a message for the page instead of raising.

    demo = Demo("pretrained_models")               # after core.runtime.configure(...)
    face, cartoon, message = demo.cartoon(path)    # message: "" or what went wrong, for the page
    face, result, message = demo.makeup(path, "AtoB")
    face, result, message = demo.edit(path, "stgan", ["Male"], "Bald", 0.8)

Models are the test.py ones, found by name in the models folder: photo2cartoon/ then demo_cartoon/ (U-GAT-IT),
makeup/ or cyclegan/ (CycleGAN), stgan/, attgan/, stargan/ (attribute editing). Each is loaded on first use
and kept. The face front end runs once per uploaded file (a slider move reuses it). Model calls are serialised:
the page's tools share one MindSpore process.
"""
import os
import threading
from collections import OrderedDict

import numpy as np

# the largest photo side the page accepts: the face detector's time and memory grow with the area, and a
# phone photo is at most about 8000 px
MAX_SIDE = 10000
MAX_MODELS = 8
CARTOON_DIRS = ("photo2cartoon", "demo_cartoon")
MAKEUP_DIRS = ("makeup", "cyclegan")
ATTRIBUTE_DIRS = {"stgan": "stgan", "attgan": "stgan", "stargan": "stargan"}   # folder -> family
READ_PROBLEMS = {"unreadable": "This file is not an image the demo can read (PNG, JPEG, WebP, BMP, TIFF).",
                 "too_small": "The image is too small to hold a face.",
                 "missing": "The upload did not arrive: try again."}


class DemoError(Exception):
    """Something the page shows in its message line."""


def _meta(directory):
    """The folder's model.json, or {} where there is none (or it does not parse)."""
    import json
    try:
        with open(os.path.join(directory, "model.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def _arch(directory):
    return _meta(directory).get("arch")


def _args(family, **given):
    """test.py's arguments for `family` with its defaults, and `given` over them."""
    import argparse
    ns = argparse.Namespace(**{o.name: (False if o.flag else o.default) for o in family.test_options})
    ns.__dict__.update(given)
    return ns


class Demo:
    def __init__(self, models_dir):
        self.models_dir = os.path.abspath(models_dir)
        self._lock = threading.Lock()
        self._models = OrderedDict()     # the loaded models, the last MAX_MODELS used
        self._faces = OrderedDict()      # (path, mtime, size) -> Face, the last few uploads
        self._pipe = None

    # --- what the page offers ---------------------------------------------------------------------------------
    def _first(self, names, archs):
        for n in names:
            d = os.path.join(self.models_dir, n)
            if _arch(d) in archs:
                return d
        return None

    def cartoon_model(self):
        return self._first(CARTOON_DIRS, ("ugatit", "photo2cartoon", "pix2pix"))

    def makeup_model(self):
        return self._first(MAKEUP_DIRS, ("cyclegan",))

    def attribute_models(self):
        """{folder name: model dir} of the attribute editors present (STGAN, AttGAN, StarGAN)."""
        found = {}
        for name, family in ATTRIBUTE_DIRS.items():
            d = os.path.join(self.models_dir, name)
            arch = _arch(d)
            if arch in (("stgan", "attgan") if family == "stgan" else ("stargan",)):
                found[name] = d
        return found

    def missing_text(self, tool):
        """What the page says when `tool` has no model, with how to get one."""
        where = os.path.relpath(self.models_dir)
        where = self.models_dir if where.startswith("..") else where
        return {
            "cartoon": f"No cartoon model in {where}/: convert the published one with `python convert_weights.py "
                       f"--src photo2cartoon_weights.pt --dst {where}/photo2cartoon`, or train one with train.py.",
            "makeup": f"No makeup model in {where}/ (makeup/ or cyclegan/): train one with `python train.py --model "
                      f"cyclegan --dataset makeup` and copy its model/ folder to {where}/makeup, or convert "
                      f"published CycleGAN weights with convert_weights.py.",
            "attributes": f"No attribute model in {where}/ (stgan/, attgan/ or stargan/): train one with `python "
                          f"train.py --model stgan --dataset celeba` and copy its model/ folder to {where}/stgan.",
        }[tool]

    def model_label(self, directory):
        meta = _meta(directory)
        label = meta.get("label", meta.get("arch"))
        return f"{os.path.basename(directory)}: {label}" if label else os.path.basename(directory)

    # --- loading --------------------------------------------------------------------------------------------------
    def _model(self, key, load):
        if key in self._models:
            self._models.move_to_end(key)
            return self._models[key]
        from inference.cartoon import InferenceError
        try:
            self._models[key] = load()
        except (InferenceError, ValueError) as e:
            raise DemoError(str(e).splitlines()[0]) from None
        while len(self._models) > MAX_MODELS:
            self._models.popitem(last=False)
        return self._models[key]

    def _runner(self, family_name, directory, **given):
        from families import get_family
        family = get_family(family_name)
        key = (family_name, directory) + tuple(sorted(given.items()))
        return self._model(key, lambda: family.runner(_args(family, **given), directory))

    def attribute_names(self, name):
        """The attributes (or domains) of the attribute model in folder `name`."""
        d = self.attribute_models().get(name)
        if d is None:
            return []
        from models import read_model_json
        meta = read_model_json(d)
        info = meta.get("attributes") or meta.get("domains") or {}
        return list(info.get("selected_attrs") or info.get("names") or [])

    # --- the photo ------------------------------------------------------------------------------------------------
    def face(self, path):
        """The aligned face of the uploaded file at `path` (the largest face), or a DemoError."""
        from data.images import ImageReadError, read_rgb
        from PIL import Image
        if not path:
            raise DemoError("Upload a photo first (or take one with the webcam).")
        try:
            st = os.stat(path)
        except OSError:
            raise DemoError(READ_PROBLEMS["missing"]) from None
        key = (path, st.st_mtime_ns, st.st_size)
        if key in self._faces:
            self._faces.move_to_end(key)
            return self._faces[key]
        try:
            with Image.open(path) as im:
                w, h = im.size
        except Exception:
            raise DemoError(READ_PROBLEMS["unreadable"]) from None
        if max(w, h) > MAX_SIDE:
            raise DemoError(f"The image is {w}x{h} pixels; the demo takes up to {MAX_SIDE} px a side: scale it "
                            f"down first.")
        try:
            rgb = read_rgb(path)
        except ImageReadError as e:
            raise DemoError(READ_PROBLEMS.get(e.status, str(e).replace(path, "The upload"))) from None
        if self._pipe is None:
            from preprocess.detect import ModelFileMissing
            from preprocess.pipeline import FacePipeline
            try:
                self._pipe = FacePipeline()
            except ModelFileMissing as e:
                raise DemoError(str(e)) from None
        res = self._pipe.process(rgb)
        if res.status == "no_face":
            raise DemoError("No face found in this photo: use one with a clear, frontal face.")
        if res.status != "ok":
            raise DemoError("The face is too small in this photo: use a closer one.")
        self._faces[key] = res.faces[0]
        while len(self._faces) > 8:
            self._faces.popitem(last=False)
        return res.faces[0]

    # --- the tools: (face image, result image, message); images None where there is none ----------------------
    def _guard(self, work):
        with self._lock:
            try:
                return work()
            except DemoError as e:
                return None, None, str(e)

    def cartoon(self, path):
        def work():
            d = self.cartoon_model()
            if d is None:
                raise DemoError(self.missing_text("cartoon"))
            runner = self._runner("ugatit", d, direction="AtoB", no_preprocess=False)
            face = self.face(path)
            return face.image, runner(face)["cartoon"], ""
        return self._guard(work)

    def makeup(self, path, direction):
        def work():
            d = self.makeup_model()
            if d is None:
                raise DemoError(self.missing_text("makeup"))
            runner = self._runner("cyclegan", d, direction=direction, preprocess="face", eval=True)
            face = self.face(path)
            out = next(iter(runner(face).values()))
            import cv2
            return cv2.resize(face.crop_rgb, out.shape[1::-1], interpolation=cv2.INTER_AREA), out, ""
        return self._guard(work)

    def edit(self, path, name, present, attribute, intensity):
        """Toggle `attribute` of the face (`present`: the attributes it shows now) with the model in folder
        `name`; `intensity` (STGAN / AttGAN) on test.py's scale: 1 full, 0.5 training strength, < 0 the other
        way."""
        def work():
            d = self.attribute_models().get(name)
            if d is None:
                raise DemoError(self.missing_text("attributes"))
            names = self.attribute_names(name)
            if attribute not in names:
                raise DemoError(f"Choose the attribute to change (this model knows: {', '.join(names)}).")
            present_text = " ".join(p for p in (present or []) if p in names)
            face = self.face(path)
            if ATTRIBUTE_DIRS[name] == "stgan":
                from inference.attributes import AttributeEditor
                editor = self._model(("editor", d), lambda: AttributeEditor(d))
                out = editor.edit(face.crop_rgb, editor.parse_attrs(present_text), [attribute], [float(intensity)])
                size = editor.size
            else:
                runner = self._runner("stargan", d, attrs=present_text, edit=attribute, preprocess="face")
                out = next(iter(runner(face).values()))
                size = runner.size
            import cv2
            before = cv2.resize(face.crop_rgb, (size, size), interpolation=cv2.INTER_AREA)
            return before, np.ascontiguousarray(out), ""
        return self._guard(work)
