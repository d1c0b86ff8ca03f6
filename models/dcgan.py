"""DCGAN (Radford et al. 2016) in the layout of pytorch/examples' dcgan (`main.<i>` Sequential indices).

Generator: z (N, nz, 1, 1) -> a 4x4 transposed conv (stride 1, no padding) to ngf x 2^(k-1) channels, then
k - 1 transposed convs 4x4 / 2 halving the width, each with BatchNorm and ReLU, and a last one to nc
channels with tanh; k = log2(img_size) - 2 (the published 64 px: ngf x 8 at 4 px, 4 upsamplings).
Discriminator: k strided 4x4 convs doubling from ndf (BatchNorm after all but the first, LeakyReLU 0.2), a
4x4 conv to one value and a sigmoid: D(x) is the probability that x is real, shape (N,).
No conv has a bias; initialisation as published: weights N(0, 0.02), BatchNorm scale N(1, 0.02), shift 0.
"""
import math

from mindspore import nn
from mindspore.common.initializer import Normal

from .layers import Conv2d, ConvTranspose2d, LeakyReLU
from .registry import register_model


def _depth(img_size):
    k = int(math.log2(img_size)) - 2
    if img_size < 16 or 2 ** (k + 2) != img_size:
        raise ValueError(f"img_size {img_size} must be a power of two, at least 16")
    return k


def _bn(c):
    return nn.BatchNorm2d(c, eps=1e-5, momentum=0.9, gamma_init=Normal(0.02, 1.0), beta_init="zeros")


@register_model("dcgan_generator")
class DCGANGenerator(nn.Cell):
    def __init__(self, nz=100, ngf=64, nc=3, img_size=64):
        super().__init__()
        k = _depth(img_size)
        d = ngf * 2 ** (k - 1)
        seq = [ConvTranspose2d(nz, d, 4, 1, 0, bias=False), _bn(d), nn.ReLU()]
        for _ in range(k - 1):
            seq += [ConvTranspose2d(d, d // 2, 4, 2, 1, bias=False), _bn(d // 2), nn.ReLU()]
            d //= 2
        seq += [ConvTranspose2d(d, nc, 4, 2, 1, bias=False), nn.Tanh()]
        self.main = nn.SequentialCell(seq)

    def construct(self, z):
        return self.main(z)


@register_model("dcgan_discriminator")
class DCGANDiscriminator(nn.Cell):
    def __init__(self, ndf=64, nc=3, img_size=64):
        super().__init__()
        k = _depth(img_size)
        seq = [Conv2d(nc, ndf, 4, 2, 1, bias=False, weight_init=Normal(0.02)), LeakyReLU(0.2)]
        d = ndf
        for _ in range(k - 1):
            seq += [Conv2d(d, 2 * d, 4, 2, 1, bias=False, weight_init=Normal(0.02)), _bn(2 * d), LeakyReLU(0.2)]
            d *= 2
        seq += [Conv2d(d, 1, 4, 1, 0, bias=False, weight_init=Normal(0.02)), nn.Sigmoid()]
        self.main = nn.SequentialCell(seq)

    def construct(self, x):
        return self.main(x).reshape(-1)


def torch_key_rules(net, prefix=""):
    """pytorch/examples' keys -> this network's: BatchNorm weight/bias are gamma/beta, running statistics
    moving_*; num_batches_tracked is not kept. `prefix`: what precedes the keys (a training net's name)."""
    rules = [(r"^(.*)\.num_batches_tracked$", None), (r"^(.*)\.running_mean$", r"\1.moving_mean"),
             (r"^(.*)\.running_var$", r"\1.moving_variance")]
    for name, cell in net.cells_and_names():
        if isinstance(cell, (nn.BatchNorm1d, nn.BatchNorm2d)):
            esc = (prefix + name).replace(".", r"\.")
            rules += [(rf"^({esc})\.weight$", r"\1.gamma"), (rf"^({esc})\.bias$", r"\1.beta")]
    return rules + [(r"^(.*)$", r"\1")]
