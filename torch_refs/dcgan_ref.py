"""PyTorch reference DCGAN (written for the tests and benchmarks from the paper's description, in
pytorch/examples' key layout, `main.<i>`)."""
import math

from torch import nn


class DCGANGeneratorRef(nn.Module):
    def __init__(self, nz=100, ngf=64, nc=3, img_size=64):
        super().__init__()
        n_up = int(math.log2(img_size)) - 2          # 64 px: 4 (ngf x 8 at 4 px)
        d = ngf * 2 ** (n_up - 1)
        seq = [nn.ConvTranspose2d(nz, d, 4, 1, 0, bias=False), nn.BatchNorm2d(d), nn.ReLU(True)]
        for _ in range(n_up - 1):
            seq += [nn.ConvTranspose2d(d, d // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(d // 2), nn.ReLU(True)]
            d //= 2
        seq += [nn.ConvTranspose2d(d, nc, 4, 2, 1, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*seq)

    def forward(self, z):
        return self.main(z)


class DCGANDiscriminatorRef(nn.Module):
    def __init__(self, ndf=64, nc=3, img_size=64):
        super().__init__()
        n_down = int(math.log2(img_size)) - 2
        seq = [nn.Conv2d(nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True)]
        d = ndf
        for _ in range(n_down - 1):
            seq += [nn.Conv2d(d, 2 * d, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * d), nn.LeakyReLU(0.2, inplace=True)]
            d *= 2
        seq += [nn.Conv2d(d, 1, 4, 1, 0, bias=False), nn.Sigmoid()]
        self.main = nn.Sequential(*seq)

    def forward(self, x):
        return self.main(x).view(-1, 1).squeeze(1)
