"""U-GAT-IT family: the photo2cartoon generator, the original U-GAT-IT generator and the CAM discriminator.

Attribute names and SequentialCell indices mirror the published PyTorch code (minivision-ai/photo2cartoon,
znxlwm/UGATIT-pytorch), so a published state_dict maps onto these Cells by name; the mapping table at the
bottom of this file states the few renames that remain (none, by construction) and is checked strictly.
"""
from mindspore import nn, ops

from .layers import (AdaLIN, AvgPool2x2, InstanceNorm2d, LeakyReLU, LIN, ReflectionPad2d, SNConv2d, SNDense,
                     SoftAdaLIN, UpsampleNearest2x, cam_attention, conv2d, dense)
from .registry import register_model

# ---------------------------------------------------------------------------------------------- blocks


class ResnetBlock(nn.Cell):
    """pad-conv-IN-ReLU-pad-conv-IN with identity skip; keys `conv_block.1`, `conv_block.5`."""

    def __init__(self, dim, use_bias=False):
        super().__init__()
        self.conv_block = nn.SequentialCell([
            ReflectionPad2d(1), conv2d(dim, dim, 3, bias=use_bias), InstanceNorm2d(dim), nn.ReLU(),
            ReflectionPad2d(1), conv2d(dim, dim, 3, bias=use_bias), InstanceNorm2d(dim)])

    def construct(self, x):
        return x + self.conv_block(x)


class ResnetAdaLINBlock(nn.Cell):
    """U-GAT-IT decoder block: conv-adaLIN-ReLU-conv-adaLIN with gamma/beta from the FC head."""

    def __init__(self, dim, use_bias=False):
        super().__init__()
        self.pad1 = ReflectionPad2d(1)
        self.conv1 = conv2d(dim, dim, 3, bias=use_bias)
        self.norm1 = AdaLIN(dim)
        self.relu1 = nn.ReLU()
        self.pad2 = ReflectionPad2d(1)
        self.conv2 = conv2d(dim, dim, 3, bias=use_bias)
        self.norm2 = AdaLIN(dim)

    def construct(self, x, gamma, beta):
        out = self.relu1(self.norm1(self.conv1(self.pad1(x)), gamma, beta))
        out = self.norm2(self.conv2(self.pad2(out)), gamma, beta)
        return out + x


class ResnetSoftAdaLINBlock(nn.Cell):
    """photo2cartoon decoder block: as above with Soft-AdaLIN fed by content and style features."""

    def __init__(self, dim, use_bias=False):
        super().__init__()
        self.pad1 = ReflectionPad2d(1)
        self.conv1 = conv2d(dim, dim, 3, bias=use_bias)
        self.norm1 = SoftAdaLIN(dim)
        self.relu1 = nn.ReLU()
        self.pad2 = ReflectionPad2d(1)
        self.conv2 = conv2d(dim, dim, 3, bias=use_bias)
        self.norm2 = SoftAdaLIN(dim)

    def construct(self, x, content_features, style_features):
        out = self.relu1(self.norm1(self.conv1(self.pad1(x)), content_features, style_features))
        out = self.norm2(self.conv2(self.pad2(out)), content_features, style_features)
        return out + x


class ConvBlock(nn.Cell):
    """Hourglass residual unit: three pre-activation convs (C/2, C/4, C/4 channels) concatenated.

    `ConvBlock4` (the 1x1 projection) exists in the published weights even where dim_in == dim_out and it
    is never used, so it is built here too, to receive those weights.
    """

    def __init__(self, dim_in, dim_out):
        super().__init__()
        self.project = dim_in != dim_out
        self.ConvBlock1 = nn.SequentialCell([InstanceNorm2d(dim_in), nn.ReLU(), ReflectionPad2d(1),
                                             conv2d(dim_in, dim_out // 2, 3, bias=False)])
        self.ConvBlock2 = nn.SequentialCell([InstanceNorm2d(dim_out // 2), nn.ReLU(), ReflectionPad2d(1),
                                             conv2d(dim_out // 2, dim_out // 4, 3, bias=False)])
        self.ConvBlock3 = nn.SequentialCell([InstanceNorm2d(dim_out // 4), nn.ReLU(), ReflectionPad2d(1),
                                             conv2d(dim_out // 4, dim_out // 4, 3, bias=False)])
        self.ConvBlock4 = nn.SequentialCell([InstanceNorm2d(dim_in), nn.ReLU(),
                                             conv2d(dim_in, dim_out, 1, bias=False)])

    def construct(self, x):
        x1 = self.ConvBlock1(x)
        x2 = self.ConvBlock2(x1)
        x3 = self.ConvBlock3(x2)
        out = ops.concat((x1, x2, x3), 1)
        residual = x
        if self.project:
            residual = self.ConvBlock4(x)
        return residual + out


class HourGlassBlock(nn.Cell):
    """Four-level hourglass (avg-pool down, nearest up, additive skips)."""

    def __init__(self, dim_in, dim_out):
        super().__init__()
        self.ConvBlock1_1 = ConvBlock(dim_in, dim_out)
        self.ConvBlock1_2 = ConvBlock(dim_out, dim_out)
        self.ConvBlock2_1 = ConvBlock(dim_out, dim_out)
        self.ConvBlock2_2 = ConvBlock(dim_out, dim_out)
        self.ConvBlock3_1 = ConvBlock(dim_out, dim_out)
        self.ConvBlock3_2 = ConvBlock(dim_out, dim_out)
        self.ConvBlock4_1 = ConvBlock(dim_out, dim_out)
        self.ConvBlock4_2 = ConvBlock(dim_out, dim_out)
        self.ConvBlock5 = ConvBlock(dim_out, dim_out)
        self.ConvBlock6 = ConvBlock(dim_out, dim_out)
        self.ConvBlock7 = ConvBlock(dim_out, dim_out)
        self.ConvBlock8 = ConvBlock(dim_out, dim_out)
        self.ConvBlock9 = ConvBlock(dim_out, dim_out)
        self.pool = AvgPool2x2()
        self.up = UpsampleNearest2x()

    def construct(self, x):
        skip1 = self.ConvBlock1_1(x)
        down1 = self.ConvBlock1_2(self.pool(x))
        skip2 = self.ConvBlock2_1(down1)
        down2 = self.ConvBlock2_2(self.pool(down1))
        skip3 = self.ConvBlock3_1(down2)
        down3 = self.ConvBlock3_2(self.pool(down2))
        skip4 = self.ConvBlock4_1(down3)
        down4 = self.ConvBlock4_2(self.pool(down3))
        center = self.ConvBlock5(down4)
        up4 = skip4 + self.up(self.ConvBlock6(center))
        up3 = skip3 + self.up(self.ConvBlock7(up4))
        up2 = skip2 + self.up(self.ConvBlock8(up3))
        return skip1 + self.up(self.ConvBlock9(up2))


class HourGlass(nn.Cell):
    def __init__(self, dim_in, dim_out, use_res=True):
        super().__init__()
        self.use_res = use_res
        self.HG = nn.SequentialCell([HourGlassBlock(dim_in, dim_out), ConvBlock(dim_out, dim_out),
                                     conv2d(dim_out, dim_out, 1, bias=False), InstanceNorm2d(dim_out),
                                     nn.ReLU()])
        self.Conv1 = conv2d(dim_out, 3, 1, bias=True)
        if use_res:
            self.Conv2 = conv2d(dim_out, dim_out, 1, bias=True)
            self.Conv3 = conv2d(3, dim_out, 1, bias=True)

    def construct(self, x):
        ll = self.HG(x)
        tmp_out = self.Conv1(ll)
        if self.use_res:
            return x + self.Conv2(ll) + self.Conv3(tmp_out)
        return tmp_out


def _gap(x):
    return x.mean(axis=(2, 3)).reshape(x.shape[0], -1)


# -------------------------------------------------------------------------------------------- networks


@register_model("ugatit_p2c_generator")
class Photo2CartoonGenerator(nn.Cell):
    """photo2cartoon's generator (hourglass encoder/decoder, CAM, Soft-AdaLIN bottleneck).

    Returns `(image in [-1, 1], cam_logit (B, 2), heatmap (B, 1, H/4, W/4))`.
    """

    def __init__(self, ngf=32, img_size=256, light=True):
        super().__init__()
        self.ngf, self.img_size, self.light = ngf, img_size, light
        self.ConvBlock1 = nn.SequentialCell([ReflectionPad2d(3), conv2d(3, ngf, 7, bias=False),
                                             InstanceNorm2d(ngf), nn.ReLU()])
        self.HourGlass1 = HourGlass(ngf, ngf)
        self.HourGlass2 = HourGlass(ngf, ngf)
        self.DownBlock1 = nn.SequentialCell([ReflectionPad2d(1), conv2d(ngf, ngf * 2, 3, stride=2, bias=False),
                                             InstanceNorm2d(ngf * 2), nn.ReLU()])
        self.DownBlock2 = nn.SequentialCell([ReflectionPad2d(1),
                                             conv2d(ngf * 2, ngf * 4, 3, stride=2, bias=False),
                                             InstanceNorm2d(ngf * 4), nn.ReLU()])
        self.EncodeBlock1 = ResnetBlock(ngf * 4)
        self.EncodeBlock2 = ResnetBlock(ngf * 4)
        self.EncodeBlock3 = ResnetBlock(ngf * 4)
        self.EncodeBlock4 = ResnetBlock(ngf * 4)
        self.gap_fc = dense(ngf * 4, 1)
        self.gmp_fc = dense(ngf * 4, 1)
        self.conv1x1 = conv2d(ngf * 8, ngf * 4, 1, bias=True)
        self.relu = nn.ReLU()
        fc_in = ngf * 4 if light else (img_size // 4) * (img_size // 4) * ngf * 4
        self.FC = nn.SequentialCell([dense(fc_in, ngf * 4), nn.ReLU(), dense(ngf * 4, ngf * 4), nn.ReLU()])
        self.DecodeBlock1 = ResnetSoftAdaLINBlock(ngf * 4)
        self.DecodeBlock2 = ResnetSoftAdaLINBlock(ngf * 4)
        self.DecodeBlock3 = ResnetSoftAdaLINBlock(ngf * 4)
        self.DecodeBlock4 = ResnetSoftAdaLINBlock(ngf * 4)
        self.UpBlock1 = nn.SequentialCell([UpsampleNearest2x(), ReflectionPad2d(1),
                                           conv2d(ngf * 4, ngf * 2, 3, bias=False), LIN(ngf * 2), nn.ReLU()])
        self.UpBlock2 = nn.SequentialCell([UpsampleNearest2x(), ReflectionPad2d(1),
                                           conv2d(ngf * 2, ngf, 3, bias=False), LIN(ngf), nn.ReLU()])
        self.HourGlass3 = HourGlass(ngf, ngf)
        self.HourGlass4 = HourGlass(ngf, ngf, False)
        self.ConvBlock2 = nn.SequentialCell([ReflectionPad2d(3), conv2d(3, 3, 7, bias=False), nn.Tanh()])

    def construct(self, x):
        x = self.ConvBlock1(x)
        x = self.HourGlass2(self.HourGlass1(x))
        x = self.DownBlock2(self.DownBlock1(x))
        x = self.EncodeBlock1(x)
        content1 = _gap(x)
        x = self.EncodeBlock2(x)
        content2 = _gap(x)
        x = self.EncodeBlock3(x)
        content3 = _gap(x)
        x = self.EncodeBlock4(x)
        content4 = _gap(x)
        x, cam_logit = cam_attention(x, self.gap_fc, self.gmp_fc, self.gap_fc.weight, self.gmp_fc.weight)
        x = self.relu(self.conv1x1(x))
        heatmap = x.sum(axis=1, keepdims=True)
        if self.light:
            style = self.FC(_gap(x))
        else:
            style = self.FC(x.reshape(x.shape[0], -1))
        x = self.DecodeBlock1(x, content4, style)
        x = self.DecodeBlock2(x, content3, style)
        x = self.DecodeBlock3(x, content2, style)
        x = self.DecodeBlock4(x, content1, style)
        x = self.UpBlock2(self.UpBlock1(x))
        x = self.HourGlass4(self.HourGlass3(x))
        return self.ConvBlock2(x), cam_logit, heatmap


@register_model("ugatit_generator")
class UGATITGenerator(nn.Cell):
    """The original U-GAT-IT ResnetGenerator (two downsamplings, n_blocks ResNet + adaLIN blocks, CAM)."""

    def __init__(self, ngf=64, n_blocks=4, img_size=256, light=True, input_nc=3, output_nc=3):
        super().__init__()
        self.ngf, self.n_blocks, self.img_size, self.light = ngf, n_blocks, img_size, light
        self.input_nc, self.output_nc = input_nc, output_nc
        down = [ReflectionPad2d(3), conv2d(input_nc, ngf, 7, bias=False), InstanceNorm2d(ngf), nn.ReLU()]
        for i in range(2):
            mult = 2 ** i
            down += [ReflectionPad2d(1), conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, bias=False),
                     InstanceNorm2d(ngf * mult * 2), nn.ReLU()]
        mult = 4
        down += [ResnetBlock(ngf * mult) for _ in range(n_blocks)]
        self.DownBlock = nn.SequentialCell(down)
        self.gap_fc = dense(ngf * mult, 1, bias=False)
        self.gmp_fc = dense(ngf * mult, 1, bias=False)
        self.conv1x1 = conv2d(ngf * mult * 2, ngf * mult, 1, bias=True)
        self.relu = nn.ReLU()
        fc_in = ngf * mult if light else (img_size // mult) * (img_size // mult) * ngf * mult
        self.FC = nn.SequentialCell([dense(fc_in, ngf * mult, bias=False), nn.ReLU(),
                                     dense(ngf * mult, ngf * mult, bias=False), nn.ReLU()])
        self.gamma = dense(ngf * mult, ngf * mult, bias=False)
        self.beta = dense(ngf * mult, ngf * mult, bias=False)
        for i in range(n_blocks):
            setattr(self, "UpBlock1_" + str(i + 1), ResnetAdaLINBlock(ngf * mult))
        up = []
        for i in range(2):
            mult = 2 ** (2 - i)
            up += [UpsampleNearest2x(), ReflectionPad2d(1), conv2d(ngf * mult, ngf * mult // 2, 3, bias=False),
                   LIN(ngf * mult // 2), nn.ReLU()]
        up += [ReflectionPad2d(3), conv2d(ngf, output_nc, 7, bias=False), nn.Tanh()]
        self.UpBlock2 = nn.SequentialCell(up)

    def construct(self, x):
        x = self.DownBlock(x)
        x, cam_logit = cam_attention(x, self.gap_fc, self.gmp_fc, self.gap_fc.weight, self.gmp_fc.weight)
        x = self.relu(self.conv1x1(x))
        heatmap = x.sum(axis=1, keepdims=True)
        if self.light:
            h = self.FC(_gap(x))
        else:
            h = self.FC(x.reshape(x.shape[0], -1))
        gamma = self.gamma(h)
        beta = self.beta(h)
        for i in range(self.n_blocks):
            x = getattr(self, "UpBlock1_" + str(i + 1))(x, gamma, beta)
        return self.UpBlock2(x), cam_logit, heatmap


@register_model("ugatit_discriminator")
class UGATITDiscriminator(nn.Cell):
    """U-GAT-IT's spectral-normalised PatchGAN with a CAM head; global: n_layers=7, local: n_layers=5.

    Returns `(patch logits (B, 1, h, w), cam_logit (B, 2), heatmap (B, 1, h', w'))`.
    """

    def __init__(self, input_nc=3, ndf=64, n_layers=5):
        super().__init__()
        self.input_nc, self.ndf, self.n_layers = input_nc, ndf, n_layers
        model = [ReflectionPad2d(1), SNConv2d(input_nc, ndf, 4, stride=2, bias=True), LeakyReLU(0.2)]
        for i in range(1, n_layers - 2):
            mult = 2 ** (i - 1)
            model += [ReflectionPad2d(1), SNConv2d(ndf * mult, ndf * mult * 2, 4, stride=2, bias=True),
                      LeakyReLU(0.2)]
        mult = 2 ** (n_layers - 3)
        model += [ReflectionPad2d(1), SNConv2d(ndf * mult, ndf * mult * 2, 4, stride=1, bias=True),
                  LeakyReLU(0.2)]
        mult = 2 ** (n_layers - 2)
        self.gap_fc = SNDense(ndf * mult, 1, bias=False)
        self.gmp_fc = SNDense(ndf * mult, 1, bias=False)
        self.conv1x1 = conv2d(ndf * mult * 2, ndf * mult, 1, bias=True)
        self.leaky_relu = LeakyReLU(0.2)
        self.pad = ReflectionPad2d(1)
        self.conv = SNConv2d(ndf * mult, 1, 4, stride=1, bias=False)
        self.model = nn.SequentialCell(model)

    def construct(self, x):
        x = self.model(x)
        x, cam_logit = cam_attention(x, self.gap_fc, self.gmp_fc, self.gap_fc.weight_orig,
                                     self.gmp_fc.weight_orig)
        x = self.leaky_relu(self.conv1x1(x))
        heatmap = x.sum(axis=1, keepdims=True)
        return self.conv(self.pad(x)), cam_logit, heatmap


# Published PyTorch key -> MindSpore parameter name. The Cells above mirror the published attribute names
# and Sequential indices, and the spectral-norm Cells carry torch's `weight_orig`/`weight_u`/`weight_v`,
# so every key maps to itself; `conversion.core.map_state_dict` still checks both sides strictly.
TORCH_KEY_RULES = [(r"^(.*)$", r"\1")]
