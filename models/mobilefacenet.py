"""MobileFaceNet (the face-ID network photo2cartoon uses for its identity loss), in the published key layout.

The published `model_mobilefacenet.pth` is a PyTorch state_dict of `MobileFaceNet(512)` with BatchNorm and
PReLU; TORCH_KEY_RULES below maps its names onto these Cells (BN weight/bias/running_* -> gamma/beta/
moving_*, PReLU weight -> w, num_batches_tracked dropped). BatchNorm always uses the moving statistics:
the network is a fixed feature extractor.
"""
from mindspore import nn, ops

from .registry import register_model


def _bn2d(c):
    return nn.BatchNorm2d(c, eps=1e-5, use_batch_statistics=False)


class ConvBlock(nn.Cell):
    def __init__(self, in_c, out_c, kernel=1, stride=1, padding=0, groups=1, act=True):
        super().__init__()
        self.conv = nn.Conv2d(in_c, out_c, kernel, stride=stride, pad_mode="pad", padding=padding, group=groups,
                              has_bias=False)
        self.bn = _bn2d(out_c)
        self.act = act
        if act:
            self.prelu = nn.PReLU(out_c)

    def construct(self, x):
        x = self.bn(self.conv(x))
        if self.act:
            x = self.prelu(x)
        return x


class DepthWise(nn.Cell):
    def __init__(self, in_c, out_c, residual=False, kernel=3, stride=2, padding=1, groups=1):
        super().__init__()
        self.conv = ConvBlock(in_c, groups, 1)
        self.conv_dw = ConvBlock(groups, groups, kernel, stride, padding, groups=groups)
        self.project = ConvBlock(groups, out_c, 1, act=False)
        self.residual = residual

    def construct(self, x):
        y = self.project(self.conv_dw(self.conv(x)))
        if self.residual:
            y = x + y
        return y


class Residual(nn.Cell):
    def __init__(self, c, num_block, groups):
        super().__init__()
        self.model = nn.SequentialCell([DepthWise(c, c, True, 3, 1, 1, groups) for _ in range(num_block)])

    def construct(self, x):
        return self.model(x)


@register_model("mobilefacenet")
class MobileFaceNet(nn.Cell):
    """112x112 RGB -> L2-normalised embedding (default 512)."""

    def __init__(self, embedding_size=512):
        super().__init__()
        self.embedding_size = embedding_size
        self.conv1 = ConvBlock(3, 64, 3, 2, 1)
        self.conv2_dw = ConvBlock(64, 64, 3, 1, 1, groups=64)
        self.conv_23 = DepthWise(64, 64, False, 3, 2, 1, groups=128)
        self.conv_3 = Residual(64, 4, 128)
        self.conv_34 = DepthWise(64, 128, False, 3, 2, 1, groups=256)
        self.conv_4 = Residual(128, 6, 256)
        self.conv_45 = DepthWise(128, 128, False, 3, 2, 1, groups=512)
        self.conv_5 = Residual(128, 2, 256)
        self.conv_6_sep = ConvBlock(128, 512, 1)
        self.conv_6_dw = ConvBlock(512, 512, 7, 1, 0, groups=512, act=False)
        self.linear = nn.Dense(512, embedding_size, has_bias=False)
        self.bn = nn.BatchNorm1d(embedding_size, eps=1e-5, use_batch_statistics=False)

    def construct(self, x):
        x = self.conv2_dw(self.conv1(x))
        x = self.conv_3(self.conv_23(x))
        x = self.conv_4(self.conv_34(x))
        x = self.conv_5(self.conv_45(x))
        x = self.conv_6_dw(self.conv_6_sep(x))
        x = self.bn(self.linear(x.reshape(x.shape[0], -1)))
        return x / ops.sqrt((x * x).sum(axis=1, keepdims=True))


TORCH_KEY_RULES = [
    (r"^.*\.num_batches_tracked$", None),
    (r"^(.*\bbn)\.weight$", r"\1.gamma"),
    (r"^(.*\bbn)\.bias$", r"\1.beta"),
    (r"^(.*\bbn)\.running_mean$", r"\1.moving_mean"),
    (r"^(.*\bbn)\.running_var$", r"\1.moving_variance"),
    (r"^(.*\bprelu)\.weight$", r"\1.w"),
    (r"^(.*)$", r"\1"),
]
