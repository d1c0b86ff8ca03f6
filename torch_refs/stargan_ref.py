"""PyTorch reference StarGAN (written for the tests and benchmarks from the paper's description, in the
published checkpoints' key layout: `main.<i>` Sequential indices, `conv1` / `conv2` heads)."""
import torch
from torch import nn


def _norm(c):
    return nn.InstanceNorm2d(c, affine=True, track_running_stats=True)


class ResBlockRef(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.main = nn.Sequential(nn.Conv2d(dim, dim, 3, 1, 1, bias=False), _norm(dim), nn.ReLU(inplace=True),
                                  nn.Conv2d(dim, dim, 3, 1, 1, bias=False), _norm(dim))

    def forward(self, x):
        return x + self.main(x)


class StarGANGeneratorRef(nn.Module):
    def __init__(self, conv_dim=64, c_dim=5, repeat_num=6):
        super().__init__()
        seq = [nn.Conv2d(3 + c_dim, conv_dim, 7, 1, 3, bias=False), _norm(conv_dim), nn.ReLU(inplace=True)]
        d = conv_dim
        for _ in range(2):
            seq += [nn.Conv2d(d, 2 * d, 4, 2, 1, bias=False), _norm(2 * d), nn.ReLU(inplace=True)]
            d *= 2
        seq += [ResBlockRef(d) for _ in range(repeat_num)]
        for _ in range(2):
            seq += [nn.ConvTranspose2d(d, d // 2, 4, 2, 1, bias=False), _norm(d // 2), nn.ReLU(inplace=True)]
            d //= 2
        seq += [nn.Conv2d(d, 3, 7, 1, 3, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*seq)

    def forward(self, x, c):
        c = c[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])
        return self.main(torch.cat([x, c], 1))


class StarGANDiscriminatorRef(nn.Module):
    def __init__(self, image_size=128, conv_dim=64, c_dim=5, repeat_num=6):
        super().__init__()
        seq, cin, d = [], 3, conv_dim
        for _ in range(repeat_num):
            seq += [nn.Conv2d(cin, d, 4, 2, 1), nn.LeakyReLU(0.01)]
            cin, d = d, 2 * d
        self.main = nn.Sequential(*seq)
        self.conv1 = nn.Conv2d(cin, 1, 3, 1, 1, bias=False)
        self.conv2 = nn.Conv2d(cin, c_dim, image_size // 2 ** repeat_num, bias=False)

    def forward(self, x):
        h = self.main(x)
        return self.conv1(h), self.conv2(h).flatten(1)


def randomize_running_stats(module, seed=0):
    """Non-trivial running statistics for the tracked InstanceNorms (randomize_torch covers BatchNorm only)."""
    g = torch.Generator().manual_seed(seed + 100)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.InstanceNorm2d) and m.track_running_stats:
                m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=g))
                m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=g))
                m.weight.copy_(1.0 + 0.2 * torch.randn(m.weight.shape, generator=g))
    return module
