"""Cells that run the CPU kernels, each made from the portable Cell it replaces (models/layers.py).

A native Cell takes over the portable Cell's Parameter objects (same names, same values, same checkpoint
keys) and computes the same function to float rounding (tests/test_kernels.py). They are built only by the
pass in kernels/passes.py, never by a network definition. `auto_prefix=False`: the Cells they hold keep the
parameter names they already have.
"""
import numpy as np
from mindspore import Tensor, nn, ops

from models.layers import running_stats_norm, update_running_stats

from . import ops as kops


class NativeConv2d(nn.Cell):
    """layers.Conv2d on the kernels: y = conv(x, w) + b."""
    second_order = True

    def __init__(self, conv):
        super().__init__(auto_prefix=False)
        cin, cout, k, stride, padding = conv.geometry
        self.weight = conv.weight
        self.has_bias = conv.has_bias
        self.bias = conv.bias if conv.has_bias else Tensor(np.zeros(cout, np.float32))
        self.op, self.pad_arg, self.stride_arg = kops.conv_op(k, padding, stride)

    def construct(self, x):
        return self.op(x, self.weight, self.bias, self.pad_arg, self.stride_arg)


class NativeSNConv2d(nn.Cell):
    """layers.SNConv2d on the kernels: the same spectral norm state and power iteration (the portable Cell's
    `sn_sigma`, kept as a child), the same choice of where sigma divides."""
    second_order = True

    def __init__(self, sn):
        super().__init__(auto_prefix=False)
        cin, cout, k, stride, padding = sn.geometry
        self.sn = sn
        self.has_bias = sn.has_bias
        self.zero_bias = Tensor(np.zeros(cout, np.float32))
        self.bias_add = ops.BiasAdd()
        self.op, self.pad_arg, self.stride_arg = kops.conv_op(k, padding, stride)

    def construct(self, x):
        sn = self.sn
        sigma = sn.sn_sigma()
        if sn.divide_output(x):
            y = self.op(x, sn.weight_orig, self.zero_bias, self.pad_arg, self.stride_arg) / sigma
            if self.has_bias:
                y = self.bias_add(y, sn.bias)
            return y
        b = sn.bias if self.has_bias else self.zero_bias
        return self.op(x, sn.weight_orig / sigma, b, self.pad_arg, self.stride_arg)


class NativeConvTranspose2d(nn.Cell):
    """layers.ConvTranspose2d on the kernels (PyTorch's semantics, weight (in, out, k, k))."""
    second_order = True

    def __init__(self, convt):
        super().__init__(auto_prefix=False)
        cin, cout, k, stride, padding, output_padding = convt.geometry
        self.weight = convt.weight
        self.bias = convt.bias if convt.has_bias else Tensor(np.zeros(cout, np.float32))
        self.op, self.pad_arg, self.stride_arg, self.outpad_arg = kops.conv_transpose_op(k, padding, stride,
                                                                                         output_padding)

    def construct(self, x):
        return self.op(x, self.weight, self.bias, self.pad_arg, self.stride_arg, self.outpad_arg)


class NativeInstanceNorm2d(nn.Cell):
    """layers.InstanceNorm2d: one kernel per direction for the norm (two passes over memory forward, three
    backward), the affine (when there is one) as a multiply-add."""
    second_order = False

    def __init__(self, norm):
        super().__init__(auto_prefix=False)
        self.affine = norm.affine
        if norm.affine:
            self.weight, self.bias = norm.weight, norm.bias
        self.op = kops.row_norm_op()
        self.cfg = kops.row_norm_cfg(norm.eps, unbiased=False, layer=False)

    def construct(self, x):
        out = self.op(x, self.cfg)
        if self.affine:
            out = out * self.weight.reshape(1, -1, 1, 1) + self.bias.reshape(1, -1, 1, 1)
        return out


class NativeLeakyReLU(nn.Cell):
    """layers.LeakyReLU: one kernel per direction, whose gradient differentiates again."""
    second_order = True

    def __init__(self, act):
        super().__init__(auto_prefix=False)
        self.op = kops.leaky_relu_op()
        self.cfg = kops.leaky_relu_cfg(act.alpha)

    def construct(self, x):
        return self.op(x, self.cfg)


class NativePadUp(nn.Cell):
    """layers.ReflectionPad2d (up 1) or layers.UpsampleNearest2x (pad 0): one kernel."""
    second_order = True

    def __init__(self, pad, up):
        super().__init__(auto_prefix=False)
        self.op, self.pad_arg, self.up_arg = kops.pad_up_op(pad, up)

    def construct(self, x):
        return self.op(x, self.pad_arg, self.up_arg)


class NativeAvgPool2x2(nn.Cell):
    """layers.AvgPool2x2: one kernel per direction."""
    second_order = True

    def __init__(self, pool=None):
        super().__init__(auto_prefix=False)
        self.op = kops.avg_pool2_op()

    def construct(self, x):
        return self.op(x)


class NativeLINMix(nn.Cell):
    """layers.AdaLIN or layers.LIN: statistics, mixing, affine and all four gradients in one kernel per
    direction. AdaLIN takes gamma and beta as inputs; LIN has them as parameters."""
    second_order = False

    def __init__(self, norm, adaptive):
        super().__init__(auto_prefix=False)
        self.adaptive = adaptive
        self.rho = norm.rho
        if not adaptive:
            self.gamma, self.beta = norm.gamma, norm.beta
        self.op = kops.lin_mix_op()
        self.cfg = kops.lin_mix_cfg(norm.eps)

    def construct(self, x, gamma=None, beta=None):
        if self.adaptive:
            return self.op(x, self.rho, gamma, beta, self.cfg)
        return self.op(x, self.rho, self.gamma, self.beta, self.cfg)


class NativeTrackedInstanceNorm2d(nn.Cell):
    """layers.TrackedInstanceNorm2d (StarGAN's norm). Training mode, and eval mode with `eval_input_stats`: the
    affine instance norm and its gradients in one kernel per direction (the LIN kernel with rho = 1 and the
    biased variance), plus, in training, the running statistics from one more kernel reading the (stopped)
    input once. Eval mode otherwise: the running statistics' per-channel affine map, as the portable Cell."""
    second_order = False

    def __init__(self, norm):
        super().__init__(auto_prefix=False)
        self.weight, self.bias = norm.weight, norm.bias
        self.moving_mean, self.moving_variance = norm.moving_mean, norm.moving_variance
        self.eps, self.momentum, self.num_features = norm.eps, norm.momentum, norm.num_features
        self.eval_input_stats = norm.eval_input_stats
        self.ones = Tensor(np.ones(norm.num_features, np.float32))
        self.op, self.stats = kops.lin_mix_op(), kops.row_stats_op()
        self.cfg = kops.lin_mix_cfg(norm.eps, unbiased=False)

    def construct(self, x):
        if self.training or self.eval_input_stats:
            out = self.op(x, self.ones, self.weight, self.bias, self.cfg)
            if not self.training:
                return out
            st = self.stats(ops.stop_gradient(x)).reshape(x.shape[0], self.num_features, 2).mean(axis=0)
            return update_running_stats(self, out, st[:, 0], st[:, 1])
        return running_stats_norm(self, x)


class NormReLUPad(nn.Cell):
    """InstanceNorm2d (no affine) -> ReLU -> ReflectionPad2d(padding) (0: none) as one kernel per direction.
    Stands in a SequentialCell where the first of the three was; the others become Identity there."""
    second_order = False

    def __init__(self, eps, padding):
        super().__init__(auto_prefix=False)
        self.padding = padding
        self.op, self.pad_arg = kops.norm_act_pad_op(padding)
        self.cfg = kops.norm_act_pad_cfg(eps)

    def construct(self, x):
        return self.op(x, self.cfg, self.pad_arg)


class NativeConvBlock(nn.Cell):
    """photo2cartoon's hourglass unit (models.ugatit.ConvBlock, dim_in == dim_out) as one op per direction:
    the same kernels in the same order as its separate layers, so the same values. Keeps the block's four
    SequentialCells as children, for their parameters (ConvBlock4, the projection, is unused here as in
    the original)."""
    second_order = False

    def __init__(self, block):
        super().__init__(auto_prefix=False)
        self.ConvBlock1, self.ConvBlock2 = block.ConvBlock1, block.ConvBlock2
        self.ConvBlock3, self.ConvBlock4 = block.ConvBlock3, block.ConvBlock4
        self.w1, self.w2, self.w3 = (block.ConvBlock1[3].weight, block.ConvBlock2[3].weight,
                                     block.ConvBlock3[3].weight)
        self.op = kops.conv_block_op()
        self.cfg = kops.norm_act_pad_cfg(block.ConvBlock1[0].eps)

    def construct(self, x):
        return self.op(x, self.w1, self.w2, self.w3, self.cfg)[0]
