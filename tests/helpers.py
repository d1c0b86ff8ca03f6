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
    return module


def torch_state_numpy(module):
    return {k: v.detach().numpy().copy() for k, v in module.state_dict().items()}


def load_into_ms(ms_net, state):
    """Strictly map a torch state_dict (numpy) into a MindSpore net via the family's key table."""
    import mindspore as ms
    from conversion.core import map_state_dict
    from models.ugatit import TORCH_KEY_RULES

    shapes = {p.name: tuple(p.shape) for p in ms_net.get_parameters()}
    mapped = map_state_dict(state, shapes, TORCH_KEY_RULES)
    for p in ms_net.get_parameters():
        p.set_data(ms.Tensor(mapped[p.name]))
    return ms_net


def run_cli(args, timeout=900, cwd=ROOT, env_extra=None):
    """Run an entry point exactly as a user would: `python <script> ...` from the repo root."""
    env = dict(os.environ)
    env.update(env_extra or {})
    return subprocess.run([sys.executable] + list(args), cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env)
