"""The CPU kernels (kernels/) against MindSpore's own ops and PyTorch, and the pass that puts them in.

Table-driven: each convolution row runs the native layer and a plain nn.Conv2d with the same weights, in
GRAPH_MODE and PYNATIVE_MODE, on every path that covers it (direct, SGEMM, Winograd), and compares the output
and the gradients of a non-linear loss with respect to input, weight and bias; the second-order gradient
(WGAN-GP's) is compared the same way. Norms are compared with PyTorch in float64, including rows with a large
mean and a tiny spread. Which path a shape takes (the speed policy) is bench/kernel_rules.py's business.
"""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

import mindspore as ms
from mindspore import nn, ops

import kernels
from kernels import build, cells as kcells, ops as kops
from models.layers import (AdaLIN, LIN, AvgPool2x2, Conv2d, ConvTranspose2d, InstanceNorm2d, LeakyReLU,
                           ReflectionPad2d, TrackedInstanceNorm2d, UpsampleNearest2x, unbiased_norm)
from tests.helpers import ROOT

# Skipped only where the kernels cannot exist (no compiler) or are switched off: a compile error must fail
# these tests, not skip them.
pytestmark = pytest.mark.skipif(
    os.environ.get("FACEGAN_NATIVE") == "0" or not (os.environ.get("CXX") or shutil.which("g++")),
    reason="no C++ compiler, or FACEGAN_NATIVE=0")


def test_kernels_build_and_are_enabled():
    assert kernels.enabled(), kernels.why_not()


def native_of(layer, second_order=False):
    """`layer` as the pass makes it (the native Cell taking its parameters), or the layer itself if no kernel
    takes it."""
    seq = nn.SequentialCell([layer])
    kernels.accelerate(seq, second_order)
    return seq[0]


# (in, out, kernel, zero padding, input (N, H, W), bias)
CONV_ROWS = [
    (3, 8, 7, 0, (2, 20, 23), True),
    (8, 5, 3, 1, (2, 17, 20), False),
    (6, 4, 1, 0, (1, 9, 12), True),
    (20, 24, 1, 0, (2, 40, 70), False),  # 1x1 SGEMM in place: two pixel blocks per sample, the second short
    (5, 3, 4, 1, (2, 12, 15), True),
    (16, 9, 3, 2, (1, 33, 40), True),
    (40, 16, 3, 1, (1, 8, 70), False),   # more input channels than one block; rows past 64 pixels
    (8, 5, 3, 1, (2, 96, 90), True),     # partial weight gradients: 5 row blocks (direct), 2 pixel blocks (GEMM)
    (64, 6, 4, 2, (2, 9, 11), True),     # GEMM: weight gradient blocked by unrolled rows, several blocks
    (12, 10, 3, 1, (2, 10, 64), False),  # rows of whole vectors: weight gradient without the dy copy;
    (4, 8, 3, 0, (1, 6, 34), False),     # forward: 8 + 2 outputs, one 8-output block
    # weight gradient blocked over >= 2048 output pixels: 32 + 1 outputs (32-output tiles), 16-output
    # tiles with the last block of (c, kh) rows padded, 7x7 and 4x4 taps
    (20, 33, 3, 1, (1, 50, 64), True),
    (7, 17, 3, 0, (2, 48, 50), False),
    (3, 12, 7, 3, (1, 64, 40), True),
    (5, 20, 4, 1, (1, 50, 50), False),
    # strides above 1 (a 7th entry): the forward and the input gradient by phases on the direct kernel,
    # the weight gradient on it from 9 outputs over >= 2048 output pixels; the rest, and kernels without a
    # direct kernel, on SGEMM
    (3, 8, 4, 1, (2, 16, 18), True, 2),    # PatchGAN / U-GAT-IT discriminator layer
    (16, 12, 3, 1, (1, 17, 15), False, 2),  # CycleGAN downsampling, odd sizes; input gradient in 4 blocks
    (6, 5, 4, 0, (1, 11, 13), True, 2),
    (4, 6, 3, 2, (2, 13, 14), True, 3),
    (3, 12, 4, 1, (1, 96, 100), True, 2),   # blocked weight gradient, 16-output tiles
    (5, 20, 3, 1, (1, 100, 89), False, 2),  # 3x3: phases of 2x2, 2x1, 1x2 and 1x1 taps; odd width
    (4, 33, 4, 0, (1, 98, 99), True, 2),    # 32-output tiles and one more output
    (5, 4, 5, 2, (1, 10, 9), True, 1),
    # a deep discriminator layer at batch 1: the SGEMM forward splits its few pixels' outputs into blocks of
    # 32, 32 and 16; the input gradient into >= 128 channels takes SGEMM too
    (128, 80, 4, 1, (1, 9, 8), True),
    # Winograd: 64 tile rows of 16 tiles in two chunks (the weight gradient summed over both)
    (32, 32, 3, 1, (2, 128, 64), True),
    # SGEMM with samples folded side by side (fewer than 256 output pixels each): 110 pixels, groups of 5
    # and 2 samples; a 1x1 convolution, one group of 3
    (24, 40, 4, 1, (7, 20, 22), True, 2),
    (16, 24, 1, 0, (3, 9, 10), True),
]


def _row_id(r):
    return f"{r[0]}-{r[1]}k{r[2]}p{r[3]}" + (f"s{r[6]}" if len(r) > 6 else "") + f"-{r[4][1]}x{r[4][2]}"


# Each row runs on every path of the kernels that covers it (the C++ side reads FACEGAN_NATIVE_GEMM and
# FACEGAN_NATIVE_WINOGRAD at every call): direct, im2col + SGEMM, and for 3x3 at stride 1 Winograd.
PATHS = {"direct": {"FACEGAN_NATIVE_GEMM": "0", "FACEGAN_NATIVE_WINOGRAD": "0"},
         "gemm": {"FACEGAN_NATIVE_GEMM": "1", "FACEGAN_NATIVE_WINOGRAD": "0"},
         "winograd": {"FACEGAN_NATIVE_WINOGRAD": "1"}}


def _stride(row):
    return row[6] if len(row) > 6 else 1


def _gemm_only(row):
    k, stride = row[2], _stride(row)
    return k < stride if stride > 1 else k not in (1, 3, 4, 7)


@pytest.fixture(params=list(PATHS))
def conv_path(request, monkeypatch):
    if request.param != "direct" and not kops.gemm_enabled():
        pytest.skip("no BLAS for the GEMM and Winograd paths")
    monkeypatch.delenv("FACEGAN_NATIVE_GEMM", raising=False)
    for name, value in PATHS[request.param].items():
        monkeypatch.setenv(name, value)
    return request.param


def _skip_path(row, path):
    if _gemm_only(row) and path == "direct":
        pytest.skip("only the GEMM path covers this convolution")
    if path == "winograd" and not (row[2] == 3 and _stride(row) == 1):
        pytest.skip("Winograd covers 3x3 stride-1 convolutions only")


class _Loss(nn.Cell):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def construct(self, x):
        y = self.net(x)
        return (y * y * ops.sin(y)).sum()


class _GradNormLoss(nn.Cell):
    """||d loss / d x||^2: its gradient with respect to the weights is second order, as in WGAN-GP."""

    def __init__(self, net):
        super().__init__()
        self.input_grad = ms.grad(_Loss(net), grad_position=0)

    def construct(self, x):
        g = self.input_grad(x)
        return (g * g).sum()


class _Weighted(nn.Cell):
    def __init__(self, layer, g):
        super().__init__()
        self.layer, self.g = layer, ms.Tensor(g)

    def construct(self, v):
        return (self.layer(v) * self.g).sum()


def _weighted_sum_grad(layer, x, g):
    """d sum(layer(x) * g) / dx."""
    return ms.grad(_Weighted(layer, g))(ms.Tensor(x)).asnumpy()


def _conv_pair(row, seed=0):
    cin, cout, k, pad, _, bias = row[:6]
    stride = _stride(row)
    rng = np.random.default_rng(seed)
    # Built as in a default run (with FACEGAN_NATIVE_GEMM=0 a strided layer would stay on MindSpore's
    # convolution); the variable then picks the C++ path at every call.
    saved = os.environ.pop("FACEGAN_NATIVE_GEMM", None)
    try:
        a = native_of(Conv2d(cin, cout, k, stride=stride, padding=pad, bias=bias))
    finally:
        if saved is not None:
            os.environ["FACEGAN_NATIVE_GEMM"] = saved
    assert isinstance(a, kcells.NativeConv2d)
    b = nn.Conv2d(cin, cout, k, stride=stride, pad_mode="pad", padding=pad, has_bias=bias)
    w = (rng.standard_normal((cout, cin, k, k)) / np.sqrt(cin * k * k)).astype(np.float32)
    a.weight.set_data(ms.Tensor(w))
    b.weight.set_data(ms.Tensor(w))
    if bias:
        bb = rng.standard_normal(cout).astype(np.float32)
        a.bias.set_data(ms.Tensor(bb))
        b.bias.set_data(ms.Tensor(bb))
    n, h, wd = row[4]
    x = rng.standard_normal((n, cin, h, wd)).astype(np.float32)
    return a, b, ms.Tensor(x)


def _rel(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-12))


@pytest.mark.parametrize("row", CONV_ROWS, ids=[_row_id(r) for r in CONV_ROWS])
def test_conv_forward_and_gradients_match_mindspore(row, mode, conv_path):
    _skip_path(row, conv_path)
    a, b, x = _conv_pair(row)
    assert _rel(a(x).asnumpy(), b(x).asnumpy()) < 1e-5
    ga = ms.grad(_Loss(a), grad_position=0, weights=a.trainable_params())(x)
    gb = ms.grad(_Loss(b), grad_position=0, weights=b.trainable_params())(x)
    assert _rel(ga[0].asnumpy(), gb[0].asnumpy()) < 1e-5
    assert len(ga[1]) == len(gb[1]) == (2 if row[5] else 1)
    for p, q in zip(ga[1], gb[1]):
        assert _rel(p.asnumpy(), q.asnumpy()) < 1e-5


SECOND_ORDER_ROWS = CONV_ROWS[:4] + CONV_ROWS[7:9] + CONV_ROWS[14:15] + CONV_ROWS[-2:-1]   # stride 2, folded


@pytest.mark.parametrize("row", SECOND_ORDER_ROWS, ids=[_row_id(r) for r in SECOND_ORDER_ROWS])
def test_conv_second_order_gradient_matches_mindspore(row, conv_path):
    _skip_path(row, conv_path)
    ms.set_context(mode=ms.GRAPH_MODE)
    a, b, x = _conv_pair(row, seed=1)
    ga = ms.grad(_GradNormLoss(a), grad_position=0, weights=a.trainable_params())(x)
    gb = ms.grad(_GradNormLoss(b), grad_position=0, weights=b.trainable_params())(x)
    assert _rel(ga[0].asnumpy(), gb[0].asnumpy()) < 1e-4
    for p, q in zip(ga[1], gb[1]):
        assert _rel(p.asnumpy(), q.asnumpy()) < 1e-4


def _torch_rownorm(x, unbiased, layer, eps):
    t = torch.from_numpy(x.astype(np.float64)).requires_grad_(True)
    dims = tuple(range(1, t.dim())) if layer else tuple(range(2, t.dim()))
    mean = t.mean(dims, keepdim=True)
    var = t.var(dims, keepdim=True, unbiased=unbiased)
    return t, (t - mean) / torch.sqrt(var + eps)


class _RowNorm(nn.Cell):
    """The row-norm kernel pair (RowNormFwd / RowNormBwd) in every configuration the C++ side has."""

    def __init__(self, unbiased, layer):
        super().__init__()
        self.op = kops.row_norm_op()
        self.cfg = kops.row_norm_cfg(1e-5, unbiased, layer)

    def construct(self, x):
        return self.op(x, self.cfg)


# (shape, unbiased, layer, input mean, input std)
NORM_ROWS = [
    ((2, 5, 13, 11), False, False, 0.0, 1.0),
    ((2, 5, 13, 11), True, False, 0.5, 2.0),
    ((2, 5, 13, 11), True, True, 0.0, 1.0),
    ((1, 3, 160, 150), False, False, 0.0, 1.0),    # rows longer than one 16384-element chunk
    ((1, 8, 64, 64), True, True, 1.0, 3.0),        # one layer row of several chunks
    ((1, 4, 64, 64), False, False, 300.0, 0.01),   # large mean, tiny spread: no cancellation
    ((2, 3, 64, 64), True, True, -300.0, 0.01),
]


@pytest.mark.parametrize("row", NORM_ROWS, ids=[f"{'x'.join(map(str, r[0]))}-{'ub' if r[1] else 'b'}-"
                                                 f"{'ln' if r[2] else 'in'}-m{r[3]}" for r in NORM_ROWS])
def test_row_norm_matches_torch_float64(row, mode):
    shape, unbiased, layer, mean, std = row
    rng = np.random.default_rng(0)
    x = (mean + std * rng.standard_normal(shape)).astype(np.float32)
    g = rng.standard_normal(shape).astype(np.float32)
    norm = _RowNorm(unbiased, layer)
    y = norm(ms.Tensor(x)).asnumpy()
    dx = _weighted_sum_grad(norm, x, g)
    t, ty = _torch_rownorm(x, unbiased, layer, 1e-5)
    (ty * torch.from_numpy(g.astype(np.float64))).sum().backward()
    assert _rel(y, ty.detach().numpy()) < 2e-5
    assert _rel(dx, t.grad.numpy()) < 2e-4


def test_instance_norm_layer_takes_the_row_norm_kernel():
    layer = native_of(InstanceNorm2d(4))
    assert isinstance(layer, kcells.NativeInstanceNorm2d)
    x = np.random.default_rng(2).standard_normal((2, 4, 9, 10)).astype(np.float32)
    t, ty = _torch_rownorm(x, False, False, 1e-5)
    assert _rel(layer(ms.Tensor(x)).asnumpy(), ty.detach().numpy()) < 2e-5


def test_row_norm_of_one_element_is_nan_as_torch_var():
    """torch.var of one element is 0/0: LIN / adaLIN give NaN there, the kernel and MindSpore's own ops alike."""
    one = np.ones((1, 2, 1, 1), np.float32)
    assert np.isnan(_RowNorm(True, False)(ms.Tensor(one)).asnumpy()).all()
    assert np.isnan(unbiased_norm(ms.Tensor(one), 2, 1e-5).asnumpy()).all()
    assert torch.isnan(torch.ones(1, 2, 1, 1).var((2, 3), unbiased=True)).all()


def _torch_lin_mix(x, rho, gamma, beta, eps):
    """U-GAT-IT's adaLIN / LIN in float64: gamma * (rho * IN(x) + (1 - rho) * LN(x)) + beta, torch.var."""
    t = [torch.from_numpy(v.astype(np.float64)).requires_grad_(True) for v in (x, rho, gamma, beta)]
    xt, rt, gt, bt = t
    ins = (xt - xt.mean((2, 3), keepdim=True)) / torch.sqrt(xt.var((2, 3), keepdim=True) + eps)
    lns = (xt - xt.mean((1, 2, 3), keepdim=True)) / torch.sqrt(xt.var((1, 2, 3), keepdim=True) + eps)
    shape = (gt.shape[0], gt.shape[1], 1, 1) if gt.dim() == 2 else gt.shape
    y = (rt * ins + (1 - rt) * lns) * gt.reshape(shape) + bt.reshape(shape)
    return t, y


class _AdaLINCall(nn.Cell):
    def __init__(self, layer, g):
        super().__init__()
        self.layer, self.g = layer, ms.Tensor(g)

    def construct(self, x, gamma, beta):
        return (self.layer(x, gamma, beta) * self.g).sum()


# (kind, input shape, input mean, input std): adaLIN takes gamma/beta (N, C) from the FC head, LIN has
# (1, C, 1, 1) parameters shared over the batch.
LIN_ROWS = [
    ("ada", (2, 5, 13, 11), 0.0, 1.0),
    ("lin", (2, 5, 13, 11), 0.5, 2.0),
    ("ada", (1, 3, 160, 150), 0.0, 1.0),     # planes longer than one 16384-element chunk
    ("lin", (3, 4, 9, 7), 0.0, 1.0),
    ("ada", (2, 3, 64, 64), -300.0, 0.01),   # large mean, tiny spread: no cancellation
]


def _lin_case(kind, shape, mean, std, seed=1):
    n, c = shape[:2]
    rng = np.random.default_rng(seed)
    # planes with different means and spreads, so that the layer and instance statistics differ
    x = (mean + std * (rng.standard_normal((n, c, 1, 1)) + rng.uniform(0.5, 2, (n, c, 1, 1))
                       * rng.standard_normal(shape))).astype(np.float32)
    g = rng.standard_normal(shape).astype(np.float32)
    rho = rng.uniform(0, 1, (1, c, 1, 1)).astype(np.float32)
    pshape = (n, c) if kind == "ada" else (1, c, 1, 1)
    gamma = (1 + 0.5 * rng.standard_normal(pshape)).astype(np.float32)
    beta = rng.standard_normal(pshape).astype(np.float32)
    layer = AdaLIN(c) if kind == "ada" else LIN(c)
    if kind == "lin":
        layer.gamma.set_data(ms.Tensor(gamma))
        layer.beta.set_data(ms.Tensor(beta))
    layer.rho.set_data(ms.Tensor(rho))
    return layer, x, g, rho, gamma, beta


def _lin_grads(layer, kind, x, g, gamma, beta):
    """(output, dx, drho, dgamma, dbeta) as numpy."""
    if kind == "ada":
        net = _AdaLINCall(layer, g)
        args = (ms.Tensor(x), ms.Tensor(gamma), ms.Tensor(beta))
        rho = [p for p in layer.trainable_params() if p.name.endswith("rho")]
        (dx, dg, db), (drho,) = ms.grad(net, grad_position=(0, 1, 2), weights=rho)(*args)
        y = layer(*args)
    else:
        dx, (drho, dg, db) = ms.grad(_Weighted(layer, g), grad_position=0,
                                     weights=layer.trainable_params())(ms.Tensor(x))
        y = layer(ms.Tensor(x))
    return [v.asnumpy() for v in (y, dx, drho, dg, db)]


@pytest.mark.parametrize("row", LIN_ROWS, ids=[f"{r[0]}-{'x'.join(map(str, r[1]))}-m{r[2]}" for r in LIN_ROWS])
def test_lin_mix_matches_torch_float64(row, mode):
    """The fused adaLIN / LIN kernel: output and the gradients of x, rho, gamma and beta."""
    kind, shape, mean, std = row
    layer, x, g, rho, gamma, beta = _lin_case(kind, shape, mean, std)
    layer = native_of(layer)
    assert isinstance(layer, kcells.NativeLINMix)
    y, dx, drho, dg, db = _lin_grads(layer, kind, x, g, gamma, beta)
    (xt, rt, gt, bt), yt = _torch_lin_mix(x, rho, gamma, beta, 1e-5)
    (yt * torch.from_numpy(g.astype(np.float64))).sum().backward()
    assert _rel(y, yt.detach().numpy()) < 2e-5
    assert _rel(dx, xt.grad.numpy()) < 2e-4
    assert _rel(drho, rt.grad.numpy()) < 2e-4
    assert _rel(dg, gt.grad.numpy()) < 2e-4
    assert _rel(db, bt.grad.numpy()) < 2e-4


@pytest.mark.parametrize("kind", ["ada", "lin"])
def test_lin_mix_equals_the_portable_formulation(kind):
    """The fused kernel against the same layer on MindSpore's own ops (two row norms, mix, affine)."""
    outs = []
    for accelerate in (True, False):
        layer, x, g, rho, gamma, beta = _lin_case(kind, (2, 6, 17, 19), 0.0, 1.0, seed=3)
        if accelerate:
            layer = native_of(layer)
        outs.append(_lin_grads(layer, kind, x, g, gamma, beta))
    for a, b in zip(*outs):
        assert _rel(a, b) < 1e-4


# (layer factory, input shape, PyTorch reference); copies are compared bitwise, the pool (a sum) to 1e-6
PAD_ROWS = [
    ("pad1", lambda: ReflectionPad2d(1), (2, 3, 8, 9), torch.nn.ReflectionPad2d(1)),
    ("pad3", lambda: ReflectionPad2d(3), (1, 2, 4, 6), torch.nn.ReflectionPad2d(3)),
    ("up2", UpsampleNearest2x, (2, 3, 5, 7), torch.nn.Upsample(scale_factor=2, mode="nearest")),
    ("pool2", AvgPool2x2, (2, 3, 8, 10), torch.nn.AvgPool2d(2, 2)),
    ("pool2-odd", AvgPool2x2, (1, 2, 7, 9), torch.nn.AvgPool2d(2, 2)),   # last row and column dropped
]


@pytest.mark.parametrize("accelerate", [True, False], ids=["kernels", "portable"])
@pytest.mark.parametrize("row", PAD_ROWS, ids=[r[0] for r in PAD_ROWS])
def test_pad_upsample_and_pool_match_torch(row, mode, accelerate):
    _, make, shape, ref = row
    layer = make()
    if accelerate:
        layer = native_of(layer)
        assert kernels.is_native(layer)
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    t = torch.from_numpy(x).requires_grad_(True)
    ty = ref(t)
    g = rng.standard_normal(tuple(ty.shape)).astype(np.float32)
    (ty * torch.from_numpy(g)).sum().backward()
    if row[0].startswith("pool"):
        np.testing.assert_allclose(layer(ms.Tensor(x)).asnumpy(), ty.detach().numpy(), rtol=1e-6, atol=1e-6)
    else:
        np.testing.assert_array_equal(layer(ms.Tensor(x)).asnumpy(), ty.detach().numpy())
    np.testing.assert_allclose(_weighted_sum_grad(layer, x, g), t.grad.numpy(), rtol=1e-6, atol=1e-6)


# NormReLUPad (instance norm -> ReLU -> reflection pad in one kernel) against PyTorch in float64:
# (input shape, padding, input mean, input std)
NRP_ROWS = [
    ((2, 3, 8, 10), 1, 0.0, 1.0),
    ((2, 2, 9, 9), 0, 0.5, 2.0),                   # no padding (IN -> ReLU -> 1x1 conv)
    ((1, 4, 150, 140), 3, 0.0, 1.0),               # planes of two 16384-element chunks, padding 3
    ((1, 3, 40, 40), 1, -300.0, 0.01),             # large mean, tiny spread
    ((1, 2, 2, 5), 1, 0.0, 1.0),                   # padding as large as PyTorch allows on one side
]


@pytest.mark.parametrize("row", NRP_ROWS, ids=[f"{'x'.join(map(str, r[0]))}-p{r[1]}-m{r[2]}" for r in NRP_ROWS])
def test_norm_relu_pad_matches_torch_float64(row, mode):
    shape, pad, mean, std = row
    rng = np.random.default_rng(0)
    x = (mean + std * rng.standard_normal(shape)).astype(np.float32)
    layer = kcells.NormReLUPad(1e-5, pad)
    t = torch.from_numpy(x.astype(np.float64)).requires_grad_(True)
    ty = torch.nn.functional.instance_norm(t, eps=1e-5).relu()
    if pad:
        ty = torch.nn.functional.pad(ty, (pad,) * 4, mode="reflect")
    g = rng.standard_normal(tuple(ty.shape)).astype(np.float32)
    (ty * torch.from_numpy(g.astype(np.float64))).sum().backward()
    assert _rel(layer(ms.Tensor(x)).asnumpy(), ty.detach().numpy()) < 2e-5
    assert _rel(_weighted_sum_grad(layer, x, g), t.grad.numpy()) < 2e-4


def test_sequence_fusion_keeps_indices_and_equals_the_layers_it_replaces():
    """The pass fuses every InstanceNorm2d (no affine) -> ReLU [-> ReflectionPad2d] run of a SequentialCell into
    one NormReLUPad and leaves Identity in the other places: indices (and parameter names) kept; the fused
    kernel equals the three native layers to rounding."""
    rng = np.random.default_rng(5)
    seq = nn.SequentialCell([ReflectionPad2d(1), Conv2d(3, 4, 3), InstanceNorm2d(4), nn.ReLU(),
                             ReflectionPad2d(1), Conv2d(4, 4, 3), InstanceNorm2d(4, affine=True), nn.ReLU(),
                             InstanceNorm2d(4), nn.LeakyReLU(0.2), InstanceNorm2d(4), nn.ReLU()])
    names = [p.name for p in seq.get_parameters()]
    kernels.accelerate(seq)
    kinds = [type(c).__name__ for c in seq.cell_list]
    assert kinds == ["NativePadUp", "NativeConv2d", "NormReLUPad", "Identity", "Identity", "NativeConv2d",
                     "NativeInstanceNorm2d", "ReLU", "NativeInstanceNorm2d", "LeakyReLU", "NormReLUPad", "Identity"]
    assert seq[2].padding == 1 and seq[10].padding == 0
    assert [p.name for p in seq.get_parameters()] == names
    x = rng.standard_normal((2, 5, 33, 31)).astype(np.float32)
    g = rng.standard_normal((2, 5, 35, 33)).astype(np.float32)
    fused = kcells.NormReLUPad(1e-5, 1)
    plain = nn.SequentialCell([InstanceNorm2d(5), nn.ReLU(), ReflectionPad2d(1)])
    plain = nn.SequentialCell([native_of(c) for c in plain.cell_list])   # each layer on its own kernel
    np.testing.assert_array_equal(fused(ms.Tensor(x)).asnumpy(), plain(ms.Tensor(x)).asnumpy())
    np.testing.assert_allclose(_weighted_sum_grad(fused, x, g), _weighted_sum_grad(plain, x, g), rtol=0, atol=2e-6)


# photo2cartoon's hourglass unit as one op per direction (ConvBlockFwd / ConvBlockBwd) against the same
# ConvBlock run as its separate native ops (NormReLUPad, Conv2d, concat, add): the same kernels and
# additions, so equal to the bit, on every convolution path. Rows: input (N, C, H, W).
BLOCK_ROWS = [
    (1, 32, 24, 20),    # photo2cartoon's width at batch 1: the slices are read and written in place
    (2, 8, 9, 7),       # batch 2, odd sizes: the slices go through copies
    (3, 4, 2, 5),       # the narrowest block (units of 2, 1 and 1 channels), two rows (reflection's limit)
]


def _separately_native(block):
    """The block's layers on their kernels, the block itself not fused."""
    for seq in (block.ConvBlock1, block.ConvBlock2, block.ConvBlock3, block.ConvBlock4):
        kernels.accelerate(seq)
    return block


@pytest.mark.parametrize("row", BLOCK_ROWS, ids=["x".join(map(str, r)) for r in BLOCK_ROWS])
def test_conv_block_op_equals_its_separate_ops(row, mode, conv_path):
    from models.ugatit import ConvBlock
    rng = np.random.default_rng(7)
    fused, plain = native_of(ConvBlock(row[1], row[1])), _separately_native(ConvBlock(row[1], row[1]))
    assert isinstance(fused, kcells.NativeConvBlock)
    assert not isinstance(native_of(ConvBlock(row[1], 2 * row[1])), kcells.NativeConvBlock)   # projecting: split
    for p, q in zip(fused.trainable_params(), plain.trainable_params()):
        q.set_data(ms.Tensor(rng.standard_normal(p.shape).astype(np.float32) * 0.3))
        p.set_data(q.value())
    x = ms.Tensor(rng.standard_normal(row).astype(np.float32))
    np.testing.assert_array_equal(fused(x).asnumpy(), plain(x).asnumpy())
    ga = ms.grad(_Loss(fused), grad_position=0, weights=fused.trainable_params())(x)
    gb = ms.grad(_Loss(plain), grad_position=0, weights=plain.trainable_params())(x)
    np.testing.assert_array_equal(ga[0].asnumpy(), gb[0].asnumpy())
    assert len(ga[1]) == len(gb[1]) == 4                     # three units and the unused projection
    for p, q in zip(ga[1], gb[1]):
        np.testing.assert_array_equal(p.asnumpy(), q.asnumpy())
    assert np.abs(ga[1][0].asnumpy()).max() > 0 and not ga[1][3].asnumpy().any()


# Transposed convolution (layers.ConvTranspose2d), native against PyTorch's ConvTranspose2d:
# (in, out, kernel, stride, padding, output_padding, input (N, H, W), bias)
CONVT_ROWS = [
    (8, 4, 3, 2, 1, 1, (2, 5, 6), True),    # CycleGAN resnet upsampling
    (6, 3, 4, 2, 1, 0, (1, 7, 5), True),    # U-Net / STGAN upsampling
    (5, 4, 3, 1, 1, 0, (1, 6, 6), False),   # stride 1
    (4, 3, 3, 3, 2, 1, (1, 4, 5), True),
    # outputs of >= 2048 pixels: the forward by phases on the direct kernel (the rows above: SGEMM); with
    # 10 inputs over >= 2048 pixels the weight gradient is the blocked direct kernel too
    (8, 4, 3, 2, 1, 1, (1, 24, 23), True),
    (10, 3, 4, 2, 1, 0, (1, 48, 46), True),
    (12, 8, 4, 2, 1, 0, (5, 12, 11), True),   # SGEMM, samples folded: a group of 4 and one of 1
]


def _convt_case(row, seed=0, accelerate=True):
    cin, cout, k, st, pad, op, (n, h, wd), bias = row
    rng = np.random.default_rng(seed)
    layer = ConvTranspose2d(cin, cout, k, st, pad, output_padding=op, bias=bias)
    w = (rng.standard_normal((cin, cout, k, k)) / np.sqrt(cin * k * k)).astype(np.float32)
    layer.weight.set_data(ms.Tensor(w))
    b = rng.standard_normal(cout).astype(np.float32) if bias else None
    if bias:
        layer.bias.set_data(ms.Tensor(b))
    if accelerate:
        layer = native_of(layer)
        assert isinstance(layer, kcells.NativeConvTranspose2d)
    x = rng.standard_normal((n, cin, h, wd)).astype(np.float32)
    ref = torch.nn.ConvTranspose2d(cin, cout, k, st, pad, output_padding=op, bias=bias).double()
    with torch.no_grad():
        ref.weight.copy_(torch.from_numpy(w))
        if bias:
            ref.bias.copy_(torch.from_numpy(b))
    return layer, ref, x


@pytest.mark.skipif(not kops.gemm_enabled(), reason="no BLAS for the GEMM path")
@pytest.mark.parametrize("row", CONVT_ROWS, ids=[f"{r[0]}-{r[1]}k{r[2]}s{r[3]}p{r[4]}op{r[5]}" for r in CONVT_ROWS])
def test_conv_transpose_matches_torch(row, mode):
    layer, ref, x = _convt_case(row)
    xt = torch.from_numpy(x).double().requires_grad_(True)
    yt = ref(xt)
    (yt * yt * torch.sin(yt)).sum().backward()
    y = layer(ms.Tensor(x)).asnumpy()
    assert y.shape == tuple(yt.shape)
    assert _rel(y, yt.detach().numpy()) < 1e-5
    g = ms.grad(_Loss(layer), grad_position=0, weights=layer.trainable_params())(ms.Tensor(x))
    assert _rel(g[0].asnumpy(), xt.grad.numpy()) < 1e-4
    assert _rel(g[1][0].asnumpy(), ref.weight.grad.numpy()) < 1e-4
    if row[7]:
        assert _rel(g[1][1].asnumpy(), ref.bias.grad.numpy()) < 1e-4


@pytest.mark.skipif(not kops.gemm_enabled(), reason="no BLAS for the GEMM path")
def test_conv_transpose_second_order_matches_mindspore_own():
    layer, _, x = _convt_case(CONVT_ROWS[0], seed=2)
    own, _, _ = _convt_case(CONVT_ROWS[0], seed=2, accelerate=False)
    ga = ms.grad(_GradNormLoss(layer), grad_position=0, weights=layer.trainable_params())(ms.Tensor(x))
    gb = ms.grad(_GradNormLoss(own), grad_position=0, weights=own.trainable_params())(ms.Tensor(x))
    assert _rel(ga[0].asnumpy(), gb[0].asnumpy()) < 1e-4
    for p, q in zip(ga[1], gb[1]):
        assert _rel(p.asnumpy(), q.asnumpy()) < 1e-4


def test_only_covered_convolutions_are_swapped(monkeypatch):
    """The pass asks the C++ rules (ConvSupported): padding above k - 1 never; large fan-in, strides and other
    kernel sizes only with the GEMM path."""
    def swapped(*args, **kw):
        return isinstance(native_of(Conv2d(*args, **kw)), kcells.NativeConv2d)
    gemm = kops.gemm_enabled()
    assert swapped(128, 8, 3) and swapped(3, 8, 7, padding=3)
    assert not swapped(3, 8, 3, padding=3)
    assert swapped(129, 8, 3) == swapped(3, 8, 3, stride=2) == swapped(3, 8, 5) == gemm
    monkeypatch.setenv("FACEGAN_NATIVE_GEMM", "0")
    assert swapped(128, 8, 3) and not swapped(129, 8, 3) and not swapped(3, 8, 3, stride=2)


LEAKY_SHAPES = [(2, 3, 5, 7), (3, 70001)]   # the second: several blocks of the kernel's loop, a short last one


@pytest.mark.parametrize("accelerate", [True, False], ids=["kernels", "portable"])
def test_leaky_relu_equals_torch(mode, accelerate):
    """Exactly PyTorch's values and gradient, the slope's side at exact zeros included (MindSpore's own
    leaky_relu, maximum(0.2 x, x), splits the gradient there)."""
    layer = native_of(LeakyReLU(0.2)) if accelerate else LeakyReLU(0.2)
    assert kernels.is_native(layer) == accelerate
    rng = np.random.default_rng(4)
    for shape in LEAKY_SHAPES:
        x = rng.standard_normal(shape).astype(np.float32)
        x.reshape(-1)[::5] = 0.0
        g = rng.standard_normal(shape).astype(np.float32)
        xt = torch.from_numpy(x).requires_grad_(True)
        yt = torch.nn.functional.leaky_relu(xt, 0.2)
        yt.backward(torch.from_numpy(g))
        np.testing.assert_array_equal(layer(ms.Tensor(x)).asnumpy(), yt.detach().numpy())
        np.testing.assert_array_equal(_weighted_sum_grad(layer, x, g), xt.grad.numpy())


def test_leaky_relu_second_order_matches_mindspore_own():
    """Conv -> LeakyReLU -> conv on the kernels against MindSpore's own layers: the gradient of
    ||d loss / d x||^2 with respect to the input and both weights (a WGAN-GP critic's second order)."""
    rng = np.random.default_rng(5)
    w1 = (rng.standard_normal((6, 3, 3, 3)) * 0.3).astype(np.float32)
    w2 = (rng.standard_normal((2, 6, 3, 3)) * 0.3).astype(np.float32)

    def build(own):
        conv = (lambda c, o: nn.Conv2d(c, o, 3, pad_mode="pad", padding=1, has_bias=False)) if own else \
            (lambda c, o: Conv2d(c, o, 3, padding=1, bias=False))
        net = nn.SequentialCell([conv(3, 6), nn.LeakyReLU(0.2) if own else LeakyReLU(0.2), conv(6, 2)])
        net[0].weight.set_data(ms.Tensor(w1))
        net[2].weight.set_data(ms.Tensor(w2))
        return net
    mine, own = kernels.accelerate(build(False), second_order=True), build(True)
    assert kernels.is_native(mine[0]) and kernels.is_native(mine[1])
    x = ms.Tensor(rng.standard_normal((2, 3, 9, 8)).astype(np.float32))
    ga = ms.grad(_GradNormLoss(mine), grad_position=0, weights=mine.trainable_params())(x)
    gb = ms.grad(_GradNormLoss(own), grad_position=0, weights=own.trainable_params())(x)
    assert _rel(ga[0].asnumpy(), gb[0].asnumpy()) < 1e-4
    for p, q in zip(ga[1], gb[1]):
        assert _rel(p.asnumpy(), q.asnumpy()) < 1e-4


def _torch_affine_instance_norm(weight, bias, x, track=False):
    """PyTorch's InstanceNorm2d(affine=True[, track_running_stats]) in float64 with these parameters, run on x
    and differentiated through sum(y * y * sin y): (the module, x as a leaf tensor, y)."""
    ref = torch.nn.InstanceNorm2d(len(weight), affine=True, track_running_stats=track).double()
    with torch.no_grad():
        ref.weight.copy_(torch.from_numpy(weight))
        ref.bias.copy_(torch.from_numpy(bias))
    xt = torch.from_numpy(x.astype(np.float64)).requires_grad_(True)
    yt = ref(xt)
    (yt * yt * torch.sin(yt)).sum().backward()
    return ref, xt, yt


@pytest.mark.parametrize("accelerate", [True, False], ids=["kernels", "portable"])
def test_affine_instance_norm_matches_torch_float64(mode, accelerate):
    """InstanceNorm2d(affine=True): on the kernels (row norm, then the affine) and portable (the affine inside
    BatchNorm's kernel, per sample and channel) against PyTorch in float64, including a channel with a large
    mean and a small spread."""
    rng = np.random.default_rng(6)
    layer = InstanceNorm2d(5, affine=True)
    weight = rng.uniform(0.5, 1.5, 5).astype(np.float32)
    bias = rng.standard_normal(5).astype(np.float32)
    layer.weight.set_data(ms.Tensor(weight))
    layer.bias.set_data(ms.Tensor(bias))
    if accelerate:
        layer = native_of(layer)
    assert kernels.is_native(layer) == accelerate
    x = rng.standard_normal((3, 5, 6, 7)).astype(np.float32)
    x[:, 2] = 300.0 + 0.05 * x[:, 2]
    ref, xt, yt = _torch_affine_instance_norm(weight, bias, x)
    assert _rel(layer(ms.Tensor(x)).asnumpy(), yt.detach().numpy()) < 1e-5
    g = ms.grad(_Loss(layer), grad_position=0, weights=layer.trainable_params())(ms.Tensor(x))
    assert _rel(g[0].asnumpy(), xt.grad.numpy()) < 1e-4
    assert _rel(g[1][0].asnumpy(), ref.weight.grad.numpy()) < 1e-4
    assert _rel(g[1][1].asnumpy(), ref.bias.grad.numpy()) < 1e-4


@pytest.mark.parametrize("accelerate", [True, False], ids=["kernels", "portable"])
def test_tracked_instance_norm_matches_torch_float64(mode, accelerate):
    """TrackedInstanceNorm2d (StarGAN's InstanceNorm2d(affine=True, track_running_stats=True)): on the kernels
    (the LIN kernel with rho = 1 and the biased variance, the running statistics from RowStats) and portable,
    against PyTorch in float64: the training output and its three gradients, the running statistics after two
    training forwards (one of them differentiated), eval mode by the running statistics, and eval mode by each
    image's own statistics (StarGAN's test script) without touching the running ones. One channel has a large
    mean and a small spread."""
    rng = np.random.default_rng(7)
    weight = rng.uniform(0.5, 1.5, 5).astype(np.float32)
    bias = rng.standard_normal(5).astype(np.float32)
    x = rng.standard_normal((3, 5, 6, 7)).astype(np.float32)
    x[:, 2] = 300.0 + 0.05 * x[:, 2]
    x2 = (rng.standard_normal((3, 5, 6, 7)) * 2.0 + 1.0).astype(np.float32)

    def make(input_stats=False):
        layer = TrackedInstanceNorm2d(5)
        layer.weight.set_data(ms.Tensor(weight))
        layer.bias.set_data(ms.Tensor(bias))
        layer.eval_input_stats = input_stats
        layer = native_of(layer) if accelerate else layer
        assert kernels.is_native(layer) == accelerate
        return layer
    ref, xt, yt = _torch_affine_instance_norm(weight, bias, x, track=True)
    with torch.no_grad():
        ref(torch.from_numpy(x2.astype(np.float64)))
    layer = make()
    layer.set_train(True)
    g = ms.grad(_Loss(layer), grad_position=0, weights=layer.trainable_params())(ms.Tensor(x))
    assert _rel(g[0].asnumpy(), xt.grad.numpy()) < 1e-4
    assert _rel(g[1][0].asnumpy(), ref.weight.grad.numpy()) < 1e-4
    assert _rel(g[1][1].asnumpy(), ref.bias.grad.numpy()) < 1e-4
    assert _rel(layer(ms.Tensor(x2)).asnumpy(), torch.nn.functional.instance_norm(
        torch.from_numpy(x2.astype(np.float64)), weight=ref.weight, bias=ref.bias).detach().numpy()) < 1e-5
    assert _rel(layer.moving_mean.asnumpy(), ref.running_mean.numpy()) < 1e-6
    assert _rel(layer.moving_variance.asnumpy(), ref.running_var.numpy()) < 1e-5
    ref.eval()
    layer.set_train(False)
    with torch.no_grad():
        assert _rel(layer(ms.Tensor(x)).asnumpy(), ref(torch.from_numpy(x.astype(np.float64))).numpy()) < 1e-5
    own = make(input_stats=True)
    own.moving_mean.set_data(ms.Tensor(np.full(5, 7.0, np.float32)))
    own.set_train(False)
    assert _rel(own(ms.Tensor(x)).asnumpy(), yt.detach().numpy()) < 1e-5
    assert np.all(own.moving_mean.asnumpy() == 7.0)


def test_second_order_keeps_only_kernels_whose_gradients_differentiate_again():
    """accelerate(second_order=True): convolutions, leaky ReLU, padding and pooling on the kernels; the norms
    (whose backward kernels have no gradient of their own) and the fusions stay on MindSpore's ops. In
    PyNative mode nothing is swapped (MindSpore 2.10 drops a Custom op's second-order weight gradients there)."""
    from models.stgan import STGANDiscriminator
    from models.ugatit import UGATITDiscriminator
    for make in (lambda: STGANDiscriminator(n_attrs=2, dim=4, n_layers=2, fc_dim=8, img_size=16),
                 lambda: UGATITDiscriminator(3, ndf=4, n_layers=5),
                 lambda: nn.SequentialCell([ReflectionPad2d(1), AvgPool2x2(), UpsampleNearest2x(), InstanceNorm2d(3),
                                            nn.ReLU()])):
        net = kernels.accelerate(make(), second_order=True)
        kinds = {type(c).__name__ for _, c in net.cells_and_names()}
        native = {k for k in kinds if k.startswith("Native")}
        assert native and native <= {"NativeConv2d", "NativeSNConv2d", "NativeLeakyReLU", "NativePadUp",
                                     "NativeAvgPool2x2"}, kinds
        assert "NormReLUPad" not in kinds
        ms.set_context(mode=ms.PYNATIVE_MODE)
        net = kernels.accelerate(make(), second_order=True)
        assert not any(kernels.is_native(c) for _, c in net.cells_and_names())
        ms.set_context(mode=ms.GRAPH_MODE)


def test_accelerate_keeps_every_parameter_and_refuses_a_compiled_network():
    from models.ugatit import Photo2CartoonGenerator
    net = Photo2CartoonGenerator(ngf=8, img_size=32)
    before = {id(p): p.name for p in net.get_parameters()}
    kernels.accelerate(net)
    assert {id(p): p.name for p in net.get_parameters()} == before
    kinds = {type(c).__name__ for _, c in net.cells_and_names()}
    assert {"NativeConvBlock", "NormReLUPad", "NativeLINMix", "NativeConv2d", "NativeAvgPool2x2"} <= kinds
    compiled = nn.SequentialCell([Conv2d(3, 4, 3)])
    compiled(ms.Tensor(np.zeros((1, 3, 8, 8), np.float32)))
    with pytest.raises(RuntimeError, match="already has a compiled graph"):
        kernels.accelerate(compiled)


def _probe(env):
    code = ("from core import runtime; runtime.configure('graph', 'CPU');"
            "import kernels, mindspore.nn as nn; from models.layers import Conv2d;"
            "n = kernels.accelerate(nn.SequentialCell([Conv2d(3, 4, 3)]));"
            "print(kernels.is_native(n[0]), repr(kernels.why_not()))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**os.environ, **env}, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip().splitlines()[-1]


def test_switch_off_and_compile_failure_fall_back_to_mindspore(tmp_path):
    assert _probe({"FACEGAN_NATIVE": "0"}) == "False 'FACEGAN_NATIVE=0'"
    bad = tmp_path / "cxx"
    bad.write_text("#!/bin/sh\necho 'no compiler here' >&2\nexit 1\n")
    bad.chmod(0o755)
    line = _probe({"CXX": str(bad), "FACEGAN_KERNEL_CACHE": str(tmp_path / "cache")})
    assert line.startswith("False 'compiling the kernels failed:") and "no compiler here" in line


def test_unusable_blas_leaves_large_fan_in_to_mindspore(tmp_path):
    """A BLAS path that does not load (or lacks SGEMM / per-thread threads): no GEMM path, so a 256-channel
    convolution stays on MindSpore's kernel, a small one on the direct kernel."""
    code = ("from core import runtime; runtime.configure('graph', 'CPU');"
            "import kernels, mindspore.nn as nn; from kernels import ops; from models.layers import Conv2d;"
            "n = kernels.accelerate(nn.SequentialCell([Conv2d(256, 8, 3), Conv2d(8, 8, 3)]));"
            "print(kernels.is_native(n[0]), kernels.is_native(n[1]), ops.gemm_enabled(), ops.picks_gemm(256, 256, 3))")
    for bad in (str(tmp_path / "missing.so"), build.library()):   # the kernels' own library has no SGEMM
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                             env={**os.environ, "FACEGAN_BLAS_LIB": bad})
        assert out.returncode == 0, out.stderr[-2000:]
        assert out.stdout.strip().splitlines()[-1] == "False True False False"


def test_library_builds_outside_the_source_tree_and_old_builds_are_removed(tmp_path):
    """The library lives in the cache directory, never under the project; a build of another source is
    deleted once it is a day old, a fresh one stays (a process started before the source changed may still
    open it by path), and so do the current build and unrelated files."""
    lib = build.library()
    assert lib and not os.path.abspath(lib).startswith(ROOT + os.sep)
    now = 1_000_000.0
    p = build.PREFIX
    files = {f"{p}current.so": now - 10 * 86400, f"{p}old.so": now - 2 * 86400, f"{p}fresh.so": now - 60,
             "other.so": now - 10 * 86400}
    for name, mtime in files.items():
        (tmp_path / name).write_bytes(b"")
        os.utime(tmp_path / name, (mtime, mtime))
    assert build.remove_stale_builds(str(tmp_path), f"{p}current.so", now=now) == [f"{p}old.so"]
    assert sorted(x.name for x in tmp_path.iterdir()) == [f"{p}current.so", f"{p}fresh.so", "other.so"]
