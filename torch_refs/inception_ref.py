"""pytorch-fid itself as the reference for the FID Inception network (tests only): its package, with the
published weights file replaced by one the tests write (the real one cannot be downloaded here).

torchvision from the registry is a CUDA build whose C++ operator registrations fail against the CPU torch;
pytorch-fid needs only its Python model code, so the registrations are skipped before the import."""
import sys
import types


def pytorch_fid_inception():
    """The pytorch_fid.inception module, importable with the registry's torchvision."""
    sys.modules.setdefault("torchvision._meta_registrations", types.ModuleType("torchvision._meta_registrations"))
    from pytorch_fid import inception
    return inception


def random_fid_weights(path, seed=0):
    """A state_dict in the layout of pt_inception-2015-12-05-6726825d.pth (torchvision's Inception v3 names,
    1008 classes, no aux head) with random weights and BatchNorm statistics, saved to `path`."""
    import torch
    from torch_refs.weights import randomize_torch
    inc = pytorch_fid_inception()
    net = inc._inception_v3(num_classes=1008, aux_logits=False, weights=None)
    net.Mixed_5b = inc.FIDInceptionA(192, pool_features=32)
    net.Mixed_5c = inc.FIDInceptionA(256, pool_features=64)
    net.Mixed_5d = inc.FIDInceptionA(288, pool_features=64)
    net.Mixed_6b = inc.FIDInceptionC(768, channels_7x7=128)
    net.Mixed_6c = inc.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6d = inc.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6e = inc.FIDInceptionC(768, channels_7x7=192)
    net.Mixed_7b = inc.FIDInceptionE_1(1280)
    net.Mixed_7c = inc.FIDInceptionE_2(2048)
    randomize_torch(net, seed)
    torch.save(net.state_dict(), path)
    return path


def patched_fid_weights(path):
    """A context in which pytorch-fid loads `path` instead of downloading its weights."""
    import contextlib

    import torch
    inc = pytorch_fid_inception()

    @contextlib.contextmanager
    def ctx():
        old = inc.load_state_dict_from_url
        inc.load_state_dict_from_url = lambda *a, **k: torch.load(path, map_location="cpu", weights_only=True)
        try:
            yield inc
        finally:
            inc.load_state_dict_from_url = old
    return ctx()


_WRAPPER_NAMES = {"blocks.0.0": "Conv2d_1a_3x3", "blocks.0.1": "Conv2d_2a_3x3", "blocks.0.2": "Conv2d_2b_3x3",
                  "blocks.1.0": "Conv2d_3b_1x1", "blocks.1.1": "Conv2d_4a_3x3",
                  **{f"blocks.2.{i}": n for i, n in enumerate(("Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a",
                                                                "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e"))},
                  "blocks.3.0": "Mixed_7a", "blocks.3.1": "Mixed_7b", "blocks.3.2": "Mixed_7c"}


def fid_reference(output_blocks=(3,), seed=0):
    """pytorch-fid's InceptionV3(output_blocks) with random weights, whose state_dict() uses the published
    file's (torchvision's) names, as the parity table's rows need."""
    import os
    import tempfile

    import torch
    with tempfile.TemporaryDirectory() as d:
        path = random_fid_weights(os.path.join(d, "w.pth"), seed)
        with patched_fid_weights(path) as inc:
            net = inc.InceptionV3(list(output_blocks))

    class FIDReference(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, x):
            return tuple(self.net(x))

        def state_dict(self, *args, **kwargs):
            out = {}
            for k, v in self.net.state_dict().items():
                prefix = ".".join(k.split(".")[:3])
                out[_WRAPPER_NAMES[prefix] + k[len(prefix):] if prefix in _WRAPPER_NAMES else k] = v
            return out
    return FIDReference().eval()
