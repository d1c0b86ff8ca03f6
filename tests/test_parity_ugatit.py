"""Table-driven parity: MindSpore Cells vs PyTorch references in the published key layouts.

Each row: (id, torch reference, registry name, constructor config, input shape, fp32 tolerance).
Every row runs in GRAPH_MODE and PYNATIVE_MODE; all outputs (image/patch logits, CAM logits, heatmap)
are compared (in eval mode: within the tolerance plus twice PyTorch's own float32 error against
float64, `assert_close_beyond_rounding`). Weights are random with non-trivial rho, w_gamma/w_beta, LIN gamma/beta and SN u/v.
"""
import copy

import numpy as np
import pytest
import torch

import mindspore as ms

import models
from tests.helpers import assert_close, assert_close_beyond_rounding, load_into_ms, randomize_torch, torch_state_numpy
from tests.torch_refs.ugatit_ref import DiscriminatorRef, P2CGeneratorRef, UGATITGeneratorRef

ROWS = [
    ("p2c_light_ngf32_256", P2CGeneratorRef, "ugatit_p2c_generator",
     dict(ngf=32, img_size=256, light=True), (1, 3, 256, 256), 1e-4),
    ("p2c_full_ngf8_64", P2CGeneratorRef, "ugatit_p2c_generator",
     dict(ngf=8, img_size=64, light=False), (2, 3, 64, 64), 1e-4),
    ("ugatit_light_ngf16_64", UGATITGeneratorRef, "ugatit_generator",
     dict(ngf=16, n_blocks=4, img_size=64, light=True), (2, 3, 64, 64), 1e-4),
    ("ugatit_full_ngf8_32", UGATITGeneratorRef, "ugatit_generator",
     dict(ngf=8, n_blocks=3, img_size=32, light=False), (2, 3, 32, 32), 1e-4),
    ("dis_global_n7", DiscriminatorRef, "ugatit_discriminator",
     dict(input_nc=3, ndf=16, n_layers=7), (2, 3, 128, 128), 1e-4),
    ("dis_local_n5", DiscriminatorRef, "ugatit_discriminator",
     dict(input_nc=3, ndf=16, n_layers=5), (2, 3, 64, 64), 1e-4),
]
MODES = {"graph": ms.GRAPH_MODE, "pynative": ms.PYNATIVE_MODE}


def _pair(row, seed=0):
    _, ref_cls, name, cfg, shape, _ = row
    ref = randomize_torch(ref_cls(**cfg), seed=seed)
    net = load_into_ms(models.create_model(name, **cfg), torch_state_numpy(ref))
    x = np.random.default_rng(seed).uniform(-1, 1, shape).astype(np.float32)
    return ref, net, x


def _compare(outs_t, outs_m, tol):
    assert len(outs_t) == len(outs_m) == 3
    for t, m in zip(outs_t, outs_m):
        assert_close(t, m, tol)


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("row", ROWS, ids=[r[0] for r in ROWS])
def test_eval_parity(row, mode):
    ms.set_context(mode=MODES[mode])
    ref, net, x = _pair(row)
    ref.eval()
    net.set_train(False)
    with torch.no_grad():
        outs_t = ref(torch.from_numpy(x))
        outs_64 = copy.deepcopy(ref).double()(torch.from_numpy(x).double())
    outs_m = net(ms.Tensor(x))
    assert len(outs_t) == len(outs_m) == len(outs_64) == 3
    for t, m, t64 in zip(outs_t, outs_m, outs_64):
        assert_close_beyond_rounding(t, m, t64, row[5])


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("row", [r for r in ROWS if r[2] == "ugatit_discriminator"], ids=lambda r: r[0])
def test_spectral_norm_training_step_parity(row, mode):
    """Training mode: one power iteration per forward, same outputs and same updated u/v as torch."""
    ms.set_context(mode=MODES[mode])
    ref, net, x = _pair(row, seed=1)
    ref.train()
    net.set_train(True)
    for _ in range(2):  # two steps: the second starts from the u/v the first stored
        with torch.no_grad():
            outs_t = ref(torch.from_numpy(x))
        outs_m = net(ms.Tensor(x))
        _compare(outs_t, outs_m, row[5])
    sd = ref.state_dict()
    for p in net.get_parameters():
        if p.name.endswith(("weight_u", "weight_v")):
            np.testing.assert_allclose(p.asnumpy(), sd[p.name].numpy(), atol=1e-5)


# SNConv2d divides its output by sigma where the output is smaller than the weight, else the weight
# (models/layers.py): (in, out, kernel, stride, padding, bias, input shape, which branch)
SN_CONV_ROWS = [
    (3, 8, 4, 2, 1, True, (2, 3, 16, 16), "weight"),    # first discriminator layer: output 2*8*8*8 > weight
    (32, 48, 4, 1, 1, True, (1, 32, 5, 5), "output"),   # deep layer: weight 24576 > output 48*4*4
    (24, 16, 3, 2, 1, False, (2, 24, 6, 6), "output"),
]


class _SNLoss(ms.nn.Cell):
    def __init__(self, layer):
        super().__init__()
        self.layer = layer

    def construct(self, x):
        y = self.layer(x)
        return (y * y * ms.ops.sin(y)).sum()


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("row", SN_CONV_ROWS, ids=[f"{r[0]}-{r[1]}k{r[2]}s{r[3]}-{r[7]}" for r in SN_CONV_ROWS])
def test_sn_conv_training_gradients_match_torch(row, mode):
    """One training step of a lone SNConv2d from the same weights and u, v, with the division in either
    place: the loss, the input / weight / bias gradients and the stored u, v equal
    torch.nn.utils.spectral_norm's (float64)."""
    from models.layers import SNConv2d
    cin, cout, k, stride, pad, bias, shape, branch = row
    n_out = shape[0] * cout * (shape[2] // stride) * (shape[3] // stride)
    assert (n_out < cout * cin * k * k) == (branch == "output")
    ms.set_context(mode=MODES[mode])
    torch.manual_seed(0)
    ref = torch.nn.utils.spectral_norm(torch.nn.Conv2d(cin, cout, k, stride, pad, bias=bias)).double()
    layer = SNConv2d(cin, cout, k, stride, pad, bias)
    sd = {n: v.detach().float().numpy() for n, v in ref.state_dict().items()}
    for p in layer.get_parameters():
        p.set_data(ms.Tensor(sd[p.name.split(".")[-1]]))
    layer.set_train(True)
    ref.train()
    x = np.random.default_rng(3).uniform(-1, 1, shape).astype(np.float32)
    xt = torch.from_numpy(x).double().requires_grad_(True)
    yt = ref(xt)
    loss_t = (yt * yt * torch.sin(yt)).sum()
    loss_t.backward()
    loss, g = ms.value_and_grad(_SNLoss(layer), grad_position=0, weights=layer.trainable_params())(ms.Tensor(x))
    assert abs(float(loss.asnumpy()) - loss_t.item()) <= 1e-4 * max(1.0, abs(loss_t.item()))
    assert_close(xt.grad.numpy(), g[0].asnumpy(), 1e-4)
    assert_close(ref.weight_orig.grad.numpy(), g[1][0].asnumpy(), 1e-4)
    if bias:
        assert_close(ref.bias.grad.numpy(), g[1][1].asnumpy(), 1e-4)
    after = ref.state_dict()
    for p in layer.get_parameters():
        if p.name.endswith(("weight_u", "weight_v")):
            np.testing.assert_allclose(p.asnumpy(), after[p.name.split(".")[-1]].numpy(), atol=1e-5)


PUBLISHED_PARAM_COUNTS = [
    ("ugatit_p2c_generator", dict(ngf=32, img_size=256, light=True), P2CGeneratorRef, 3831079),
    ("ugatit_generator", dict(ngf=64, n_blocks=4, img_size=256, light=True), UGATITGeneratorRef, 10589888),
]


@pytest.mark.parametrize("name,cfg,ref_cls,count", PUBLISHED_PARAM_COUNTS, ids=[r[0] for r in PUBLISHED_PARAM_COUNTS])
def test_parameter_counts_match_published(name, cfg, ref_cls, count):
    net = models.create_model(name, **cfg)
    n_ms = sum(int(np.prod(p.shape)) for p in net.get_parameters())
    n_t = sum(p.numel() for p in ref_cls(**cfg).parameters())
    assert n_ms == n_t == count
