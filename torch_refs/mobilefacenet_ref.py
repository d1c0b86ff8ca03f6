"""PyTorch MobileFaceNet in the key layout of photo2cartoon's `model_mobilefacenet.pth` (test-only)."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class CB(nn.Module):
    """conv -> BN (-> PReLU): keys conv.weight, bn.*, prelu.weight."""

    def __init__(self, cin, cout, k=1, s=1, p=0, g=1, act=True):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, s, p, groups=g, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        if act:
            self.prelu = nn.PReLU(cout)
        self.act = act

    def forward(self, x):
        x = self.bn(self.conv(x))
        return self.prelu(x) if self.act else x


class DW(nn.Module):
    def __init__(self, cin, cout, residual=False, s=2, g=1):
        super().__init__()
        self.conv, self.conv_dw, self.project = CB(cin, g), CB(g, g, 3, s, 1, g), CB(g, cout, act=False)
        self.residual = residual

    def forward(self, x):
        y = self.project(self.conv_dw(self.conv(x)))
        return x + y if self.residual else y


class Res(nn.Module):
    def __init__(self, c, n, g):
        super().__init__()
        self.model = nn.Sequential(*[DW(c, c, True, 1, g) for _ in range(n)])

    def forward(self, x):
        return self.model(x)


class MobileFaceNetRef(nn.Module):
    def __init__(self, emb=512):
        super().__init__()
        self.conv1, self.conv2_dw = CB(3, 64, 3, 2, 1), CB(64, 64, 3, 1, 1, 64)
        self.conv_23, self.conv_3 = DW(64, 64, g=128), Res(64, 4, 128)
        self.conv_34, self.conv_4 = DW(64, 128, g=256), Res(128, 6, 256)
        self.conv_45, self.conv_5 = DW(128, 128, g=512), Res(128, 2, 256)
        self.conv_6_sep, self.conv_6_dw = CB(128, 512), CB(512, 512, 7, 1, 0, 512, act=False)
        self.linear, self.bn = nn.Linear(512, emb, bias=False), nn.BatchNorm1d(emb)

    def forward(self, x):
        for m in (self.conv1, self.conv2_dw, self.conv_23, self.conv_3, self.conv_34, self.conv_4,
                  self.conv_45, self.conv_5, self.conv_6_sep, self.conv_6_dw):
            x = m(x)
        return F.normalize(self.bn(self.linear(x.flatten(1))), dim=1)


def randomize_bn(module, seed=0):
    """Non-trivial BatchNorm running statistics and PReLU slopes (eval-mode parity needs them)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=g))
                m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=g))
                m.weight.copy_(1 + 0.1 * torch.randn(m.weight.shape, generator=g))
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g))
                m.num_batches_tracked.fill_(1234)
            if isinstance(m, nn.PReLU):
                m.weight.copy_(0.25 + 0.1 * torch.randn(m.weight.shape, generator=g))
    return module
