"""Shared test helpers: random non-trivial weights for torch references, torch -> MindSpore copies."""
import os
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def randomize_torch(module, seed=0):
    """Give every parameter/buffer a random value that exercises the maths (rho, w in (0,1), SN u/v unit)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            leaf = name.rsplit(".", 1)[-1]
            if leaf in ("rho", "w_gamma", "w_beta"):
                p.copy_(torch.rand(p.shape, generator=g) * 0.8 + 0.1)
            elif leaf == "gamma" and p.dim() == 4:
                p.copy_(1.0 + 0.3 * torch.randn(p.shape, generator=g))
            elif p.dim() >= 2:
                fan_in = int(np.prod(p.shape[1:]))
                p.copy_(torch.randn(p.shape, generator=g) * (0.6 / np.sqrt(fan_in)))
            else:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
        for name, b in module.named_buffers():
            if name.endswith("weight_u") or name.endswith("weight_v"):
                v = torch.randn(b.shape, generator=g)
                b.copy_(v / v.norm())
        for m in module.modules():   # BatchNorm: scale near 1 and non-trivial running statistics
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                if m.weight is not None:
                    m.weight.copy_(1.0 + 0.2 * torch.randn(m.weight.shape, generator=g))
                if m.running_mean is not None:
                    m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=g))
                    m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=g))
    return module


def assert_close(t, m, tol):
    """A torch output vs a MindSpore output: same shape, max abs diff <= tol (scaled by |t| when above 1)."""
    t = t.detach().numpy() if hasattr(t, "detach") else np.asarray(t)
    m = m.asnumpy() if hasattr(m, "asnumpy") else np.asarray(m)
    assert t.shape == m.shape, (t.shape, m.shape)
    scale = max(1.0, float(np.abs(t).max()))
    err = float(np.abs(t - m).max())
    assert err <= tol * scale, f"max abs diff {err:.3g} (scale {scale:.3g})"


def torch_state_numpy(module):
    return {k: v.detach().numpy().copy() for k, v in module.state_dict().items()}


def load_into_ms(ms_net, state, rules=None):
    """Strictly map a torch state_dict (numpy) into a MindSpore net via the family's key table (default:
    U-GAT-IT's)."""
    import mindspore as ms
    from conversion.core import map_state_dict
    if rules is None:
        from models.ugatit import TORCH_KEY_RULES as rules

    shapes = {p.name: tuple(p.shape) for p in ms_net.get_parameters()}
    mapped = map_state_dict(state, shapes, rules)
    for p in ms_net.get_parameters():
        p.set_data(ms.Tensor(mapped[p.name]))
    return ms_net


def run_cli(args, timeout=900, cwd=ROOT, env_extra=None):
    """Run an entry point exactly as a user would: `python <script> ...` from the repo root."""
    env = dict(os.environ)
    env.update(env_extra or {})
    return subprocess.run([sys.executable] + list(args), cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env)


def make_digit_domains(root, size=32, n_train=300, n_test=40, seed=0):
    """An offline toy domain pair from sklearn's digits: A = red digits on black, B = green digits on black,
    upscaled to `size`. Train A and B use disjoint digit images (unpaired). The known mapping A->B moves the
    red channel into the green one and leaves green images as they are (so U-GAT-IT's identity loss agrees
    with it). Returns (test A images, their true B images), uint8 HxWx3."""
    import cv2
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits().images  # 1797 x 8 x 8 in 0..16
    order = np.random.default_rng(seed).permutation(len(digits))
    gray = [np.clip(cv2.resize((d / 16.0 * 255).astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC),
                    0, 255).astype(np.uint8) for d in digits[order]]

    def red(g):
        return np.dstack([g, np.zeros_like(g), np.zeros_like(g)])

    def green(g):
        return np.dstack([np.zeros_like(g), g, np.zeros_like(g)])
    test = gray[2 * n_train:2 * n_train + n_test]
    split = {"trainA": [red(g) for g in gray[:n_train]], "trainB": [green(g) for g in gray[n_train:2 * n_train]],
             "testA": [red(g) for g in test],
             "testB": [green(g) for g in gray[2 * n_train + n_test:2 * n_train + 2 * n_test]]}
    for name, items in split.items():
        os.makedirs(os.path.join(root, name), exist_ok=True)
        for k, im in enumerate(items):
            Image.fromarray(im).save(os.path.join(root, name, f"{k:04d}.png"))
    return np.stack(split["testA"]), np.stack([green(g) for g in test])
