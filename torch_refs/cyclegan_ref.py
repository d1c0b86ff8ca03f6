"""PyTorch reference networks in the state_dict layout of junyanz/pytorch-CycleGAN-and-pix2pix (written for
the tests from the published architecture description; used for parity, conversion and benchmarks)."""
import torch
from torch import nn


def _norm(kind):
    if kind == "instance":
        return lambda c: nn.InstanceNorm2d(c, affine=False, track_running_stats=False), True
    if kind == "batch":
        return lambda c: nn.BatchNorm2d(c, affine=True, track_running_stats=True), False
    return lambda c: nn.Identity(), False


class ResnetBlockRef(nn.Module):
    def __init__(self, dim, norm, use_dropout):
        super().__init__()
        make, bias = _norm(norm)
        seq = [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias), make(dim), nn.ReLU(True)]
        if use_dropout:
            seq.append(nn.Dropout(0.5))
        seq += [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias), make(dim)]
        self.conv_block = nn.Sequential(*seq)

    def forward(self, x):
        return x + self.conv_block(x)


class ResnetGeneratorRef(nn.Module):
    def __init__(self, input_nc=3, output_nc=3, ngf=64, norm="instance", use_dropout=False, n_blocks=9):
        super().__init__()
        make, bias = _norm(norm)
        seq = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, 7, bias=bias), make(ngf), nn.ReLU(True)]
        for i in range(2):
            m = 2 ** i
            seq += [nn.Conv2d(ngf * m, ngf * m * 2, 3, stride=2, padding=1, bias=bias), make(ngf * m * 2),
                    nn.ReLU(True)]
        seq += [ResnetBlockRef(ngf * 4, norm, use_dropout) for _ in range(n_blocks)]
        for i in range(2):
            m = 2 ** (2 - i)
            seq += [nn.ConvTranspose2d(ngf * m, ngf * m // 2, 3, stride=2, padding=1, output_padding=1, bias=bias),
                    make(ngf * m // 2), nn.ReLU(True)]
        seq += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7), nn.Tanh()]
        self.model = nn.Sequential(*seq)

    def forward(self, x):
        return self.model(x)


class UnetBlockRef(nn.Module):
    def __init__(self, outer_nc, inner_nc, input_nc=None, submodule=None, outermost=False, innermost=False,
                 norm="batch", use_dropout=False):
        super().__init__()
        make, bias = _norm(norm)
        self.outermost = outermost
        input_nc = outer_nc if input_nc is None else input_nc
        down = nn.Conv2d(input_nc, inner_nc, 4, stride=2, padding=1, bias=bias)
        if outermost:
            seq = [down, submodule, nn.ReLU(True), nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, 2, 1), nn.Tanh()]
        elif innermost:
            seq = [nn.LeakyReLU(0.2, True), down, nn.ReLU(True),
                   nn.ConvTranspose2d(inner_nc, outer_nc, 4, 2, 1, bias=bias), make(outer_nc)]
        else:
            seq = [nn.LeakyReLU(0.2, True), down, make(inner_nc), submodule, nn.ReLU(True),
                   nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, 2, 1, bias=bias), make(outer_nc)]
            if use_dropout:
                seq.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*seq)

    def forward(self, x):
        return self.model(x) if self.outermost else torch.cat([x, self.model(x)], 1)


class UnetGeneratorRef(nn.Module):
    def __init__(self, input_nc=3, output_nc=3, num_downs=8, ngf=64, norm="batch", use_dropout=False):
        super().__init__()
        b = UnetBlockRef(ngf * 8, ngf * 8, innermost=True, norm=norm)
        for _ in range(num_downs - 5):
            b = UnetBlockRef(ngf * 8, ngf * 8, submodule=b, norm=norm, use_dropout=use_dropout)
        b = UnetBlockRef(ngf * 4, ngf * 8, submodule=b, norm=norm)
        b = UnetBlockRef(ngf * 2, ngf * 4, submodule=b, norm=norm)
        b = UnetBlockRef(ngf, ngf * 2, submodule=b, norm=norm)
        self.model = UnetBlockRef(output_nc, ngf, input_nc=input_nc, submodule=b, outermost=True, norm=norm)

    def forward(self, x):
        return self.model(x)


class NLayerDiscriminatorRef(nn.Module):
    def __init__(self, input_nc=3, ndf=64, n_layers=3, norm="batch"):
        super().__init__()
        make, bias = _norm(norm)
        seq = [nn.Conv2d(input_nc, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2 ** n, 8)
            seq += [nn.Conv2d(ndf * prev, ndf * mult, 4, 2, 1, bias=bias), make(ndf * mult), nn.LeakyReLU(0.2, True)]
        prev, mult = mult, min(2 ** n_layers, 8)
        seq += [nn.Conv2d(ndf * prev, ndf * mult, 4, 1, 1, bias=bias), make(ndf * mult), nn.LeakyReLU(0.2, True),
                nn.Conv2d(ndf * mult, 1, 4, 1, 1)]
        self.model = nn.Sequential(*seq)

    def forward(self, x):
        return self.model(x)


class PixelDiscriminatorRef(nn.Module):
    def __init__(self, input_nc=3, ndf=64, norm="batch"):
        super().__init__()
        make, bias = _norm(norm)
        self.net = nn.Sequential(nn.Conv2d(input_nc, ndf, 1), nn.LeakyReLU(0.2, True),
                                 nn.Conv2d(ndf, ndf * 2, 1, bias=bias), make(ndf * 2), nn.LeakyReLU(0.2, True),
                                 nn.Conv2d(ndf * 2, 1, 1, bias=bias))

    def forward(self, x):
        return self.net(x)


REFS = {"cyclegan_resnet_generator": ResnetGeneratorRef, "cyclegan_unet_generator": UnetGeneratorRef,
        "patchgan_discriminator": NLayerDiscriminatorRef, "pixel_discriminator": PixelDiscriminatorRef}
