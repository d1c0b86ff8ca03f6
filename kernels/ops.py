"""The CPU kernels as MindSpore Custom ops (func_type="aot"), and the path rules of the C++ side.

Every op carries its bprop written with ops of this module, so first- and second-order gradients work in
GRAPH_MODE (the WGAN-GP critic keeps the convolutions, leaky ReLU, padding and pooling):
  y  = fwd(x, w, b)      dx = dgrad(dy, w), dw = wgrad(dy, x), db = bias_grad(dy) = sum dy
  dw = wgrad(dy, x)      d dy = fwd(x, G, 0), d x = dgrad(dy, G)
  dx = dgrad(dy, w)      d dy = fwd(G, w, 0), d w = wgrad(dy, G)
(all with the layer's padding and stride; dgrad is the adjoint of fwd in x, wgrad in w.) The norms' backward
kernels have no gradient of their own: a network differentiated twice keeps MindSpore's norms
(`kernels.accelerate(net, second_order=True)`).
Integer settings (padding + 1, stride, upsampling factor) travel as the *lengths* of int32 arguments:
see `_shape_arg`.

Which convolutions the kernels take, and by which path, is decided in one place, the C++ source
(csrc/conv.cc: ConvSupported, use_gemm; csrc/winograd.cc: use_winograd); `conv_supported`, `picks_gemm`
and `picks_winograd` ask it through ctypes.
"""
import ctypes
import glob
import os

import mindspore as ms
import numpy as np
from mindspore import ops

from . import build

_state = {}
_ops = {}
_SGEMM_NAMES = ("scipy_cblas_sgemm64_", "cblas_sgemm64_", "cblas_sgemm")


def _lib():
    path = build.library()
    if path is None:
        raise RuntimeError(f"the CPU kernels are not available: {build.why_not()}")
    return path


def blas_library():
    """The BLAS the convolution kernels use for large fan-in (im2col + SGEMM) and Winograd, or None:
    $FACEGAN_BLAS_LIB if set (then only it), else the OpenBLAS inside NumPy's wheel (numpy.libs/). It must
    export an SGEMM and `openblas_set_num_threads_local` (OpenBLAS >= 0.3.27), so that each call runs on one
    of the kernels' own threads. The C++ side reads the path from FACEGAN_BLAS_LIB (once, at its first
    use), which this sets: call it before the first kernel runs."""
    if "blas" in _state:
        return _state["blas"]
    _state["blas"] = None
    if os.environ.get("FACEGAN_BLAS_LIB"):
        cands = [os.environ["FACEGAN_BLAS_LIB"]]   # the user's choice, and only it
    else:
        np_dir, cands = os.path.dirname(np.__file__), []
        for d in (os.path.join(os.path.dirname(np_dir), "numpy.libs"), os.path.join(np_dir, ".libs")):
            cands += sorted(glob.glob(os.path.join(d, "lib*openblas*.so*")))
    for path in cands:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        if hasattr(lib, "openblas_set_num_threads_local") and any(hasattr(lib, n) for n in _SGEMM_NAMES):
            os.environ["FACEGAN_BLAS_LIB"] = path
            _state["blas"] = path
            break
    return _state["blas"]


def gemm_enabled():
    """True when the kernels can take the im2col + SGEMM path; FACEGAN_NATIVE_GEMM=0 turns it off."""
    return os.environ.get("FACEGAN_NATIVE_GEMM", "") != "0" and blas_library() is not None


def _ask_rule(name, *args):
    """Call one of the library's path rules (an `extern "C"` function of int64 arguments returning 0 / 1)."""
    blas_library()
    fn = getattr(ctypes.CDLL(_lib()), name)
    fn.argtypes = [ctypes.c_int64] * len(args)
    return bool(fn(*args))


def conv_supported(in_ch, k, stride, padding):
    """Whether the kernels take a k x k convolution with `in_ch` inputs, `stride` and zero `padding`."""
    return _ask_rule("ConvSupported", in_ch, k, stride, padding)


def conv_transpose_supported(k, stride, padding, output_padding):
    return _ask_rule("ConvTransposeSupported", k, stride, padding, output_padding)


def picks_gemm(in_ch, out_ch, k, stride=1, part="forward", out_pixels=64 * 64):
    """Whether the kernels take the SGEMM path for one part ("forward", "weight" or "input" gradient) of a
    convolution in_ch -> out_ch (k x k, `stride`), given that part's output pixels per sample (for the input
    gradient: the input's pixels). False when there is no BLAS."""
    if blas_library() is None:
        return False
    parts = {"forward": 0, "weight": 1, "input": 2}
    fan_in, outs = (out_ch * k * k, in_ch) if part == "input" else (in_ch * k * k, out_ch)
    return _ask_rule("ConvUsesGemm", fan_in, outs, k, stride, out_pixels, parts[part])


def picks_winograd(in_ch, out_ch, k, stride=1, part="forward", out_pixels=64 * 64):
    """Whether the kernels run one part of a convolution in_ch -> out_ch by Winograd F(4x4, 3x3), given that
    part's output pixels per sample (for the input gradient: the input's pixels; it is the forward on dy,
    in_ch and out_ch swapped). False when there is no BLAS."""
    if blas_library() is None:
        return False
    c, o = (out_ch, in_ch) if part == "input" else (in_ch, out_ch)
    return _ask_rule("ConvUsesWinograd", c, o, k, stride, out_pixels)


def _custom(name, out_shape, bprop):
    def out_dtype(*types):
        return types[0]
    return ops.Custom(f"{_lib()}:{name}", out_shape=out_shape, out_dtype=out_dtype, func_type="aot",
                      bprop=bprop)


def _shape_arg(n):
    """An integer setting (padding + 1, stride, upsampling factor) as a *shape*: an int32 tensor of length n.
    Shape inference sees only shapes, and Custom ops that differ only in a Python closure (their out_shape)
    are merged by graph mode's second-order differentiation (seen: an input gradient inferred with the
    other op's padding), so such settings travel with the arguments."""
    return ms.Tensor(np.zeros(n, np.int32))


def _fwd_shape(xs, ws, bs, ps, ss):
    pad, stride, k = ps[0] - 1, ss[0], ws[2]
    return (xs[0], ws[0], (xs[2] + 2 * pad - k) // stride + 1, (xs[3] + 2 * pad - k) // stride + 1)


def _wgrad_shape(dys, xs, ws, ps, ss):
    return ws


def _dgrad_shape(dys, ws, xs, ps, ss):
    return xs


def _bprop_fwd(x, w, b, pad, stride, out, dout):
    return (_ops["dgrad"](dout, w, x, pad, stride), _ops["wgrad"](dout, x, w, pad, stride), _ops["bias_grad"](dout),
            ops.zeros_like(pad), ops.zeros_like(stride))


def _bprop_wgrad(dy, x, w, pad, stride, out, dout):
    d_dy = _ops["fwd"](x, dout, ops.zeros((dout.shape[0],), dout.dtype), pad, stride)
    return d_dy, _ops["dgrad"](dy, dout, x, pad, stride), ops.zeros_like(w), ops.zeros_like(pad), ops.zeros_like(stride)


def _bprop_dgrad(dy, w, x, pad, stride, out, dout):
    d_dy = _ops["fwd"](dout, w, ops.zeros((w.shape[0],), w.dtype), pad, stride)
    return d_dy, _ops["wgrad"](dy, dout, w, pad, stride), ops.zeros_like(x), ops.zeros_like(pad), ops.zeros_like(stride)


def _bprop_bias_grad(dy, out, dout):
    return (ops.broadcast_to(dout.reshape((1, -1, 1, 1)), dy.shape),)


def conv_op(k, pad, stride=1):
    """The op y = conv(x, w) + b (kernel k x k, zero padding `pad`, `stride`) and its two shape arguments:
    call it as op(x, w, b, pad_arg, stride_arg)."""
    if "fwd" not in _ops:
        _ops["fwd"] = _custom("Conv2dFwd", _fwd_shape, _bprop_fwd)
        _ops["wgrad"] = _custom("Conv2dWgrad", _wgrad_shape, _bprop_wgrad)
        _ops["dgrad"] = _custom("Conv2dDgrad", _dgrad_shape, _bprop_dgrad)
        _ops["bias_grad"] = _custom("BiasGrad", lambda dys: (dys[1],), _bprop_bias_grad)
    return _ops["fwd"], _shape_arg(pad + 1), _shape_arg(stride)


def _convt_shape(xs, ws, bs, ps, ss, ops_):
    pad, stride, k, outpad = ps[0] - 1, ss[0], ws[2], ops_[0] - 1
    return (xs[0], ws[1], (xs[2] - 1) * stride - 2 * pad + k + outpad, (xs[3] - 1) * stride - 2 * pad + k + outpad)


def _bprop_convt(x, w, b, pad, stride, outpad, out, dout):
    # y = dgrad(x, w) of the convolution with this geometry (+ b), so: d x = fwd(G, w), d w = wgrad(x, G)
    dx = _ops["fwd"](dout, w, ops.zeros((w.shape[0],), w.dtype), pad, stride)
    return (dx, _ops["wgrad"](x, dout, w, pad, stride), _ops["bias_grad"](dout), ops.zeros_like(pad),
            ops.zeros_like(stride), ops.zeros_like(outpad))


def conv_transpose_op(k, pad, stride, output_padding):
    """The op y = conv_transpose(x, w) + b with PyTorch's ConvTranspose2d semantics (w: (in, out, k, k)) and
    its three shape arguments: call it as op(x, w, b, pad_arg, stride_arg, outpad_arg)."""
    conv_op(k, pad, stride)   # the ops its gradient uses
    if "convt" not in _ops:
        _ops["convt"] = _custom("ConvTransposeFwd", _convt_shape, _bprop_convt)
    return _ops["convt"], _shape_arg(pad + 1), _shape_arg(stride), _shape_arg(output_padding + 1)


def row_norm_op():
    """The op y = row_norm(x, cfg) with cfg = row_norm_cfg(...): see RowNormFwd in the C++ source."""
    if "row_norm" in _ops:
        return _ops["row_norm"]

    def same_shape(xs, *rest):
        return xs

    bwd = _custom("RowNormBwd", same_shape, None)

    def bprop(x, cfg, out, dout):
        return bwd(x, dout, cfg), ops.zeros_like(cfg)

    _ops["row_norm"] = _custom("RowNormFwd", same_shape, bprop)
    return _ops["row_norm"]


def row_norm_cfg(eps, unbiased, layer):
    """Config tensor for row_norm_op: variance eps, unbiased (torch.var) or biased, layer or instance rows."""
    return ms.Tensor(np.array([eps, 1.0 if unbiased else 0.0, 1.0 if layer else 0.0], np.float32))


def lin_mix_op():
    """The op y = gamma * (rho * IN(x) + (1 - rho) * LN(x)) + beta with unbiased variances (adaLIN / LIN), called
    as op(x, rho, gamma, beta, cfg) with cfg = lin_mix_cfg(eps): see LinMixFwd in the C++ source. Its backward
    returns the gradients of x, rho, gamma and beta from one kernel; it has no gradient of its own."""
    if "lin_mix" in _ops:
        return _ops["lin_mix"]

    def grad_shapes(xs, dys, rs, gs, cs):
        return xs, rs, gs, gs

    def grad_types(*types):
        return types[0], types[0], types[0], types[0]

    bwd = ops.Custom(f"{_lib()}:LinMixBwd", out_shape=grad_shapes, out_dtype=grad_types, func_type="aot")

    def bprop(x, rho, gamma, beta, cfg, out, dout):
        dx, drho, dgamma, dbeta = bwd(x, dout, rho, gamma, cfg)
        return dx, drho, dgamma, dbeta, ops.zeros_like(cfg)

    _ops["lin_mix"] = _custom("LinMixFwd", lambda xs, *rest: xs, bprop)
    return _ops["lin_mix"]


def lin_mix_cfg(eps, unbiased=True):
    """Config tensor for lin_mix_op: eps, and whether the instance variance is unbiased (adaLIN / LIN) or biased
    (InstanceNorm2d's: with rho = 1 the op is an affine instance norm)."""
    return ms.Tensor(np.array([eps, 1.0 if unbiased else 0.0], np.float32))


def row_stats_op():
    """The op s = row_stats(x): each (sample, channel) row's mean and unbiased variance, shape (N*C, 2); see
    RowStats in the C++ source. No gradient: call it on a stopped input."""
    if "row_stats" not in _ops:
        _ops["row_stats"] = _custom("RowStats", lambda xs: (xs[0] * xs[1], 2), None)
    return _ops["row_stats"]


def _padup_shape(xs, ps, us):
    pad, up = ps[0] - 1, us[0]
    return (xs[0], xs[1], up * xs[2] + 2 * pad, up * xs[3] + 2 * pad)


def _padup_grad_shape(dys, xs, ps, us):
    return xs


def _bprop_padup(x, pad, up, out, dout):
    return _ops["padup_grad"](dout, x, pad, up), ops.zeros_like(pad), ops.zeros_like(up)


def _bprop_padup_grad(dy, x, pad, up, out, dout):
    return _ops["padup"](dout, pad, up), ops.zeros_like(x), ops.zeros_like(pad), ops.zeros_like(up)


def pad_up_op(pad, up):
    """The op y = reflection_pad(upsample_nearest(x, up), pad) (up 1 or 2) and its two shape arguments:
    call it as op(x, pad_arg, up_arg)."""
    if "padup" not in _ops:
        _ops["padup"] = _custom("PadUp", _padup_shape, _bprop_padup)
        _ops["padup_grad"] = _custom("PadUpGrad", _padup_grad_shape, _bprop_padup_grad)
    return _ops["padup"], _shape_arg(pad + 1), _shape_arg(up)


def _pool2_shape(xs):
    return (xs[0], xs[1], xs[2] // 2, xs[3] // 2)


def _bprop_pool2(x, out, dout):
    return (_ops["pool2_grad"](dout, x),)


def _bprop_pool2_grad(dy, x, out, dout):
    return _ops["pool2"](dout), ops.zeros_like(x)


def avg_pool2_op():
    """The op y = avg_pool(x, kernel 2, stride 2) (PyTorch's AvgPool2d(2, 2): an odd last row or column is
    dropped); call it as op(x). Its gradient (dy / 4 to each source) has a gradient too (the pool of it)."""
    if "pool2" not in _ops:
        _ops["pool2"] = _custom("AvgPool2", _pool2_shape, _bprop_pool2)
        _ops["pool2_grad"] = _custom("AvgPool2Grad", lambda dys, xs: xs, _bprop_pool2_grad)
    return _ops["pool2"]


def _norm_act_pad_shape(xs, cs, ps):
    pad = ps[0] - 1
    return (xs[0], xs[1], xs[2] + 2 * pad, xs[3] + 2 * pad)


def norm_act_pad_op(pad):
    """The op y = reflection_pad(act(instance_norm(x)), pad) and its shape argument: call it as
    op(x, cfg, pad_arg) with cfg = norm_act_pad_cfg(...) (NormActPadFwd in the C++ source). Its backward is
    one kernel (fold, ReLU mask, norm gradient) and has no gradient of its own."""
    if "norm_act_pad" not in _ops:
        bwd = _custom("NormActPadBwd", lambda xs, *rest: xs, None)

        def bprop(x, cfg, pad_arg, out, dout):
            return bwd(x, out, dout, cfg, pad_arg), ops.zeros_like(cfg), ops.zeros_like(pad_arg)

        _ops["norm_act_pad"] = _custom("NormActPadFwd", _norm_act_pad_shape, bprop)
    return _ops["norm_act_pad"], _shape_arg(pad + 1)


def norm_act_pad_cfg(eps, relu=True):
    """Config tensor for norm_act_pad_op: variance eps (biased, as InstanceNorm2d), ReLU or none."""
    return ms.Tensor(np.array([eps, 0.0, 1.0 if relu else 0.0], np.float32))


def conv_block_op():
    """photo2cartoon's hourglass unit (models.ugatit.ConvBlock with dim_in == dim_out) as one op: call it as
    op(x, w1, w2, w3, cfg) with cfg = norm_act_pad_cfg(eps); it returns (out, cat), cat = the concatenation
    of the three convolutions' outputs, which only its backward reads: cat's own gradient is not taken, so
    use out alone (ConvBlockFwd in the C++ source). The backward is one kernel with no gradient of its own."""
    if "conv_block" not in _ops:
        def grad_shapes(xs, cs, dys, w1s, w2s, w3s, cfgs):
            return xs, w1s, w2s, w3s

        bwd = ops.Custom(f"{_lib()}:ConvBlockBwd", out_shape=grad_shapes,
                         out_dtype=lambda *types: (types[0],) * 4, func_type="aot")

        def bprop(x, w1, w2, w3, cfg, out, dout):
            dx, dw1, dw2, dw3 = bwd(x, out[1], dout[0], w1, w2, w3, cfg)
            return dx, dw1, dw2, dw3, ops.zeros_like(cfg)

        _ops["conv_block"] = ops.Custom(f"{_lib()}:ConvBlockFwd", out_shape=lambda xs, *rest: (xs, xs),
                                        out_dtype=lambda *types: (types[0], types[0]), func_type="aot",
                                        bprop=bprop)
    return _ops["conv_block"]


def _bprop_leaky(x, cfg, out, dout):
    return _ops["leaky_grad"](x, dout, cfg), ops.zeros_like(cfg)


def _bprop_leaky_grad(x, dy, cfg, out, dout):
    # dx = slope(x) * dy is linear in dy and piecewise constant in x
    return ops.zeros_like(x), _ops["leaky_grad"](x, dout, cfg), ops.zeros_like(cfg)


def leaky_relu_op():
    """The op y = leaky_relu(x) (PyTorch's: x > 0 ? x : slope * x), called as op(x, cfg) with
    cfg = leaky_relu_cfg(slope). Its gradient op has a gradient of its own (the same op), so it composes to
    second order."""
    if "leaky" not in _ops:
        _ops["leaky_grad"] = _custom("LeakyReluGrad", lambda xs, *rest: xs, _bprop_leaky_grad)
        _ops["leaky"] = _custom("LeakyRelu", lambda xs, *rest: xs, _bprop_leaky)
    return _ops["leaky"]


def leaky_relu_cfg(slope):
    return ms.Tensor(np.array([slope], np.float32))
