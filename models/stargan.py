"""StarGAN: one generator for many domains (Choi et al. 2018), in the layout of its published PyTorch code.

Generator G(x, c): the target label vector c (c_dim) is tiled over the image and concatenated to it; then a
7x7 conv (conv_dim), two 4x4 stride-2 convs doubling the width, `repeat_num` residual blocks (3x3 conv, norm,
ReLU, 3x3 conv, norm, plus the input), two 4x4 stride-2 transposed convs halving it, a 7x7 conv to 3
channels and tanh. Convolutions have no bias; every norm is an affine InstanceNorm that tracks running
statistics (layers.TrackedInstanceNorm2d), as published: training mode normalises by each image's own
statistics, eval mode by the running ones.

Discriminator D(x) -> (source map (N, 1, s, s), domain logits (N, c_dim)): `repeat_num` 4x4 stride-2 convs
(with bias) from conv_dim, doubling, each followed by LeakyReLU(0.01); then a 3x3 conv to one channel (the
PatchGAN real/fake map) and a conv whose kernel covers the whole remaining map (image_size / 2^repeat_num) to
c_dim (the domain classifier). Key names mirror the original (`main.<i>`, `conv1`, `conv2`).
"""
from mindspore import nn, ops

from .layers import Conv2d, ConvTranspose2d, LeakyReLU, TrackedInstanceNorm2d, torch_uniform
from .registry import register_model


def _conv(cin, cout, k, stride, padding, bias):
    init = torch_uniform(cin * k * k)
    return Conv2d(cin, cout, k, stride=stride, padding=padding, bias=bias, weight_init=init, bias_init=init)


class ResidualBlock(nn.Cell):
    def __init__(self, dim):
        super().__init__()
        self.main = nn.SequentialCell([_conv(dim, dim, 3, 1, 1, False), TrackedInstanceNorm2d(dim), nn.ReLU(),
                                       _conv(dim, dim, 3, 1, 1, False), TrackedInstanceNorm2d(dim)])

    def construct(self, x):
        return x + self.main(x)


@register_model("stargan_generator")
class StarGANGenerator(nn.Cell):
    def __init__(self, conv_dim=64, c_dim=5, repeat_num=6):
        super().__init__()
        self.c_dim = c_dim
        layers = [_conv(3 + c_dim, conv_dim, 7, 1, 3, False), TrackedInstanceNorm2d(conv_dim), nn.ReLU()]
        d = conv_dim
        for _ in range(2):
            layers += [_conv(d, d * 2, 4, 2, 1, False), TrackedInstanceNorm2d(d * 2), nn.ReLU()]
            d *= 2
        layers += [ResidualBlock(d) for _ in range(repeat_num)]
        for _ in range(2):
            layers += [ConvTranspose2d(d, d // 2, 4, 2, 1, bias=False, weight_init=torch_uniform(d // 2 * 16)),
                       TrackedInstanceNorm2d(d // 2), nn.ReLU()]
            d //= 2
        layers += [_conv(d, 3, 7, 1, 3, False), nn.Tanh()]
        self.main = nn.SequentialCell(layers)

    def construct(self, x, c):
        n, _, h, w = x.shape
        tiled = ops.broadcast_to(c.reshape(n, self.c_dim, 1, 1), (n, self.c_dim, h, w))
        return self.main(ops.concat((x, tiled), 1))


@register_model("stargan_discriminator")
class StarGANDiscriminator(nn.Cell):
    def __init__(self, image_size=128, conv_dim=64, c_dim=5, repeat_num=6):
        super().__init__()
        side = image_size // 2 ** repeat_num
        if side < 1 or image_size % 2 ** repeat_num:
            raise ValueError(f"image_size {image_size} must be a multiple of 2^repeat_num = {2 ** repeat_num}")
        layers, cin, d = [], 3, conv_dim
        for _ in range(repeat_num):
            layers += [_conv(cin, d, 4, 2, 1, True), LeakyReLU(0.01)]
            cin, d = d, d * 2
        self.main = nn.SequentialCell(layers)
        self.conv1 = _conv(cin, 1, 3, 1, 1, False)
        self.conv2 = _conv(cin, c_dim, side, 1, 0, False)

    def construct(self, x):
        h = self.main(x)
        cls = self.conv2(h)
        return self.conv1(h), cls.reshape(cls.shape[0], cls.shape[1])


# published key -> MindSpore parameter: the running statistics' names; num_batches_tracked is not kept
TORCH_KEY_RULES = [(r"^(.*)\.running_mean$", r"\1.moving_mean"), (r"^(.*)\.running_var$", r"\1.moving_variance"),
                   (r"^(.*)\.num_batches_tracked$", None), (r"^(.*)$", r"\1")]


def use_instance_stats(net, on=True):
    """Eval-mode forwards of `net` normalise by each image's own statistics (as StarGAN's test script, which
    never calls eval(), does) or, with on=False, by the running statistics (PyTorch's eval()). Call before
    the first eval-mode forward: graph mode compiles the choice in."""
    for _, cell in net.cells_and_names():
        # the portable TrackedInstanceNorm2d or the CPU kernels' Cell that replaced it (kernels/cells.py)
        if hasattr(cell, "eval_input_stats"):
            cell.eval_input_stats = bool(on)
    return net
