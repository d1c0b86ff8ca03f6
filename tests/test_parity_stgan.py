"""STGAN / AttGAN networks: table-driven parity with the PyTorch reference (GRAPH and PYNATIVE, eval and
training-mode forward)."""
import numpy as np
import pytest
import torch

import mindspore as ms

import models
from models.cyclegan import batchnorm_prefixes, torch_key_rules
from tests.helpers import assert_close, load_into_ms, randomize_torch, torch_state_numpy
from tests.torch_refs.stgan_ref import STGANDiscriminatorRef, STGANGeneratorRef

# (id, registry name, torch reference, config, image size, tolerance)
ROWS = [
    ("stgan_G_5layers", "stgan_generator", STGANGeneratorRef,
     dict(n_attrs=13, dim=8, enc_layers=5, dec_layers=5, shortcut_layers=4, inject_layers=4, img_size=64), 64, 1e-4),
    ("stgan_G_sc3_inj1", "stgan_generator", STGANGeneratorRef,
     dict(n_attrs=5, dim=8, enc_layers=5, dec_layers=5, shortcut_layers=3, inject_layers=1, img_size=32), 32, 1e-4),
    ("attgan_G", "stgan_generator", STGANGeneratorRef,
     dict(n_attrs=13, dim=8, enc_layers=5, dec_layers=5, shortcut_layers=1, inject_layers=1, use_stu=False,
          img_size=64), 64, 1e-4),
    ("stgan_D", "stgan_discriminator", STGANDiscriminatorRef, dict(n_attrs=13, dim=8, n_layers=5, fc_dim=64,
                                                                  img_size=64), 64, 1e-4),
]
MODES = {"graph": ms.GRAPH_MODE, "pynative": ms.PYNATIVE_MODE}


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("row", ROWS, ids=[r[0] for r in ROWS])
def test_parity(row, mode):
    ms.set_context(mode=MODES[mode])
    _, name, ref_cls, cfg, size, tol = row
    ref = randomize_torch(ref_cls(**cfg), seed=3)
    net = models.create_model(name, **cfg)
    load_into_ms(net, torch_state_numpy(ref), torch_key_rules("batch", batchnorm_prefixes(net)))
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (2, 3, size, size)).astype(np.float32)
    inputs = (x,) if name == "stgan_discriminator" else (x, rng.uniform(-1, 1, (2, cfg["n_attrs"])).astype(np.float32))
    for train in (False, True):
        ref.train(train)
        net.set_train(train)
        with torch.no_grad():
            out_t = ref(*(torch.from_numpy(i) for i in inputs))
        out_m = net(*(ms.Tensor(i) for i in inputs))
        if not isinstance(out_t, tuple):
            out_t, out_m = (out_t,), (out_m,)
        for t, m in zip(out_t, out_m):
            assert_close(t, m, tol)


def test_attributes_change_the_output():
    """The attribute input reaches the image through every path (bottleneck, injections, STU)."""
    ms.set_context(mode=ms.PYNATIVE_MODE)
    net = models.create_model("stgan_generator", n_attrs=3, dim=8, enc_layers=3, dec_layers=3, shortcut_layers=2,
                              inject_layers=2, img_size=32)
    net.set_train(False)
    x = ms.Tensor(np.random.default_rng(0).uniform(-1, 1, (1, 3, 32, 32)).astype(np.float32))
    y0 = net(x, ms.Tensor(np.zeros((1, 3), np.float32))).asnumpy()
    for k in range(3):
        a = np.zeros((1, 3), np.float32)
        a[0, k] = 1.0
        assert np.abs(net(x, ms.Tensor(a)).asnumpy() - y0).max() > 1e-4
