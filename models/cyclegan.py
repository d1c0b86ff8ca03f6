"""CycleGAN / Pix2Pix networks in the layout of junyanz/pytorch-CycleGAN-and-pix2pix.

Attribute names and Sequential indices follow the published PyTorch modules, so a converted checkpoint is a
one-to-one copy (plus BatchNorm's four renames):
- `ResnetGenerator`: `model.{i}` (7x7 conv, two stride-2 convs, n_blocks `ResnetBlock`s with `conv_block.{j}`,
  two transposed convs, 7x7 conv, tanh); resnet_9blocks / resnet_6blocks.
- `UnetGenerator`: nested skip blocks, `model.model.1.model.3...` (unet_128: 7 downs, unet_256: 8 downs).
- `NLayerDiscriminator` (`basic` = 3 layers, the 70x70 PatchGAN) and `PixelDiscriminator` (1x1 PatchGAN).
Norm: `instance` (affine off, no running statistics), `batch` (affine, running statistics) or `none`.
As published, convolutions next to a norm carry a bias only with instance norm (or none: no bias).
Initialisation: normal(0, 0.02) for conv weights, normal(1, 0.02) for BatchNorm scales, zero biases.
"""
from mindspore import nn, ops
from mindspore.common.initializer import Normal

from .layers import Conv2d, ConvTranspose2d, Dropout, Identity, InstanceNorm2d, LeakyReLU, ReflectionPad2d
from .registry import register_model

NORMS = ("instance", "batch", "none")
GENERATORS = {"resnet_9blocks": ("cyclegan_resnet_generator", {"n_blocks": 9}),
              "resnet_6blocks": ("cyclegan_resnet_generator", {"n_blocks": 6}),
              "unet_128": ("cyclegan_unet_generator", {"num_downs": 7}),
              "unet_256": ("cyclegan_unet_generator", {"num_downs": 8})}
DISCRIMINATORS = {"basic": ("patchgan_discriminator", {"n_layers": 3}),
                  "n_layers": ("patchgan_discriminator", {}),
                  "pixel": ("pixel_discriminator", {})}

# torch state_dict -> MindSpore names: BatchNorm's parameters and statistics are renamed, the rest is 1:1.
# `num_batches_tracked` only matters for momentum=None (never used here) and has no MindSpore counterpart.
TORCH_BATCHNORM_RULES = [
    (r"^(.*)\.num_batches_tracked$", None),
    (r"^(.*)\.running_mean$", r"\1.moving_mean"),
    (r"^(.*)\.running_var$", r"\1.moving_variance"),
]
# old checkpoints (PyTorch < 0.4) carry running statistics for InstanceNorm layers, which use none: dropped,
# as the original loader does
TORCH_STALE_INSTANCE_NORM_RULES = [(r"^(.*)\.(running_mean|running_var|num_batches_tracked)$", None)]


def torch_key_rules(norm, batchnorm_prefixes=()):
    """Rename rules for a network with `norm`. With batch norm, the `weight`/`bias` of the BatchNorm layers
    (named by `batchnorm_prefixes`) become `gamma`/`beta`."""
    if norm == "instance":
        return TORCH_STALE_INSTANCE_NORM_RULES + [(r"^(.*)$", r"\1")]
    if norm == "batch":
        rules = list(TORCH_BATCHNORM_RULES)
        for prefix in batchnorm_prefixes:
            esc = prefix.replace(".", r"\.")
            rules += [(rf"^({esc})\.weight$", r"\1.gamma"), (rf"^({esc})\.bias$", r"\1.beta")]
        return rules + [(r"^(.*)$", r"\1")]
    return [(r"^(.*)$", r"\1")]


def _conv(cin, cout, k, stride=1, padding=0, bias=True):
    return Conv2d(cin, cout, k, stride=stride, padding=padding, bias=bias, weight_init=Normal(0.02))


_deconv = ConvTranspose2d


def _batch_norm(c):
    # PyTorch momentum 0.1 == MindSpore momentum 0.9 (weight of the old running value)
    return nn.BatchNorm2d(c, eps=1e-5, momentum=0.9, gamma_init=Normal(0.02, 1.0), beta_init="zeros")


NORM_LAYERS = {"instance": InstanceNorm2d, "batch": _batch_norm, "none": lambda c: Identity()}


def _check_norm(norm):
    if norm not in NORM_LAYERS:
        raise ValueError(f"norm must be one of {', '.join(NORMS)}, not {norm!r}")
    return NORM_LAYERS[norm], norm == "instance"


class ResnetBlock(nn.Cell):
    def __init__(self, dim, norm, use_dropout, seed=0):
        super().__init__()
        make_norm, bias = _check_norm(norm)
        layers = [ReflectionPad2d(1), _conv(dim, dim, 3, bias=bias), make_norm(dim), nn.ReLU()]
        if use_dropout:
            layers.append(Dropout(0.5, seed=seed))
        layers += [ReflectionPad2d(1), _conv(dim, dim, 3, bias=bias), make_norm(dim)]
        self.conv_block = nn.SequentialCell(layers)

    def construct(self, x):
        return x + self.conv_block(x)


@register_model("cyclegan_resnet_generator")
class ResnetGenerator(nn.Cell):
    """Two stride-2 downsamplings, `n_blocks` residual blocks, two transposed-conv upsamplings."""

    def __init__(self, input_nc=3, output_nc=3, ngf=64, norm="instance", use_dropout=False, n_blocks=9):
        super().__init__()
        make_norm, bias = _check_norm(norm)
        if n_blocks < 0:
            raise ValueError("n_blocks must be >= 0")
        layers = [ReflectionPad2d(3), _conv(input_nc, ngf, 7, bias=bias), make_norm(ngf), nn.ReLU()]
        for i in range(2):
            mult = 2 ** i
            layers += [_conv(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1, bias=bias),
                       make_norm(ngf * mult * 2), nn.ReLU()]
        for i in range(n_blocks):
            layers.append(ResnetBlock(ngf * 4, norm, use_dropout, seed=i))
        for i in range(2):
            mult = 2 ** (2 - i)
            layers += [_deconv(ngf * mult, ngf * mult // 2, 3, 2, 1, output_padding=1, bias=bias),
                       make_norm(ngf * mult // 2), nn.ReLU()]
        layers += [ReflectionPad2d(3), _conv(ngf, output_nc, 7), nn.Tanh()]
        self.model = nn.SequentialCell(layers)
        self.stride = 4   # input sides must be multiples of this

    def construct(self, x):
        return self.model(x)


class UnetSkipConnectionBlock(nn.Cell):
    """One level of the U-Net: down, the inner levels (`submodule`), up; the input is concatenated to the
    output except at the outermost level."""

    def __init__(self, outer_nc, inner_nc, input_nc=None, submodule=None, outermost=False, innermost=False,
                 norm="batch", use_dropout=False, seed=0):
        super().__init__()
        make_norm, bias = _check_norm(norm)
        self.outermost = outermost
        input_nc = outer_nc if input_nc is None else input_nc
        downconv = _conv(input_nc, inner_nc, 4, stride=2, padding=1, bias=bias)
        if outermost:
            layers = [downconv, submodule, nn.ReLU(), _deconv(inner_nc * 2, outer_nc, 4, 2, 1), nn.Tanh()]
        elif innermost:
            layers = [LeakyReLU(0.2), downconv, nn.ReLU(), _deconv(inner_nc, outer_nc, 4, 2, 1, bias=bias),
                      make_norm(outer_nc)]
        else:
            layers = [LeakyReLU(0.2), downconv, make_norm(inner_nc), submodule, nn.ReLU(),
                      _deconv(inner_nc * 2, outer_nc, 4, 2, 1, bias=bias), make_norm(outer_nc)]
            if use_dropout:
                layers.append(Dropout(0.5, seed=seed))
        self.model = nn.SequentialCell(layers)

    def construct(self, x):
        if self.outermost:
            return self.model(x)
        return ops.concat((x, self.model(x)), 1)


@register_model("cyclegan_unet_generator")
class UnetGenerator(nn.Cell):
    """U-Net with `num_downs` stride-2 levels (unet_256: 8, so a 256 input reaches 1x1 at the bottom)."""

    def __init__(self, input_nc=3, output_nc=3, num_downs=8, ngf=64, norm="batch", use_dropout=False):
        super().__init__()
        if num_downs < 5:
            raise ValueError("num_downs must be >= 5")
        block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, innermost=True, norm=norm)
        for i in range(num_downs - 5):
            block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, submodule=block, norm=norm, use_dropout=use_dropout,
                                            seed=i)
        block = UnetSkipConnectionBlock(ngf * 4, ngf * 8, submodule=block, norm=norm)
        block = UnetSkipConnectionBlock(ngf * 2, ngf * 4, submodule=block, norm=norm)
        block = UnetSkipConnectionBlock(ngf, ngf * 2, submodule=block, norm=norm)
        self.model = UnetSkipConnectionBlock(output_nc, ngf, input_nc=input_nc, submodule=block, outermost=True,
                                             norm=norm)
        self.stride = 2 ** num_downs

    def construct(self, x):
        return self.model(x)


@register_model("patchgan_discriminator")
class NLayerDiscriminator(nn.Cell):
    """PatchGAN: n_layers stride-2 4x4 convs (channels x2 up to 8 ndf), one stride-1 conv, a 1-channel conv.
    n_layers=3 is the `basic` 70x70 discriminator."""

    def __init__(self, input_nc=3, ndf=64, n_layers=3, norm="batch"):
        super().__init__()
        make_norm, bias = _check_norm(norm)
        layers = [_conv(input_nc, ndf, 4, stride=2, padding=1), LeakyReLU(0.2)]
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2 ** n, 8)
            layers += [_conv(ndf * prev, ndf * mult, 4, stride=2, padding=1, bias=bias), make_norm(ndf * mult),
                       LeakyReLU(0.2)]
        prev, mult = mult, min(2 ** n_layers, 8)
        layers += [_conv(ndf * prev, ndf * mult, 4, stride=1, padding=1, bias=bias), make_norm(ndf * mult),
                   LeakyReLU(0.2), _conv(ndf * mult, 1, 4, stride=1, padding=1)]
        self.model = nn.SequentialCell(layers)

    def construct(self, x):
        return self.model(x)


@register_model("pixel_discriminator")
class PixelDiscriminator(nn.Cell):
    """1x1 PatchGAN (`pixel`): a real/fake logit per pixel."""

    def __init__(self, input_nc=3, ndf=64, norm="batch"):
        super().__init__()
        make_norm, bias = _check_norm(norm)
        self.net = nn.SequentialCell([_conv(input_nc, ndf, 1), LeakyReLU(0.2),
                                      _conv(ndf, ndf * 2, 1, bias=bias), make_norm(ndf * 2), LeakyReLU(0.2),
                                      _conv(ndf * 2, 1, 1, bias=bias)])

    def construct(self, x):
        return self.net(x)


def batchnorm_prefixes(net):
    """Names of the BatchNorm layers of a built network (for the torch key rules)."""
    return [name for name, cell in net.cells_and_names() if isinstance(cell, nn.BatchNorm2d)]


def build(kind, input_nc, output_nc, ngf, norm, use_dropout=False, n_layers_D=3):
    """A network by its published option name: generators resnet_9blocks|resnet_6blocks|unet_128|unet_256,
    discriminators basic|n_layers|pixel. Returns (registry name, config)."""
    if kind in GENERATORS:
        name, extra = GENERATORS[kind]
        return name, dict(input_nc=input_nc, output_nc=output_nc, ngf=ngf, norm=norm, use_dropout=use_dropout,
                          **extra)
    if kind in DISCRIMINATORS:
        name, extra = DISCRIMINATORS[kind]
        cfg = dict(input_nc=input_nc, ndf=ngf, norm=norm, **extra)
        if kind == "n_layers":
            cfg["n_layers"] = n_layers_D
        return name, cfg
    raise ValueError(f"unknown network {kind!r}; generators: {', '.join(GENERATORS)}; "
                     f"discriminators: {', '.join(DISCRIMINATORS)}")
