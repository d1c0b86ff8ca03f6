"""Layer swaps that make a built network exportable by MindSpore's ONNX exporter, results unchanged.

    net = models.load_network(DIR, "genA2B", accelerate=False)
    make_portable(net)               # in place, before the first call; parameters untouched
    mindspore.export(net, x, file_name=..., file_format="ONNX")

MindSpore's ONNX exporter knows a subset of its operators. The networks here use a few it does not: the
reflection pad (MirrorPad), the fused normalisation behind InstanceNorm / LIN / adaLIN (BatchNorm in training
mode on reshaped rows), the masked leaky ReLU (a select), the FID network's bilinear resize
(ResizeBilinearV2) and the spectral-norm convolution's integer attributes (SPADE). Each is swapped, for
inference only, by the same maths in operators the exporter maps one to one: Gather of constant indices;
ReduceMean / Sub / Mul / Sqrt / Div; LeakyRelu; MatMul by constant interpolation weights; Conv with tuple
attributes. The swapped network computes what the original does within float rounding (the tests
hold the exported files to 1e-4). Training-time state is not exported: norms with running statistics export
their inference form, and dropout is off (Pix2Pix's test-time dropout is random by nature).
"""
import mindspore as ms
from mindspore import Tensor, nn, ops

from models import layers
from models.surgery import replace_cells


class GatherReflectionPad2d(nn.Cell):
    """ReflectionPad2d(p) as two gathers of constant indices (rows, then columns): exact, and quick to compile
    (slicing row by row compiled 10 times slower)."""

    def __init__(self, padding):
        super().__init__()
        self.p = int(padding)

    def construct(self, x):
        p = self.p
        if p == 0:
            return x
        h, w = x.shape[2], x.shape[3]
        rows = tuple(range(p, 0, -1)) + tuple(range(h)) + tuple(range(h - 2, h - 2 - p, -1))
        cols = tuple(range(p, 0, -1)) + tuple(range(w)) + tuple(range(w - 2, w - 2 - p, -1))
        return ops.gather(ops.gather(x, Tensor(rows, ms.int32), 2), Tensor(cols, ms.int32), 3)


def _plain_normalize(x, axes, eps, unbiased):
    """(x - mean) / sqrt(var + eps) over `axes`, the variance biased or (torch.var) unbiased."""
    mean = x.mean(axis=axes, keep_dims=True)
    xc = x - mean
    n = 1
    for a in axes:
        n *= x.shape[a]
    var = (xc * xc).mean(axis=axes, keep_dims=True)
    if unbiased:
        var = var * (float(n) / float(n - 1))
    return xc / ops.sqrt(var + eps)


class PlainInstanceNorm2d(nn.Cell):
    """layers.InstanceNorm2d (and TrackedInstanceNorm2d normalising by each image's statistics) in plain
    reductions; the affine parameters are the original layer's own."""

    def __init__(self, norm):
        super().__init__(auto_prefix=False)
        self.eps, self.affine = norm.eps, bool(getattr(norm, "affine", True))
        if self.affine:
            self.weight, self.bias = norm.weight, norm.bias
        if hasattr(norm, "moving_mean"):    # kept (unused here) so the network's parameters stay as they were
            self.moving_mean, self.moving_variance = norm.moving_mean, norm.moving_variance

    def construct(self, x):
        y = _plain_normalize(x, (2, 3), self.eps, False)
        if self.affine:
            y = y * self.weight.reshape(1, -1, 1, 1) + self.bias.reshape(1, -1, 1, 1)
        return y


class PlainLINMix(nn.Cell):
    """layers._LINMix: rho * instance norm + (1 - rho) * layer norm, unbiased variances, plain reductions."""

    def __init__(self, mix):
        super().__init__(auto_prefix=False)
        self.eps = mix.eps

    def construct(self, x, rho):
        return rho * _plain_normalize(x, (2, 3), self.eps, True) + \
            (1.0 - rho) * _plain_normalize(x, (1, 2, 3), self.eps, True)


class PortableSNConv2d(nn.Cell):
    """layers.SNConv2d at inference (the stored u, v, as PyTorch's eval mode): conv(x, W / (u^T W v)) + b with
    the convolution's attributes as tuples (the exporter cannot read the fused layer's integer ones) and the
    vector products as 2-D matrix products. The parameters are the layer's own."""

    def __init__(self, sn):
        super().__init__(auto_prefix=False)
        self.weight_orig, self.weight_u, self.weight_v = sn.weight_orig, sn.weight_u, sn.weight_v
        self.has_bias, self.sn_out = sn.has_bias, sn.sn_out
        if sn.has_bias:
            self.bias = sn.bias
        _, cout, k, stride, pad = sn.geometry
        self.conv = ops.Conv2D(out_channel=cout, kernel_size=(k, k), mode=1, pad_mode="pad", pad=(pad,) * 4,
                               stride=(stride, stride))

    def construct(self, x):
        w_mat = self.weight_orig.reshape(self.sn_out, -1)
        sigma = ops.matmul(ops.matmul(self.weight_u.reshape(1, -1), w_mat), self.weight_v.reshape(-1, 1))
        y = self.conv(x, self.weight_orig / sigma.reshape(1, 1, 1, 1))
        if self.has_bias:
            y = y + self.bias.reshape(1, -1, 1, 1)
        return y


def bilinear_matrix(n_in, n_out):
    """(n_out, n_in) weights of PyTorch's bilinear resize along one axis, align_corners False, no antialias:
    source (i + 0.5) * n_in / n_out - 0.5, clamped at 0, between its two neighbours."""
    import numpy as np
    a = np.zeros((n_out, n_in), np.float64)
    for i in range(n_out):
        src = max((i + 0.5) * n_in / n_out - 0.5, 0.0)
        i0 = min(int(np.floor(src)), n_in - 1)
        i1 = min(i0 + 1, n_in - 1)
        w1 = src - i0
        a[i, i0] += 1.0 - w1
        a[i, i1] += w1
    return a.astype(np.float32)


class MatmulBilinearResize(nn.Cell):
    """BilinearResize as two matrix products with constant weights (MindSpore's ResizeBilinearV2 has no ONNX
    mapping); built for one input size."""

    def __init__(self, size, in_hw):
        super().__init__()
        self.a_h = Tensor(bilinear_matrix(int(in_hw[0]), int(size[0])))
        self.a_w_t = Tensor(bilinear_matrix(int(in_hw[1]), int(size[1])).T.copy())

    def construct(self, x):
        return ops.matmul(self.a_h, ops.matmul(x, self.a_w_t))


def _tracked(norm):
    """A TrackedInstanceNorm2d at inference: each image's statistics (StarGAN's test script) -> plain
    reductions; its running statistics -> left as is (already a per-channel scale and shift)."""
    return PlainInstanceNorm2d(norm) if norm.eval_input_stats else None


SWAPS = {
    layers.ReflectionPad2d: lambda c: GatherReflectionPad2d(c.padding),
    layers.InstanceNorm2d: PlainInstanceNorm2d,
    layers.TrackedInstanceNorm2d: _tracked,
    layers._LINMix: PlainLINMix,
    layers.LeakyReLU: lambda c: nn.LeakyReLU(c.alpha),
    layers.SNConv2d: PortableSNConv2d,
}


def make_portable(net, input_hw=None):
    """Swap the layers of `net` (in place; returns it) for their exportable forms, in inference mode.
    input_hw: the (H, W) of the network's image input, for a resize that runs on it (the FID network's)."""
    if net.compile_cache:
        raise RuntimeError(f"make_portable({type(net).__name__}): the network already has a compiled graph; "
                           "swap its layers before its first call")
    net.set_train(False)
    before = {id(p): p.name for p in net.get_parameters()}
    from models.inception import BilinearResize
    swaps = dict(SWAPS)
    if input_hw is not None:
        swaps[BilinearResize] = lambda c: MatmulBilinearResize(c.size, input_hw)
    replace_cells(net, lambda c: swaps[type(c)](c) if type(c) in swaps else None)
    if {id(p): p.name for p in net.get_parameters()} != before:
        raise AssertionError(f"make_portable changed the parameters of {type(net).__name__}")
    net.set_train(False)
    return net
