"""photo2cartoon inference: an aligned face on white -> generator -> `(y + 1) * 127.5` -> mask composite.

The generator: a U-GAT-IT / photo2cartoon model directory's genA2B (genB2A for BtoA), or a Pix2Pix model
directory's G (A -> B only; the bundled demo model is one), run in eval mode.

    c = Cartoonizer("pretrained_models/photo2cartoon")   # model.json + genA2B.ckpt (after core.runtime.configure)
    cartoon = c.cartoonize_face(face)                     # face: preprocess.pipeline.Face
    cartoon = c.cartoonize(rgb_256, alpha=None)           # an already aligned face (no mask)
"""
import os

import cv2
import numpy as np

GENERATORS = ("ugatit_p2c_generator", "ugatit_generator")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# where test.py and demo.py look for a generator when none is given: the converted published weights first
DEFAULT_CHECKPOINTS = [os.path.join(ROOT, "pretrained_models", "photo2cartoon"),
                       os.path.join(ROOT, "pretrained_models", "demo_cartoon")]


def default_checkpoint():
    """The first default model directory that holds a model.json, or None."""
    return next((d for d in DEFAULT_CHECKPOINTS if os.path.isfile(os.path.join(d, "model.json"))), None)


class InferenceError(Exception):
    pass


def convert_hint(directory):
    return (f"no generator at {directory}: convert the published weights first, e.g.\n"
            f"  python convert_weights.py --src photo2cartoon_weights.pt --dst {directory}")


class Cartoonizer:
    def __init__(self, checkpoint, direction="AtoB"):
        if not os.path.isfile(os.path.join(checkpoint, "model.json")):
            raise InferenceError(convert_hint(checkpoint))
        from inference.translate import GENERATORS as PIX2PIX_GENERATORS
        from models import NetworkLoadError, load_network, read_model_json
        net_name = "genA2B" if direction == "AtoB" else "genB2A"
        try:
            meta = read_model_json(checkpoint)
            if meta.get("arch") == "pix2pix":
                if direction != "AtoB":
                    raise InferenceError(f"{checkpoint} is a Pix2Pix model: it translates A -> B only")
                net_name = "G"
            entry = meta["networks"].get(net_name)
            if entry is None:
                raise InferenceError(f"{checkpoint} has no {net_name} (it has: {', '.join(meta['networks'])})")
            if entry["model"] not in (GENERATORS if net_name != "G" else PIX2PIX_GENERATORS):
                raise InferenceError(f"{checkpoint}/{net_name} is a {entry['model']}, not a U-GAT-IT or Pix2Pix "
                                     f"generator")
            self.net = load_network(checkpoint, net_name)
        except NetworkLoadError as e:
            raise InferenceError(str(e)) from None
        self.tuple_output = net_name != "G"        # U-GAT-IT's generators also return CAM logits and heatmap
        size = entry["config"].get("img_size") or meta.get("source", {}).get("config", {}).get("img_size", 256)
        self.img_size = int(size)
        self.label = meta.get("label", meta.get("arch", "generator"))

    def generate(self, x):
        """The generator's image for x (1, 3, s, s) float32 in [-1, 1], as numpy."""
        import mindspore as ms
        y = self.net(ms.Tensor(x))
        return (y[0] if self.tuple_output else y).asnumpy()

    @classmethod
    def from_generate(cls, generate, img_size, label):
        """The same pre- and post-processing around another runtime's generator (e.g. an exported ONNX file):
        generate(x (1, 3, s, s) float32 in [-1, 1]) -> (1, 3, s, s)."""
        c = cls.__new__(cls)
        c.generate, c.img_size, c.label = generate, int(img_size), label
        return c

    def cartoonize(self, rgb, alpha=None):
        """rgb: HxWx3 uint8 aligned face; alpha: HxW in [0, 1] or None. Returns HxWx3 uint8."""
        h, w = rgb.shape[:2]
        x = cv2.resize(rgb, (self.img_size, self.img_size), interpolation=cv2.INTER_AREA).astype(np.float32)
        if alpha is not None:
            a = cv2.resize(alpha.astype(np.float32), (self.img_size, self.img_size), interpolation=cv2.INTER_AREA)[:, :, None]
            x = x * a + 255.0 * (1.0 - a)
        x = (x / 127.5 - 1.0).transpose(2, 0, 1)[None]
        y = self.generate(np.ascontiguousarray(x))[0].transpose(1, 2, 0)
        y = (y + 1.0) * 127.5
        if (h, w) != (self.img_size, self.img_size):
            y = cv2.resize(y, (w, h), interpolation=cv2.INTER_CUBIC if h > self.img_size else cv2.INTER_AREA)
        if alpha is not None:
            a = alpha.astype(np.float32)[:, :, None]
            y = y * a + 255.0 * (1.0 - a)
        return np.clip(y + 0.5, 0, 255).astype(np.uint8)

    def cartoonize_face(self, face):
        return self.cartoonize(face.image, face.alpha)
