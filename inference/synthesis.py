"""SPADE on label maps (test.py --model spade, or an exported generator's through test.py --onnx): a label map
(and its instance map; with the VAE, a style photo through the encoder, or random z) -> the synthesised image
and a sheet (label colours | result [| style]). MindSpore is imported only to open a model dir."""
import os

import numpy as np

from families.base import Option, Runner
from families.common import grid, open_model, to_img

from .cartoon import InferenceError

# test.py --model spade's options (and, but --style, test.py --onnx's for an exported SPADE generator: the
# encoder is not exported)
SYNTHESIS_OPTIONS = (
    Option("label_map", str, "a label map (one class id per pixel, as the training data)"),
    Option("instance_map", str, "its instance map (models trained with instance maps)"),
    Option("style", str, "a photo whose style the encoder takes (models trained with --use_vae)"),
    Option("seed", int, "random z with --use_vae and no --style", default=0),
)


def model_hw(g_cfg):
    """The generator's output (H, W) from its config, as models.spade.output_size computes it."""
    from models.spade import output_size
    return output_size(g_cfg["crop_size"], g_cfg.get("aspect_ratio", 1.0),
                       g_cfg.get("num_upsampling_layers", "normal"))


class SynthesisRunner(Runner):
    takes_photos = False
    verb = "synthesised"

    def __init__(self, checkpoint, args, loaded=None):
        """From a model dir (`checkpoint`), or `loaded` = (meta, run(label maps, z or None) -> images), meta
        holding "labels" (the dataset options), "use_vae", "z_dim" and "hw" (the output size): an exported
        file's (deploy/onnx_run.py), which has no encoder."""
        if not args.label_map:
            raise InferenceError("--label_map is required (a label map of the classes the model was trained on)")
        style = getattr(args, "style", None)
        for flag in ("label_map", "instance_map", "style"):
            path = getattr(args, flag, None)
            if path and not os.path.isfile(path):
                raise InferenceError(f"--{flag} not found: {path}")
        self.E = None
        if loaded is None:
            meta, nets = open_model(checkpoint, "spade", "SPADE", "convert_weights.py --arch spade",
                                    ("G", ("E", False)) if style else ("G",))
            G, self.E = nets["G"], nets.get("E")
            cfg = meta["networks"]["G"]["config"]
            G.set_train(False)
            if self.E is not None:
                self.E.set_train(False)

            def run(x, z):
                import mindspore as ms
                return (G(ms.Tensor(x)) if z is None else G(ms.Tensor(x), ms.Tensor(z))).asnumpy()
            self.use_vae, self.z_dim, (h, w) = bool(cfg.get("use_vae")), int(cfg.get("z_dim", 256)), model_hw(cfg)
        else:
            meta, run = loaded
            self.use_vae, self.z_dim, (h, w) = bool(meta["use_vae"]), int(meta.get("z_dim", 256)), meta["hw"]
        if style and not self.use_vae:
            raise InferenceError("--style needs a model trained with --use_vae (this one has no encoder)")
        if style and self.E is None:
            raise InferenceError(f"--style: {checkpoint} has no encoder network (E)")
        self.run = run
        self.opts = dict(meta["labels"])
        self.opts.update(preprocess_mode="fixed", load_size=w, crop_size=w, aspect_ratio=w / h)
        self.args = args
        stem = os.path.splitext(os.path.basename(args.label_map))[0]
        self.suffixes = (f"{stem}_synthesized", f"{stem}_sheet")
        self.label = meta.get("label", "SPADE")

    def _style_z(self, path, hw):
        """z sampled from the encoder's mu, logvar for the photo at `path` (the original's encode_z), and the
        photo as the model saw it."""
        import cv2

        from data.images import ImageReadError, read_rgb
        try:
            style = read_rgb(path)
        except ImageReadError as e:
            raise InferenceError(str(e)) from None
        s = cv2.resize(style, (hw[1], hw[0]), interpolation=cv2.INTER_CUBIC).astype(np.float32)
        s = np.ascontiguousarray((s / 127.5 - 1.0).transpose(2, 0, 1))[None]
        import mindspore as ms
        mu, logvar = (t.asnumpy() for t in self.E(ms.Tensor(s)))
        eps = np.random.default_rng(self.args.seed).standard_normal(mu.shape).astype(np.float32)
        return (mu + np.exp(0.5 * logvar) * eps).astype(np.float32), to_img(s[0])

    def generate(self):
        from data.semantic import colorize, load_sample
        a = self.args
        try:
            x, _ = load_sample((a.label_map, None, a.instance_map), self.opts, with_image=False)
        except ValueError as e:
            raise InferenceError(str(e)) from None
        except OSError as e:
            raise InferenceError(f"{a.label_map}: not a readable image ({e})") from None
        row, z, row_style = [colorize(x, self.opts)], None, None
        if self.use_vae:
            if self.E is not None:
                z, row_style = self._style_z(a.style, x.shape[1:])
            else:
                z = np.random.default_rng(a.seed).standard_normal((1, self.z_dim)).astype(np.float32)
        img = to_img(self.run(np.ascontiguousarray(x[None]), z)[0])
        row.append(img)
        if row_style is not None:
            row.append(row_style)
        return {self.suffixes[0]: img, self.suffixes[1]: grid([row])}
