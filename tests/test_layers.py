"""Layers and network behaviour that the parity table does not show by itself: spectral norm's training step
(gradients and the stored u, v) with the division on either side, and the attribute input's reach."""
import numpy as np
import pytest
import torch

import mindspore as ms

import kernels
import models
from tests.helpers import assert_close


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


@pytest.mark.parametrize("accelerate", [False, True], ids=["portable", "kernels"])
@pytest.mark.parametrize("row", SN_CONV_ROWS, ids=[f"{r[0]}-{r[1]}k{r[2]}s{r[3]}-{r[7]}" for r in SN_CONV_ROWS])
def test_sn_conv_training_gradients_match_torch(row, mode, accelerate):
    """One training step of a lone SNConv2d from the same weights and u, v, with the division in either
    place: the loss, the input / weight / bias gradients and the stored u, v equal
    torch.nn.utils.spectral_norm's (float64)."""
    from models.layers import SNConv2d
    cin, cout, k, stride, pad, bias, shape, branch = row
    n_out = shape[0] * cout * (shape[2] // stride) * (shape[3] // stride)
    assert (n_out < cout * cin * k * k) == (branch == "output")
    torch.manual_seed(0)
    ref = torch.nn.utils.spectral_norm(torch.nn.Conv2d(cin, cout, k, stride, pad, bias=bias)).double()
    layer = SNConv2d(cin, cout, k, stride, pad, bias)
    sd = {n: v.detach().float().numpy() for n, v in ref.state_dict().items()}
    for p in layer.get_parameters():
        p.set_data(ms.Tensor(sd[p.name.split(".")[-1]]))
    if accelerate:
        seq = kernels.accelerate(ms.nn.SequentialCell([layer]))
        layer = seq[0]
        assert kernels.is_native(layer)
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


def test_attributes_change_the_stgan_output(mode):
    """The attribute input reaches the image through every path (bottleneck, injections, STU)."""
    net = models.create_model("stgan_generator", n_attrs=3, dim=8, enc_layers=3, dec_layers=3, shortcut_layers=2,
                              inject_layers=2, img_size=32)
    net.set_train(False)
    x = ms.Tensor(np.random.default_rng(0).uniform(-1, 1, (1, 3, 32, 32)).astype(np.float32))
    y0 = net(x, ms.Tensor(np.zeros((1, 3), np.float32))).asnumpy()
    for k in range(3):
        a = np.zeros((1, 3), np.float32)
        a[0, k] = 1.0
        assert np.abs(net(x, ms.Tensor(a)).asnumpy() - y0).max() > 1e-4
