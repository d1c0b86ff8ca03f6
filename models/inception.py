"""The Inception v3 network that FID and KID are computed with: pytorch-fid's `fid_inception_v3` (the TF FID
graph ported: torchvision's Inception v3 with 1008 classes and the FID variants of the A, C and E blocks),
returning its pool3 features (2048) and, on request, the 64 / 192 / 768-channel block outputs.

    net = models.load_network("pretrained_models/inception", "inception")   # converted FID weights
    feats = net(images)            # images (N, 3, H, W) in [0, 1] -> tuple of (N, C, h, w), pool3 last

As pytorch-fid's `InceptionV3(output_blocks, resize_input=True, normalize_input=True)`: the input is resized
to 299 x 299 (bilinear, align_corners False) and scaled to [-1, 1]. Every conv is BasicConv2d: conv without
bias, BatchNorm (eps 1e-3, running statistics), ReLU. The FID variants: the A and C blocks' and the first E
block's average pools exclude the padding from the count; the second E block's pool is a max pool. Key names
are torchvision's (`Conv2d_1a_3x3.conv.weight`, `Mixed_5b.branch1x1.bn.running_mean`, ...); the published
file's 1008-class `fc` plays no part in the features and is dropped by the conversion's key table.
"""
from mindspore import nn, ops

from .layers import Conv2d
from .registry import register_model

BLOCK_DIMS = (64, 192, 768, 2048)


class BasicConv2d(nn.Cell):
    def __init__(self, cin, cout, kernel_size, stride=1, padding=0):
        super().__init__()
        kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
        ph, pw = (padding, padding) if isinstance(padding, int) else padding
        if kh == kw and ph == pw:     # square: the toolkit's Conv2d, which the CPU kernels can take over
            self.conv = Conv2d(cin, cout, kh, stride=stride, padding=ph, bias=False)
        else:                         # the 1x7 / 7x1 / 1x3 / 3x1 convolutions: MindSpore's own
            self.conv = nn.Conv2d(cin, cout, (kh, kw), stride=stride, pad_mode="pad", padding=(ph, ph, pw, pw),
                                  has_bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=1e-3, momentum=0.9)
        self.relu = nn.ReLU()

    def construct(self, x):
        return self.relu(self.bn(self.conv(x)))


_AVG3_SAME = ops.AvgPool(kernel_size=3, strides=1, pad_mode="SAME")     # SAME leaves the padding out of the count
_MAX3 = {(1, 1): ops.MaxPool(kernel_size=3, strides=1, pad_mode="SAME"),  # SAME pads with -inf
         (2, 0): ops.MaxPool(kernel_size=3, strides=2)}


def _avg3_exclude_pad(x):
    """3x3 average pool, stride 1, padding 1, the padding left out of the count (count_include_pad False)."""
    return _AVG3_SAME(x)


def _max3(x, stride, padding=0):
    """3x3 max pool: stride 2 unpadded, or stride 1 with padding 1 (the primitives that export to ONNX)."""
    return _MAX3[(stride, padding)](x)


class InceptionA(nn.Cell):
    def __init__(self, cin, pool_features):
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 64, 1)
        self.branch5x5_1 = BasicConv2d(cin, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.branch_pool = BasicConv2d(cin, pool_features, 1)

    def construct(self, x):
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return ops.concat((self.branch1x1(x), b5, b3, self.branch_pool(_avg3_exclude_pad(x))), 1)


class InceptionB(nn.Cell):
    def __init__(self, cin):
        super().__init__()
        self.branch3x3 = BasicConv2d(cin, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)

    def construct(self, x):
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return ops.concat((self.branch3x3(x), b3, _max3(x, 2)), 1)


class InceptionC(nn.Cell):
    def __init__(self, cin, c7):
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 192, 1)
        self.branch7x7_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(cin, 192, 1)

    def construct(self, x):
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        d = self.branch7x7dbl_1(x)
        d = self.branch7x7dbl_5(self.branch7x7dbl_4(self.branch7x7dbl_3(self.branch7x7dbl_2(d))))
        return ops.concat((self.branch1x1(x), b7, d, self.branch_pool(_avg3_exclude_pad(x))), 1)


class InceptionD(nn.Cell):
    def __init__(self, cin):
        super().__init__()
        self.branch3x3_1 = BasicConv2d(cin, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(cin, 192, 1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)

    def construct(self, x):
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return ops.concat((b3, b7, _max3(x, 2)), 1)


class InceptionE(nn.Cell):
    """`max_pool`: the second E block of the FID network pools by max, the first by an average without the
    padding."""

    def __init__(self, cin, max_pool=False):
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = BasicConv2d(cin, 320, 1)
        self.branch3x3_1 = BasicConv2d(cin, 384, 1)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(cin, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(cin, 192, 1)

    def construct(self, x):
        b = self.branch3x3_1(x)
        b3 = ops.concat((self.branch3x3_2a(b), self.branch3x3_2b(b)), 1)
        d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        dd = ops.concat((self.branch3x3dbl_3a(d), self.branch3x3dbl_3b(d)), 1)
        pool = _max3(x, 1, 1) if self.max_pool else _avg3_exclude_pad(x)
        return ops.concat((self.branch1x1(x), b3, dd, self.branch_pool(pool)), 1)


class BilinearResize(nn.Cell):
    """`F.interpolate(x, size, mode="bilinear", align_corners=False)`, as pytorch-fid resizes its input."""

    def __init__(self, size):
        super().__init__()
        self.size = tuple(size)

    def construct(self, x):
        return ops.interpolate(x, size=self.size, mode="bilinear", align_corners=False)


@register_model("fid_inception")
class FIDInceptionV3(nn.Cell):
    """`output_blocks`: which of the 64 / 192 / 768 / 2048-channel outputs to return (indices 0-3, as
    pytorch-fid's), in order; `resize_input` / `normalize_input` as pytorch-fid's."""

    def __init__(self, output_blocks=(3,), resize_input=True, normalize_input=True):
        super().__init__()
        self.output_blocks = tuple(sorted(int(b) for b in output_blocks))
        if not self.output_blocks or min(self.output_blocks) < 0 or max(self.output_blocks) > 3:
            raise ValueError("output_blocks must name blocks 0 .. 3")
        self.last = self.output_blocks[-1]
        self.resize_input, self.normalize_input = resize_input, normalize_input
        self.resize = BilinearResize((299, 299))
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.Mixed_5b = InceptionA(192, 32)
        self.Mixed_5c = InceptionA(256, 64)
        self.Mixed_5d = InceptionA(288, 64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, 128)
        self.Mixed_6c = InceptionC(768, 160)
        self.Mixed_6d = InceptionC(768, 160)
        self.Mixed_6e = InceptionC(768, 192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280)
        self.Mixed_7c = InceptionE(2048, max_pool=True)

    def construct(self, x):
        if self.resize_input:
            x = self.resize(x)
        if self.normalize_input:
            x = 2.0 * x - 1.0
        outs = ()
        x = _max3(self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x))), 2)
        if 0 in self.output_blocks:
            outs += (x,)
        if self.last >= 1:
            x = _max3(self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x)), 2)
            if 1 in self.output_blocks:
                outs += (x,)
        if self.last >= 2:
            x = self.Mixed_6e(self.Mixed_6d(self.Mixed_6c(self.Mixed_6b(self.Mixed_6a(
                self.Mixed_5d(self.Mixed_5c(self.Mixed_5b(x))))))))
            if 2 in self.output_blocks:
                outs += (x,)
        if self.last >= 3:
            x = self.Mixed_7c(self.Mixed_7b(self.Mixed_7a(x)))
            outs += (x.mean(axis=(2, 3), keep_dims=True),)
        return outs


def torch_key_rules(net):
    """torchvision's Inception v3 keys (the published FID weights) -> this network's: BatchNorm weight/bias
    are gamma/beta, running statistics moving_*; num_batches_tracked and the classifier `fc` are dropped."""
    from .dcgan import torch_key_rules as bn_rules
    return [(r"^fc\.(weight|bias)$", None)] + bn_rules(net)
