"""test.py --onnx FILE: an exported image-to-image generator run on photos by onnxruntime, without MindSpore.

The file's "facegan" metadata (written by export.py) says what it is. photo2cartoon / U-GAT-IT generators go
through the same steps as with a model dir (inference/cartoon.py: face front end, white background,
composite); CycleGAN and Pix2Pix generators through inference/translate.py (resize, or the aligned face crop).
Nothing here imports MindSpore.
"""
import json

from families.base import Runner
from inference.cartoon import InferenceError

CARTOON = ("ugatit_p2c_generator", "ugatit_generator")
TRANSLATE = ("cyclegan_resnet_generator", "cyclegan_unet_generator")


def describe(path):
    """(onnxruntime session, the export's description) of an exported file; one-line InferenceError if it is
    not one."""
    import onnxruntime as ort
    try:
        session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    except Exception as e:   # noqa: BLE001 (onnxruntime raises its own exception types for unreadable files)
        first = next((ln.strip() for ln in str(e).splitlines() if ln.strip()), type(e).__name__)
        raise InferenceError(f"{path} is not a readable ONNX file: {first[:200]}") from None
    raw = session.get_modelmeta().custom_metadata_map.get("facegan")
    if raw is None:
        raise InferenceError(f"{path} was not written by export.py (no facegan metadata)")
    return session, json.loads(raw)


class OnnxRunner(Runner):
    verb = "processed"

    def __init__(self, path, preprocess=None):
        session, desc = describe(path)
        model = desc["model"]
        if model not in CARTOON + TRANSLATE:
            ins = ", ".join(f"{i['name']} {i['shape']}" for i in desc["inputs"])
            raise InferenceError(f"test.py --onnx runs image-to-image generators (photo2cartoon, U-GAT-IT, CycleGAN, "
                                 f"Pix2Pix); {path} is a {model}: run it with onnxruntime (inputs: {ins})")
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
