"""Building blocks shared by the GAN families, written to match PyTorch semantics exactly.

Every Cell here is pure and portable: `construct` does tensor maths with MindSpore's own ops and branches only
on attributes fixed in `__init__` (or on `self.training`, which graph mode compiles into a graph per phase).
The CPU kernels (kernels/) replace some of these Cells in a built network by faster ones with the same
parameters and results (`kernels.accelerate`); the networks themselves never mention them.

Formulas follow the published PyTorch code:
- InstanceNorm2d: PyTorch's default (no running statistics, biased variance, eps 1e-5; affine on request).
- LIN / adaLIN: instance and layer statistics with the *unbiased* variance (`torch.var`), mixed by rho.
- CAM: the logit uses the fc layer's (possibly spectral-normalised) weight, while the feature map is
  multiplied by the *raw* first parameter of that fc (`weight_orig` under spectral norm).
- ConvTranspose2d: PyTorch's padding / output_padding semantics.
"""
import numpy as np
import mindspore as ms
from mindspore import nn, ops, Parameter, Tensor
from mindspore.common.initializer import Normal

__all__ = [
    "Conv2d", "ConvTranspose2d", "InstanceNorm2d", "LeakyReLU", "AvgPool2x2", "LIN", "AdaLIN", "SoftAdaLIN",
    "ReflectionPad2d", "UpsampleNearest2x", "SNConv2d", "SNDense", "Identity", "Dropout", "TrackedInstanceNorm2d",
    "cam_attention", "conv2d",
    "dense", "instance_norm", "torch_uniform", "LOCAL_STATE",
]

# Parameters that hold state of this toolkit's own that the published PyTorch networks do not have (the
# dropout layers' step counters): conversion fills them with their initial values, and a model directory
# written before a network had them still loads.
LOCAL_STATE = ("dropout_step",)


class Conv2d(nn.Conv2d):
    """PyTorch's `nn.Conv2d` (explicit zero padding, weight (out, in, kh, kw), keys `weight` and `bias`)."""

    def __init__(self, in_ch, out_ch, kernel_size, stride=1, padding=0, bias=True, weight_init="HeUniform",
                 bias_init="zeros"):
        super().__init__(in_ch, out_ch, kernel_size, stride=stride, pad_mode="pad", padding=padding,
                         has_bias=bias, weight_init=weight_init, bias_init=bias_init)
        self.geometry = (in_ch, out_ch, kernel_size, stride, padding)

    def construct(self, x):
        output = self.conv2d(x, self.weight)
        if self.has_bias:
            output = self.bias_add(output, self.bias)
        return output


def conv2d(in_ch, out_ch, kernel_size, stride=1, padding=0, bias=True):
    """A Conv2d with PyTorch's explicit zero padding and weight layout (out, in, kh, kw)."""
    return Conv2d(in_ch, out_ch, kernel_size, stride=stride, padding=padding, bias=bias)


def torch_uniform(fan_in):
    """PyTorch's default initialisation of a conv / linear layer's weight and bias: U(-1/sqrt(fan_in), +)
    (kaiming_uniform with a = sqrt(5)), fan_in = in_channels x kernel area (out_channels x kernel area for a
    transposed convolution, whose weight is (in, out, k, k))."""
    from mindspore.common.initializer import Uniform
    return Uniform(float(1.0 / np.sqrt(fan_in)))


def dense(in_ch, out_ch, bias=True):
    return nn.Dense(in_ch, out_ch, has_bias=bias, weight_init="HeUniform", bias_init="zeros")


class ConvTranspose2d(nn.Conv2dTranspose):
    """PyTorch's `ConvTranspose2d(padding=p, output_padding=op)` (weight (in, out, k, k)): the full transposed
    convolution cropped by p at the start and p - op at the end, which is MindSpore's transposed convolution
    with the asymmetric padding (p, p - op, p, p - op). (MindSpore's own output_padding fills the extra row
    and column with the bias only, where PyTorch puts real kernel contributions.) Initialisation N(0, 0.02)."""

    def __init__(self, cin, cout, k, stride, padding, output_padding=0, bias=True, weight_init=None,
                 bias_init="zeros"):
        if not 0 <= output_padding <= padding:
            raise ValueError("output_padding must be between 0 and padding")
        crop1 = padding - output_padding
        super().__init__(cin, cout, k, stride=stride, pad_mode="pad", padding=(padding, crop1, padding, crop1),
                         has_bias=bias, weight_init=Normal(0.02) if weight_init is None else weight_init,
                         bias_init=bias_init)
        self.geometry = (cin, cout, k, stride, padding, output_padding)


class Identity(nn.Cell):
    def construct(self, x):
        return x


_M32 = 0xFFFFFFFF


def _hash32(x):
    """A 32-bit integer hash (xorshift-multiply, the multipliers below 2^31 so that int64 products never
    overflow) of int64 tensors holding values in [0, 2^32)."""
    x = ops.bitwise_xor(x, ops.bitwise_right_shift(x, 16))
    x = ops.bitwise_and(x * 0x7FEB352D, _M32)
    x = ops.bitwise_xor(x, ops.bitwise_right_shift(x, 15))
    x = ops.bitwise_and(x * 0x2C1B3C6D, _M32)
    return ops.bitwise_xor(x, ops.bitwise_right_shift(x, 16))


class Dropout(nn.Cell):
    """PyTorch's `nn.Dropout(p)`: in training mode each element is zeroed with probability p and the rest are
    scaled by 1 / (1 - p); in eval mode the identity. No published parameters.

    The random numbers are a hash of (this layer's step counter, its seed, the element's index), not a
    stateful random op: the counter is a non-trainable Parameter (`dropout_step`) that advances by one per
    training-mode call and is saved with the network, so a run resumed from a checkpoint draws exactly the
    masks an uninterrupted run would (MindSpore's own dropout keeps its random state inside the compiled
    graph, where no checkpoint reaches it). `seed` tells the layers of one network apart."""

    def __init__(self, p=0.5, seed=0):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError("dropout probability must be in [0, 1)")
        self.p = float(p)
        self.scale = 1.0 / (1.0 - float(p))
        self.threshold = int(round(float(p) * 2 ** 32))
        self.seed = int(seed) & _M32
        self.dropout_step = Parameter(Tensor(np.array(0, np.int64)), name="dropout_step", requires_grad=False)

    def construct(self, x):
        if not self.training or self.p == 0.0:
            return x
        step = self.dropout_step
        base = _hash32(ops.bitwise_and(step * 0x3C6EF372 + self.seed, _M32))
        idx = ops.arange(0, x.size, dtype=ms.int64)
        bits = _hash32(ops.bitwise_and(idx + base, _M32))
        keep = ops.stop_gradient((bits >= self.threshold).astype(x.dtype) * self.scale)
        out = x * keep.reshape(x.shape)
        return ops.depend(out, ops.assign(self.dropout_step, step + 1))


def _row_normalize(x, rows, eps, scale=None, offset=None):
    """(x - mean) / sqrt(biased var + eps) over each of `rows` contiguous groups of x (any shape), times
    `scale` plus `offset` (per row, shape (rows,)) when given.

    Runs in two kernels instead of six elementwise/reduction passes: the rows are first shifted by their
    mean (gradient stopped), then go through the fused BatchNorm kernel in training mode, viewed as
    (1, rows, M, 1), whose batch statistics are then exactly the per-row statistics.

    Why the shift: that kernel computes the variance in one pass (E[x^2] - E[x]^2), which cancels
    catastrophically on large, nearly constant rows (NaN when fine-tuning on flat images; a 0.37
    input-gradient error at mean 300 / std 0.01 where the shifted form gives 0.02 against PyTorch's float32
    result, `bench/norm_kernels.py --mean 300 --std 0.01`). The output does not depend on a per-row constant,
    so the gradient through the stopped mean is zero anyway.
    The running-statistics inputs are fresh constants that the kernel updates in place; they must not be
    the constants passed as scale/shift (2.0 and 3.0 keep them apart: with ones/zeros the graph shared one
    buffer and the input gradient came out wrong by 0.1).
    """
    shape = x.shape
    m = x.size // rows
    x2 = x.reshape(rows, m)
    shift = ops.stop_gradient(x2.sum(axis=1, keepdims=True) * (1.0 / m))
    if scale is None:
        scale, offset = ops.ones((rows,), ms.float32), ops.zeros((rows,), ms.float32)
    y = ops.BatchNorm(is_training=True, epsilon=eps)(
        (x2 - shift).reshape(1, rows, m, 1), scale, offset,
        ops.fill(ms.float32, (rows,), 2.0), ops.fill(ms.float32, (rows,), 3.0))[0]
    return y.reshape(shape)


def instance_norm(x, eps):
    """PyTorch's `F.instance_norm(x, eps=eps)` (biased variance, no affine) for x (N, C, H, W)."""
    return _row_normalize(x, x.shape[0] * x.shape[1], eps)


def unbiased_norm(x, rows, eps):
    """Normalisation with torch.var's unbiased variance over `rows` groups, as U-GAT-IT's LIN/adaLIN use it.

    (x - m) / sqrt(var_b * n/(n-1) + eps) == sqrt((n-1)/n) * (x - m) / sqrt(var_b + eps * (n-1)/n).
    A group of one element is NaN in PyTorch (0/0 in torch.var); the two-pass form below keeps that.
    """
    n = x.size // rows
    if n > 1:
        return _row_normalize(x, rows, eps * (n - 1) / n) * float(np.sqrt((n - 1) / n))
    x2 = x.reshape(rows, n)
    xc = x2 - x2.mean(axis=1, keep_dims=True)
    var = (xc * xc).sum(axis=1, keepdims=True) / 0.0
    return (xc / ops.sqrt(var + eps)).reshape(x.shape)


class InstanceNorm2d(nn.Cell):
    """PyTorch `nn.InstanceNorm2d(C, affine=...)` without running statistics (MindSpore's own does not run
    on CPU). With affine, the per-channel scale and shift are `weight` and `bias`, as in PyTorch."""

    def __init__(self, num_features, eps=1e-5, affine=False):
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.affine = affine
        if affine:
            self.weight = Parameter(Tensor(np.ones((num_features,), np.float32)), name="weight")
            self.bias = Parameter(Tensor(np.zeros((num_features,), np.float32)), name="bias")

    def construct(self, x):
        n = x.shape[0]
        if self.affine:
            # the affine inside BatchNorm's kernel, per (sample, channel) row: MindSpore's broadcasting
            # multiply and add over the activation, and their gradients, cost more than the norm itself
            return _row_normalize(x, n * self.num_features, self.eps, ops.tile(self.weight, (n,)),
                                  ops.tile(self.bias, (n,)))
        return _row_normalize(x, n * self.num_features, self.eps)


class TrackedInstanceNorm2d(nn.Cell):
    """PyTorch `nn.InstanceNorm2d(C, affine=True, track_running_stats=True)` (StarGAN's norm).

    Training mode: each (sample, channel) normalised by its own statistics, and the running statistics
    updated as PyTorch does (momentum 0.1 on the batch mean of the per-instance means and of the unbiased
    per-instance variances). Eval mode: every sample normalised by the running statistics, a per-channel
    affine map. Parameters `weight`, `bias`, `moving_mean`, `moving_variance` (PyTorch's running_mean /
    running_var); PyTorch's `num_batches_tracked` only matters with momentum None and is not kept.
    `eval_input_stats = True` (set before the first eval-mode call) makes eval mode use each image's own
    statistics too, without touching the running ones: what StarGAN's test script runs, having never called
    eval()."""
    eval_input_stats = False

    def __init__(self, num_features, eps=1e-5, momentum=0.1):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, float(momentum)
        self.weight = Parameter(Tensor(np.ones((num_features,), np.float32)), name="weight")
        self.bias = Parameter(Tensor(np.zeros((num_features,), np.float32)), name="bias")
        self.moving_mean = Parameter(Tensor(np.zeros((num_features,), np.float32)), name="moving_mean",
                                     requires_grad=False)
        self.moving_variance = Parameter(Tensor(np.ones((num_features,), np.float32)), name="moving_variance",
                                         requires_grad=False)

    def construct(self, x):
        n, c = x.shape[0], self.num_features
        if self.eval_input_stats and not self.training:
            return _row_normalize(x, n * c, self.eps, ops.tile(self.weight, (n,)), ops.tile(self.bias, (n,)))
        if self.training:
            out = _row_normalize(x, n * c, self.eps, ops.tile(self.weight, (n,)), ops.tile(self.bias, (n,)))
            rows = ops.stop_gradient(x).reshape(n, c, -1)
            m = rows.shape[2]
            mean = rows.mean(axis=2, keep_dims=True)
            var = ((rows - mean) * (rows - mean)).sum(axis=2) / float(max(m - 1, 1))
            return update_running_stats(self, out, mean.reshape(n, c).mean(axis=0), var.mean(axis=0))
        return running_stats_norm(self, x)


def update_running_stats(norm, out, mean, var):
    """`out`, once norm.moving_mean / moving_variance have moved towards the batch's per-channel mean and var
    by norm.momentum (PyTorch's convention). For TrackedInstanceNorm2d and the kernels' Cell replacing it."""
    k = norm.momentum
    out = ops.depend(out, ops.assign(norm.moving_mean, norm.moving_mean * (1.0 - k) + mean * k))
    return ops.depend(out, ops.assign(norm.moving_variance, norm.moving_variance * (1.0 - k) + var * k))


def running_stats_norm(norm, x):
    """Eval mode by the running statistics: the per-channel affine map of norm's weight, bias, moving_mean,
    moving_variance and eps."""
    scale = norm.weight / ops.sqrt(norm.moving_variance + norm.eps)
    shift = norm.bias - norm.moving_mean * scale
    return x * scale.reshape(1, -1, 1, 1) + shift.reshape(1, -1, 1, 1)


class LeakyReLU(nn.Cell):
    """PyTorch's `nn.LeakyReLU(slope)`: x > 0 ? x : slope * x, gradient slope at x <= 0.

    MindSpore's own (`maximum(slope * x, x)`) differentiates into compares, selects and a division over the
    whole activation, and more again at second order (the WGAN-GP critic); here x times a mask that carries
    no gradient, one multiplication per order of differentiation."""

    def __init__(self, alpha=0.2):
        super().__init__()
        self.alpha = float(alpha)

    def construct(self, x):
        return x * ops.stop_gradient(ops.select(x > 0, ops.ones_like(x), ops.full_like(x, self.alpha)))


class _LINMix(nn.Cell):
    """rho * instance_norm(x) + (1 - rho) * layer_norm(x), both with unbiased variance."""

    def __init__(self, eps):
        super().__init__()
        self.eps = eps

    def construct(self, x, rho):
        n, c = x.shape[0], x.shape[1]
        return rho * unbiased_norm(x, n * c, self.eps) + (1.0 - rho) * unbiased_norm(x, n, self.eps)


class AdaLIN(nn.Cell):
    """Adaptive Layer-Instance Normalisation (U-GAT-IT's adaILN / photo2cartoon's adaLIN); rho starts at 0.9."""

    def __init__(self, num_features, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.rho = Parameter(Tensor(np.full((1, num_features, 1, 1), 0.9, np.float32)), name="rho")
        self.mix = _LINMix(eps)

    def construct(self, x, gamma, beta):
        out = self.mix(x, self.rho)
        return out * gamma.expand_dims(2).expand_dims(3) + beta.expand_dims(2).expand_dims(3)


class LIN(nn.Cell):
    """Layer-Instance Normalisation with learned gamma/beta (U-GAT-IT's ILN); rho starts at 0."""

    def __init__(self, num_features, eps=1e-5):
        super().__init__()
        self.eps = eps
        shape = (1, num_features, 1, 1)
        self.rho = Parameter(Tensor(np.zeros(shape, np.float32)), name="rho")
        self.gamma = Parameter(Tensor(np.ones(shape, np.float32)), name="gamma")
        self.beta = Parameter(Tensor(np.zeros(shape, np.float32)), name="beta")
        self.mix = _LINMix(eps)

    def construct(self, x):
        return self.mix(x, self.rho) * self.gamma + self.beta


class SoftAdaLIN(nn.Cell):
    """photo2cartoon's Soft-AdaLIN: gamma/beta blended from content and style features by w_gamma/w_beta."""

    def __init__(self, num_features, eps=1e-5):
        super().__init__()
        self.norm = AdaLIN(num_features, eps)
        self.w_gamma = Parameter(Tensor(np.zeros((1, num_features), np.float32)), name="w_gamma")
        self.w_beta = Parameter(Tensor(np.zeros((1, num_features), np.float32)), name="w_beta")
        self.c_gamma = nn.SequentialCell([dense(num_features, num_features), nn.ReLU(),
                                          dense(num_features, num_features)])
        self.c_beta = nn.SequentialCell([dense(num_features, num_features), nn.ReLU(),
                                         dense(num_features, num_features)])
        self.s_gamma = dense(num_features, num_features)
        self.s_beta = dense(num_features, num_features)

    def construct(self, x, content_features, style_features):
        content_gamma = self.c_gamma(content_features)
        content_beta = self.c_beta(content_features)
        style_gamma = self.s_gamma(style_features)
        style_beta = self.s_beta(style_features)
        soft_gamma = (1.0 - self.w_gamma) * style_gamma + self.w_gamma * content_gamma
        soft_beta = (1.0 - self.w_beta) * style_beta + self.w_beta * content_beta
        return self.norm(x, soft_gamma, soft_beta)


class ReflectionPad2d(nn.Cell):
    """`nn.ReflectionPad2d(p)` with PyTorch's argument (an int pads all four sides)."""

    def __init__(self, padding):
        super().__init__()
        self.padding = padding
        self.pad = nn.Pad(((0, 0), (0, 0), (padding, padding), (padding, padding)), mode="REFLECT")

    def construct(self, x):
        return self.pad(x)


class UpsampleNearest2x(nn.Cell):
    """`nn.Upsample(scale_factor=2, mode='nearest')` as an exact broadcast + reshape (runs on every backend;
    MindSpore's own nearest upsampling refuses a scale factor on 4-D input)."""

    def construct(self, x):
        b, c, h, w = x.shape
        y = ops.broadcast_to(x.reshape(b, c, h, 1, w, 1), (b, c, h, 2, w, 2))
        return y.reshape(b, c, h * 2, w * 2)


class AvgPool2x2(nn.Cell):
    """`nn.AvgPool2d(2, 2)` (PyTorch's: no padding, an odd last row or column dropped)."""

    def __init__(self):
        super().__init__()
        self.pool = nn.AvgPool2d(kernel_size=2, stride=2)

    def construct(self, x):
        return self.pool(x)


def _l2_normalize(x, eps):
    # torch.nn.functional.normalize(x, dim=0, eps): x / max(||x||, eps)
    norm = ops.sqrt((x * x).sum())
    return x / ops.maximum(norm, eps)


class _SpectralNormed(nn.Cell):
    """The state and maths of `torch.nn.utils.spectral_norm` (one power iteration, eps 1e-12).

    Parameters carry the PyTorch names: `weight_orig` (trained), `weight_u`, `weight_v` (state, no grad).
    In training mode each call runs one power iteration and stores the new u, v; in eval mode the stored
    u, v are used as they are, exactly as PyTorch does.
    """

    def _init_sn(self, weight, eps=1e-12, seed=0):
        self.weight_orig = Parameter(weight, name="weight_orig")
        shape = self.weight_orig.shape
        self.sn_out = int(shape[0])
        rng = np.random.default_rng(seed)
        u = rng.standard_normal(self.sn_out).astype(np.float32)
        v = rng.standard_normal(int(np.prod(shape[1:]))).astype(np.float32)
        u /= max(np.linalg.norm(u), eps)
        v /= max(np.linalg.norm(v), eps)
        self.weight_u = Parameter(Tensor(u), name="weight_u", requires_grad=False)
        self.weight_v = Parameter(Tensor(v), name="weight_v", requires_grad=False)
        self.sn_eps = eps

    def sn_sigma(self):
        """The weight's spectral norm estimate sigma (in training mode after one power iteration)."""
        w_mat = self.weight_orig.reshape(self.sn_out, -1)
        u = self.weight_u
        v = self.weight_v
        if self.training:
            w_nograd = ops.stop_gradient(w_mat)
            v = _l2_normalize(ops.matmul(u, w_nograd), self.sn_eps)
            u = _l2_normalize(ops.matmul(w_nograd, v), self.sn_eps)
            u = ops.depend(u, ops.assign(self.weight_u, u))
            v = ops.depend(v, ops.assign(self.weight_v, v))
            u = ops.stop_gradient(u)
            v = ops.stop_gradient(v)
        return (u * ops.matmul(w_mat, v)).sum()

    def sn_weight(self):
        return self.weight_orig / self.sn_sigma()


class SNConv2d(_SpectralNormed):
    """`spectral_norm(nn.Conv2d(...))` with the keys `weight_orig`, `weight_u`, `weight_v`, `bias`."""

    def __init__(self, in_ch, out_ch, kernel_size, stride=1, padding=0, bias=True, weight_init=None):
        super().__init__()
        ref = conv2d(in_ch, out_ch, kernel_size, stride, padding, bias) if weight_init is None else \
            Conv2d(in_ch, out_ch, kernel_size, stride, padding, bias, weight_init=weight_init)
        self._init_sn(Tensor(ref.weight.data.asnumpy()))
        self.has_bias = bias
        if bias:
            self.bias = Parameter(Tensor(ref.bias.data.asnumpy()), name="bias")
        self.conv = ops.Conv2D(out_channel=out_ch, kernel_size=kernel_size, mode=1, pad_mode="pad",
                               pad=padding, stride=stride)
        self.bias_add = ops.BiasAdd()
        self.geometry = (in_ch, out_ch, kernel_size, stride, padding)

    def divide_output(self, x):
        """conv(x, W / sigma) + b = conv(x, W) / sigma + b: the division (and, in training, its gradient: a
        product, a sum and a division) goes to the smaller of the weight and the output. In deep
        discriminator layers the weight is up to 170 times the output (U-GAT-IT's 512 -> 1024 4x4 at 7 x 7
        px: 8.4 M values against 50 k); in the first layers it is the other way round. Shapes are constants
        in graph mode, so the choice is made when the graph is compiled."""
        stride = self.geometry[3]
        n_out = x.shape[0] * self.sn_out * (x.shape[2] // stride) * (x.shape[3] // stride)
        return n_out < self.weight_orig.size

    def construct(self, x):
        sigma = self.sn_sigma()
        if self.divide_output(x):
            y = self.conv(x, self.weight_orig) / sigma
        else:
            y = self.conv(x, self.weight_orig / sigma)
        if self.has_bias:
            y = self.bias_add(y, self.bias)
        return y


class SNDense(_SpectralNormed):
    """`spectral_norm(nn.Linear(...))` with the keys `weight_orig`, `weight_u`, `weight_v` (and `bias`)."""

    def __init__(self, in_ch, out_ch, bias=True):
        super().__init__()
        ref = dense(in_ch, out_ch, bias)
        self._init_sn(Tensor(ref.weight.data.asnumpy()))
        self.has_bias = bias
        if bias:
            self.bias = Parameter(Tensor(ref.bias.data.asnumpy()), name="bias")

    def construct(self, x):
        y = ops.matmul(x, self.sn_weight().T)
        if self.has_bias:
            y = y + self.bias
        return y


def cam_attention(x, gap_fc, gmp_fc, gap_raw_w, gmp_raw_w):
    """Class-activation-map attention of U-GAT-IT (generator and discriminator share the maths).

    `gap_fc`/`gmp_fc` give the logits (through spectral norm in the discriminator); the feature map is
    multiplied by the *raw* weights `gap_raw_w`/`gmp_raw_w` (`weight`, or `weight_orig` under spectral
    norm), as the published code does with `list(fc.parameters())[0]`.
    Returns (concat of the two re-weighted maps, concat of the two logits).
    """
    b = x.shape[0]
    gap_logit = gap_fc(x.mean(axis=(2, 3)).reshape(b, -1))
    gmp_logit = gmp_fc(ops.amax(x, (2, 3)).reshape(b, -1))
    gap_x = x * gap_raw_w.reshape(1, -1, 1, 1)
    gmp_x = x * gmp_raw_w.reshape(1, -1, 1, 1)
    return ops.concat((gap_x, gmp_x), 1), ops.concat((gap_logit, gmp_logit), 1)
