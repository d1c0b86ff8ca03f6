"""CycleGAN / Pix2Pix inference on photos: image -> generator -> image, and the cycle reconstruction.

    t = Translator("pretrained_models/makeup", direction="AtoB", cycle=True)   # G_A (+ G_B for the cycle)
    out = t.translate(rgb)            # {"fakeB": HxWx3 uint8, "recA": ...}

Direction (CycleGAN): AtoB runs G_A (e.g. makeup off, when A = with makeup), BtoA runs G_B; the cycle image is
the other generator applied to the result. Pix2Pix has one generator G (AtoB as it was trained).
How the photo reaches the generator (`preprocess`):
- "resize": to size x size (default 256), the output resized back to the photo's size;
- "none": at the photo's own size, reflection-padded up to the generator's stride and cropped back;
- "face": the caller passes the aligned face crop from the face front end (preprocess/pipeline.py).
`eval_mode=False` reproduces the original project's test.py default for batch-norm / dropout models (a
training-mode forward: the test image's own batch statistics, dropout on); True uses the running statistics.
"""
import os

import cv2
import numpy as np

from .cartoon import InferenceError

GENERATORS = ("cyclegan_resnet_generator", "cyclegan_unet_generator")
NETS = {"cyclegan": {"AtoB": ("G_A", "G_B", "B", "A"), "BtoA": ("G_B", "G_A", "A", "B")},
        "pix2pix": {"AtoB": ("G", None, "B", "A")}}


class Translator:
    def __init__(self, checkpoint, direction="AtoB", cycle=False, size=256, preprocess="resize", eval_mode=True,
                 expect_arch=None):
        if not os.path.isfile(os.path.join(checkpoint, "model.json")):
            raise InferenceError(f"no model at {checkpoint}: convert the published weights first, e.g.\n"
                                 f"  python convert_weights.py --src latest_net_G_A.pth latest_net_G_B.pth "
                                 f"--dst {checkpoint}")
        from models import NetworkLoadError, load_network, read_model_json
        try:
            meta = read_model_json(checkpoint)
        except NetworkLoadError as e:
            raise InferenceError(str(e)) from None
        arch = meta.get("arch")
        if arch not in NETS:
            raise InferenceError(f"{checkpoint} is a {arch} model, not a CycleGAN/pix2pix one")
        if expect_arch and arch != expect_arch:
            raise InferenceError(f"{checkpoint} is a {arch} model: use --model {arch}")
        if direction not in NETS[arch]:
            raise InferenceError(f"a {arch} model translates AtoB only (it was trained in one direction)")
        fwd, back, self.out_domain, self.in_domain = NETS[arch][direction]
        if fwd not in meta["networks"]:
            raise InferenceError(f"{checkpoint} has no {fwd} for --direction {direction} "
                                 f"(it has: {', '.join(sorted(meta['networks']))})")
        if cycle and (back is None or back not in meta["networks"]):
            raise InferenceError(f"--save_cycle needs both generators; {checkpoint} has no "
                                 f"{back or 'second generator'}")
        try:
            self.nets = [load_network(checkpoint, fwd)] + ([load_network(checkpoint, back)] if cycle else [])
        except NetworkLoadError as e:
            raise InferenceError(str(e)) from None
        for net, name in zip(self.nets, (fwd, back)):
            if meta["networks"][name]["model"] not in GENERATORS:
                raise InferenceError(f"{checkpoint}/{name} is a {meta['networks'][name]['model']}, not a generator")
            net.set_train(not eval_mode)
        self.stride = max(getattr(n, "stride", 4) for n in self.nets)
        self.size, self.preprocess = size, preprocess
        if preprocess == "resize" and size % self.stride:
            raise InferenceError(f"--load_size {size} must be a multiple of {self.stride} for this generator")
        self.label = meta.get("label", arch)

    def _run(self, net, x):
        """net's output for x (1, C, H, W) float32 numpy, as numpy."""
        import mindspore as ms
        return net(ms.Tensor(np.ascontiguousarray(x))).asnumpy()

    @classmethod
    def from_run(cls, run, size=256, preprocess="resize", stride=4, label=""):
        """The same pre- and post-processing around another runtime's generator (an exported ONNX file):
        run(x (1, 3, H, W) float32 in [-1, 1]) -> the translated image, no cycle."""
        t = cls.__new__(cls)
        t.nets, t._run = [None], lambda net, x: run(np.ascontiguousarray(x))
        t.out_domain, t.in_domain = "B", "A"
        t.stride, t.size, t.preprocess, t.label = stride, size, preprocess, label
        return t

    def translate(self, rgb):
        """rgb: HxWx3 uint8. Returns {"fake<out>": image, "rec<in>": image (with cycle)}, HxWx3 uint8 each."""
        h, w = rgb.shape[:2]
        if self.preprocess == "none":
            ph, pw = -h % self.stride, -w % self.stride
            img = cv2.copyMakeBorder(rgb, 0, ph, 0, pw, cv2.BORDER_REFLECT_101) if ph or pw else rgb
        else:
            img = cv2.resize(rgb, (self.size, self.size), interpolation=cv2.INTER_AREA if min(h, w) > self.size
                             else cv2.INTER_CUBIC)
        x = (img.astype(np.float32) / 127.5 - 1.0).transpose(2, 0, 1)[None]
        outs = [self._run(self.nets[0], x)]
        if len(self.nets) > 1:
            outs.append(self._run(self.nets[1], outs[0]))
        result = {}
        for key, y in zip((f"fake{self.out_domain}", f"rec{self.in_domain}"), outs):
            y = np.clip((y[0].transpose(1, 2, 0) + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8)
            if self.preprocess == "none":
                y = y[:h, :w]
            elif self.preprocess == "resize" and (h, w) != y.shape[:2]:
                y = cv2.resize(y, (w, h), interpolation=cv2.INTER_CUBIC if h > self.size else cv2.INTER_AREA)
            result[key] = y
        return result
