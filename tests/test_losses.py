"""Shared GAN losses: the WGAN-GP penalty's second-order gradient (finite differences and PyTorch autograd),
the three adversarial modes against PyTorch's losses, and the image pool's exact save/restore."""
import numpy as np
import pytest
import torch

import mindspore as ms
from mindspore import nn, ops

import models
import kernels
from models.cyclegan import torch_key_rules
from tests.helpers import load_into_ms
from torch_refs.cyclegan_ref import NLayerDiscriminatorRef
from training.losses import GradientPenalty, as_function, gan_loss

MODES = {"graph": ms.GRAPH_MODE, "pynative": ms.PYNATIVE_MODE}


class _PenaltyOnly(nn.Cell):
    def __init__(self, d):
        super().__init__(auto_prefix=False)
        self.gp = GradientPenalty(d)

    def construct(self, real, fake, alpha):
        return self.gp(real, fake, alpha), ()


def _tiny(seed=0):
    ref = NLayerDiscriminatorRef(input_nc=3, ndf=4, n_layers=2, norm="none")
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in ref.parameters():
            p.copy_(0.3 * torch.randn(p.shape, generator=g))
    net = models.create_model("patchgan_discriminator", input_nc=3, ndf=4, n_layers=2, norm="none")
    load_into_ms(net, {k: v.numpy() for k, v in ref.state_dict().items()}, torch_key_rules("none"))
    rng = np.random.default_rng(seed)
    real, fake = (rng.uniform(-1, 1, (2, 3, 16, 16)).astype(np.float32) for _ in range(2))
    alpha = np.array([0.3, 0.8], np.float32)
    return ref, net, real, fake, alpha


class _SmoothD(nn.Cell):
    """A tiny smooth critic for finite differences: with (leaky) ReLUs the input gradient, and so the penalty,
    jumps when a weight change flips an activation, which finite differences cannot follow."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 4, 3, stride=2, pad_mode="pad", padding=1, has_bias=True)
        self.c2 = nn.Conv2d(4, 1, 3, stride=1, pad_mode="pad", padding=1, has_bias=True)

    def construct(self, x):
        return self.c2(ops.tanh(self.c1(x)))


def _ms_grads(net, real, fake, alpha, mode):
    loss_cell = _PenaltyOnly(net)
    params = net.trainable_params()
    grad_fn = ms.value_and_grad(as_function(loss_cell), None, params, has_aux=True)

    def step(*a):
        return grad_fn(*a)
    if mode == "graph":
        step = ms.jit(step)
    (value, _), grads = step(ms.Tensor(real), ms.Tensor(fake), ms.Tensor(alpha))
    return loss_cell, float(value.asnumpy()), [g.asnumpy() for g in grads], params


def test_gradient_penalty_second_order_matches_torch_autograd(mode):
    ref, net, real, fake, alpha = _tiny()
    kernels.accelerate(net, second_order=True)
    # graph mode differentiates the kernels twice; PyNative runs MindSpore's own ops
    assert _native_kinds(net) == ({"NativeConv2d", "NativeLeakyReLU"} if kernels.enabled() and mode == "graph"
                                  else set())
    _, value, grads, _ = _ms_grads(net, real, fake, alpha, mode)
    assert value > 1e-3 and all(np.isfinite(g).all() for g in grads)

    # PyTorch autograd with create_graph=True (the published way to write the penalty)
    a = torch.from_numpy(alpha).view(-1, 1, 1, 1)
    x_hat = (a * torch.from_numpy(real) + (1 - a) * torch.from_numpy(fake)).requires_grad_(True)
    out = ref(x_hat)
    g = torch.autograd.grad(out, x_hat, torch.ones_like(out), create_graph=True)[0]
    gp = ((g.view(2, -1).norm(2, dim=1) + 1e-16 - 1.0) ** 2).mean()
    t_grads = torch.autograd.grad(gp, list(ref.parameters()), allow_unused=True)   # the last bias: unused
    t_grads = [torch.zeros_like(p) if tg is None else tg for tg, p in zip(t_grads, ref.parameters())]
    assert abs(gp.item() - value) <= 1e-4 * max(1.0, abs(value))
    for tg, mg in zip(t_grads, grads):
        np.testing.assert_allclose(mg, tg.numpy(), rtol=1e-3, atol=1e-4 * float(np.abs(tg.numpy()).max()))



def _native_kinds(net):
    return {type(c).__name__ for _, c in net.cells_and_names() if kernels.is_native(c)}


@pytest.mark.parametrize("mode", [pytest.param(m, marks=pytest.mark.xfail(
    strict=True, reason="MindSpore 2.10 PyNative: zero second-order gradient for the dense heads (train.py "
    "refuses --mode pynative for STGAN)")) if m == "pynative" else m for m in MODES])
def test_gradient_penalty_on_the_stgan_critic_matches_torch_autograd(mode):
    """STGAN's critic (convolutions, affine instance norms, leaky ReLUs, two dense heads) at batch 3: the
    penalty and its weight gradients against PyTorch's create_graph autograd. In graph mode the
    convolutions and leaky ReLUs keep their native kernels (their gradients differentiate again) and the
    norms run on MindSpore's own ops. In PyNative mode (everything on MindSpore's own ops) the dense heads'
    weight gradients come out zero: a MindSpore bug (a convolution, an activation, then dense layers), kept
    here as a strict xfail so that a MindSpore that fixes it shows up."""
    from tests.helpers import randomize_torch
    from torch_refs.stgan_ref import STGANDiscriminatorRef
    from training.losses import FirstOutput
    ms.set_context(mode=MODES[mode])
    cfg = dict(n_attrs=3, dim=4, n_layers=3, fc_dim=8, img_size=16)
    ref = randomize_torch(STGANDiscriminatorRef(**cfg), seed=4)
    net = models.create_model("stgan_discriminator", **cfg)
    load_into_ms(net, {k: v.numpy() for k, v in ref.state_dict().items()}, torch_key_rules("none"))
    kernels.accelerate(net, second_order=True)
    rng = np.random.default_rng(4)
    real, fake = (rng.uniform(-1, 1, (3, 3, 16, 16)).astype(np.float32) for _ in range(2))
    alpha = np.array([0.2, 0.5, 0.9], np.float32)
    _, value, grads, params = _ms_grads(FirstOutput(net), real, fake, alpha, mode)
    native_on = {"NativeConv2d", "NativeLeakyReLU"} if kernels.enabled() and mode == "graph" else set()
    assert _native_kinds(net) == native_on
    a = torch.from_numpy(alpha).view(-1, 1, 1, 1)
    x_hat = (a * torch.from_numpy(real) + (1 - a) * torch.from_numpy(fake)).requires_grad_(True)
    out = ref(x_hat)[0]
    g = torch.autograd.grad(out, x_hat, torch.ones_like(out), create_graph=True)[0]
    gp = ((g.view(3, -1).norm(2, dim=1) + 1e-16 - 1.0) ** 2).mean()
    named = dict(ref.named_parameters())
    t_grads = torch.autograd.grad(gp, list(named.values()), allow_unused=True)
    by_name = {k: (torch.zeros_like(named[k]) if tg is None else tg).numpy() for k, tg in zip(named, t_grads)}
    assert value > 1e-3 and abs(gp.item() - value) <= 1e-4 * max(1.0, abs(value))
    assert len(params) == len(by_name)
    top = max(float(np.abs(tg).max()) for tg in by_name.values())
    for p, mg in zip(params, grads):
        tg = by_name[p.name]
        if p.name.startswith("conv.") and p.name.endswith(".bias") and int(p.name.split(".")[1]) % 3 == 0:
            # a convolution's bias right before an instance norm: zero gradient, both sides at rounding level
            assert max(float(np.abs(mg).max()), float(np.abs(tg).max())) < 1e-6 * top, p.name
            continue
        np.testing.assert_allclose(mg, tg, rtol=1e-3, atol=1e-4 * float(np.abs(tg).max()), err_msg=p.name)


@pytest.mark.parametrize("mode", list(MODES))
def test_gradient_penalty_second_order_matches_finite_differences(mode):
    ms.set_context(mode=MODES[mode])
    ms.set_seed(0)
    net = _SmoothD()
    rng = np.random.default_rng(2)
    for p in net.trainable_params():
        p.set_data(ms.Tensor(rng.normal(0, 0.5, p.shape).astype(np.float32)))
    real, fake = (rng.uniform(-1, 1, (2, 3, 8, 8)).astype(np.float32) for _ in range(2))
    alpha = np.array([0.25, 0.7], np.float32)
    _, value, grads, params = _ms_grads(net, real, fake, alpha, mode)
    assert value > 1e-2
    # central differences on a few weights of each layer, evaluated in PYNATIVE mode (a compiled graph would
    # not see Parameter.set_data made after it was built)
    ms.set_context(mode=ms.PYNATIVE_MODE)
    run = as_function(_PenaltyOnly(net))
    checked = 0
    for p, grad in zip(params, grads):
        w0 = p.asnumpy().copy()
        for _ in range(3):
            idx = tuple(int(rng.integers(s)) for s in w0.shape)
            vals = []
            for eps in (1e-3, -1e-3):
                w = w0.copy()
                w[idx] += eps
                p.set_data(ms.Tensor(w))
                vals.append(float(run(ms.Tensor(real), ms.Tensor(fake), ms.Tensor(alpha))[0].asnumpy()))
            p.set_data(ms.Tensor(w0))
            numeric = (vals[0] - vals[1]) / 2e-3
            assert abs(numeric - grad[idx]) <= 1e-2 * max(1.0, abs(numeric)), (p.name, idx, numeric, grad[idx])
            checked += 1
    assert checked == 3 * len(params)


def test_adversarial_modes_match_torch():
    ms.set_context(mode=ms.PYNATIVE_MODE)
    x = np.random.default_rng(0).normal(0, 2, (2, 1, 6, 6)).astype(np.float32)
    t = torch.from_numpy(x)
    expect = {("lsgan", True): torch.nn.functional.mse_loss(t, torch.ones_like(t)),
              ("lsgan", False): torch.nn.functional.mse_loss(t, torch.zeros_like(t)),
              ("vanilla", True): torch.nn.functional.binary_cross_entropy_with_logits(t, torch.ones_like(t)),
              ("vanilla", False): torch.nn.functional.binary_cross_entropy_with_logits(t, torch.zeros_like(t)),
              ("wgangp", True): -t.mean(), ("wgangp", False): t.mean()}
    for (mode, real), value in expect.items():
        got = float(gan_loss(ms.Tensor(x), real, mode).asnumpy())
        assert abs(got - value.item()) < 1e-5, (mode, real)


def test_image_pool_fills_mixes_and_restores_exactly():
    from training.pool import ImagePool
    ms.set_context(mode=ms.PYNATIVE_MODE)
    rng = np.random.default_rng(0)
    batches = [rng.normal(size=(2, 3, 4, 4)).astype(np.float32) for _ in range(40)]
    pool = ImagePool(5, seed=1, n_pools=1)
    outs = [pool(i, (ms.Tensor(b),))[0].asnumpy() for i, b in enumerate(batches[:20])]
    np.testing.assert_array_equal(outs[0], batches[0])          # not full yet: the new images themselves
    np.testing.assert_array_equal(outs[1][0], batches[1][0])
    reused = sum(not np.array_equal(o, b) for o, b in zip(outs[3:], batches[3:20]))
    assert reused > 0                                            # later, some come from the pool
    state = pool.state()
    restored = ImagePool(5, seed=1, n_pools=1)
    restored.load_state(state)
    for i, b in enumerate(batches[20:], start=20):
        np.testing.assert_array_equal(pool(i, (ms.Tensor(b),))[0].asnumpy(), restored(i, (ms.Tensor(b),))[0].asnumpy())
    assert ImagePool(0, 1, 1)(0, (ms.Tensor(batches[0]),))[0] is not None
