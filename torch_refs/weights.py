"""Random, non-trivial weights for the reference networks, and their copy into MindSpore Cells through the
strict key tables (what the parity tests and the benchmarks compare)."""
import numpy as np


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


def torch_state_numpy(module):
    return {k: v.detach().numpy().copy() for k, v in module.state_dict().items()}


def load_into_ms(ms_net, state, rules=None):
    """Strictly map a torch state_dict (numpy) into a MindSpore net via the family's key table (default:
    U-GAT-IT's)."""
    import mindspore as ms
    from conversion.core import local_state, map_state_dict
    if rules is None:
        from models.ugatit import TORCH_KEY_RULES as rules

    shapes = {p.name: tuple(p.shape) for p in ms_net.get_parameters()}
    mapped = map_state_dict(state, shapes, rules, fill=local_state(ms_net))
    for p in ms_net.get_parameters():
        p.set_data(ms.Tensor(mapped[p.name]))
    return ms_net
