"""Mixed precision (train.py --amp O1|O2, training/amp.py), run on the CPU: the loss scaling policy, which Cells
compute in float16 at each level, and the GAN steps of U-GAT-IT (spectral norm, AdaLIN, CAM) and STGAN (a
WGAN-GP critic: second-order gradients) built, run and resumed exactly with the scale in the checkpoint."""
import json

import numpy as np
import pytest

import mindspore as ms
from mindspore import nn

from tests.helpers import assert_resume_from_checkpoint_is_exact, run_cli
from tests.test_train_stgan import TOY as STGAN_TOY
from training import amp
from training.engine import make_train_step

UGATIT_TINY = ["--arch", "ugatit", "--ngf", "8", "--n_blocks", "2", "--img_size", "32", "--n_dis_global", "5",
               "--n_dis_local", "4", "--seed", "3", "-q"]


class _Loss(nn.Cell):
    terms = ("mse",)

    def __init__(self, net):
        super().__init__()
        self.net = net

    def construct(self, x, k):
        loss = ((self.net(x) - 0.5) ** 2).mean() * k
        return loss, {"mse": loss}


def _tiny(seed=0):
    ms.set_seed(seed)
    return nn.SequentialCell(nn.Conv2d(3, 4, 3, has_bias=True), nn.ReLU(), nn.Conv2d(4, 2, 3, has_bias=True))


def _params(net):
    return [p.asnumpy().copy() for p in net.trainable_params()]


def test_loss_scale_skips_overflowing_steps_and_grows_after_a_window():
    """A power-of-two scale leaves a float32 step bit for bit as it is unscaled; a step whose gradients
    overflow is skipped (weights and Adam's step count unchanged) and halves the scale; `window` finite steps
    in a row double it."""
    x = ms.Tensor(np.random.default_rng(0).random((2, 3, 8, 8)).astype(np.float32))
    one = ms.Tensor(1.0, ms.float32)
    plain_net, scaled_net = _tiny(), _tiny()
    plain = make_train_step(_Loss(plain_net), nn.Adam(plain_net.trainable_params(), 1e-2))
    scale = amp.LossScale("t", init=2.0 ** 10, window=2)
    opt = nn.Adam(scaled_net.trainable_params(), 1e-2)
    scaled = make_train_step(_Loss(scaled_net), opt, loss_scale=scale)
    for step in range(3):
        a, b = plain(x, one), scaled(x, one)
        assert float(a[0].asnumpy()) == float(b[0].asnumpy())
        for p, q in zip(_params(plain_net), _params(scaled_net)):
            np.testing.assert_array_equal(p, q)
    assert float(scale.scale.asnumpy()) == 2.0 ** 11 and int(scale.finite_steps.asnumpy()) == 1
    before, count = _params(scaled_net), int(opt.global_step.asnumpy().ravel()[0])
    huge = ms.Tensor(3e38, ms.float32)             # scaled by 2^11 this loss is inf: every gradient overflows
    scaled(x, huge)
    for p, q in zip(before, _params(scaled_net)):
        np.testing.assert_array_equal(p, q)
    assert int(opt.global_step.asnumpy().ravel()[0]) == count
    assert float(scale.scale.asnumpy()) == 2.0 ** 10 and int(scale.finite_steps.asnumpy()) == 0
    scaled(x, one)
    assert float(scale.scale.asnumpy()) == 2.0 ** 10 and int(scale.finite_steps.asnumpy()) == 1
    scaled(x, one)
    assert float(scale.scale.asnumpy()) == 2.0 ** 11 and int(scale.finite_steps.asnumpy()) == 0


@pytest.mark.parametrize("level", ["O1", "O2"])
def test_levels_put_the_convolutions_in_float16_and_keep_the_norms_in_float32(level):
    """U-GAT-IT's generator: O1 flags its convolutions and dense layers float16 and every other Cell float32;
    O2 flags everything float16 but the normalisations (LIN, AdaLIN, instance norm); the output stays close to
    the float32 network's (float16 rounding, not a different network) and is not equal to it."""
    from families import get_family
    fam = get_family("ugatit")
    cfg = dict(fam.defaults("ugatit"), ngf=8, n_blocks=2, img_size=32, n_dis_global=5, n_dis_local=4)
    ms.set_seed(1)
    ref = fam.build_nets(cfg)["genA2B"]
    ms.set_seed(1)
    net = fam.build_nets(cfg)["genA2B"]
    amp.cast_networks({"g": net}, level)
    norms = amp._fp32_cells()
    seen = {"conv16": 0, "norm32": 0}
    for name, cell in net.cells_and_names():
        fp16, fp32 = cell.get_flags().get("fp16", False), cell.get_flags().get("fp32", False)
        if isinstance(cell, (nn.Conv2d, nn.Dense)):
            assert fp16 and not fp32, name
            seen["conv16"] += 1
        elif isinstance(cell, norms):
            assert fp32 and not fp16, name
            seen["norm32"] += 1
        elif level == "O1":
            assert fp32, name
    assert seen["conv16"] > 5 and seen["norm32"] > 3
    ref.set_train(False)
    net.set_train(False)
    x = ms.Tensor(np.random.default_rng(2).uniform(-1, 1, (1, 3, 32, 32)).astype(np.float32))
    a, b = ref(x)[0].asnumpy(), net(x)[0].asnumpy()
    b = b.astype(np.float32)
    assert 0 < np.abs(a - b).max() < 2e-2, np.abs(a - b).max()


@pytest.mark.slow   # make test-slow: the STGAN test below runs --amp through train.py on every suite run
def test_ugatit_trains_with_o1_and_resumes_exactly_with_its_loss_scale(digit_domains, tmp_path):
    """train.py --amp O1 on U-GAT-IT (O2 runs through train.py in the STGAN test; it compiles slower here, 60 s
    against 37 s): finite losses close to the float32 run's at the first iteration, the
    config records the level, the checkpoint holds both steps' loss scales, and a resume from the checkpoint
    of iteration 2 (the scale has already backed off there) ends where the straight run ends."""
    data = digit_domains[0]
    ref = assert_resume_from_checkpoint_is_exact(["--dataset", str(data), "--amp", "O1"] + UGATIT_TINY,
                                                 tmp_path, 2, 4, nets=("genA2B", "disGA"))
    assert "float16" in ref.stdout    # the CPU note
    cfg = json.loads((tmp_path / "straight" / "config.json").read_text())
    assert cfg["amp"] == "O1"
    state = ms.load_checkpoint(str(tmp_path / "straight" / "checkpoints" / "iter_0000004.ckpt"))
    assert {"G_step.loss_scale", "D_step.loss_scale", "G_step.finite_steps"} <= set(state)
    assert float(state["G_step.loss_scale"].asnumpy()) < 2.0 ** 16      # U-GAT-IT's loss overflows at first
    fp32 = run_cli(["train.py", "--dataset", str(data), "--result_dir", str(tmp_path), "--run_name", "fp32",
                    "--iterations", "1", "--print_freq", "1", "--sample_freq", "1000"] + UGATIT_TINY)
    assert fp32.returncode == 0, fp32.stderr[-2000:]
    from tests.helpers import run_history
    h16, h32 = run_history(tmp_path / "straight")[0], run_history(tmp_path / "fp32")[0]
    for k in h32[3]:
        assert h16[3][k] == pytest.approx(h32[3][k], rel=2e-2, abs=1e-3), k
    bad = run_cli(["train.py", "--dataset", str(data), "--result_dir", str(tmp_path), "--run_name", "straight",
                   "--resume", "--amp", "O2", "--iterations", "5"] + UGATIT_TINY)
    assert bad.returncode != 0 and "--amp O2 does not match" in bad.stderr and "Traceback" not in bad.stderr


def test_stgan_wgan_gp_critic_trains_with_o2_and_o1_is_refused(digit_attributes, tmp_path):
    """The STGAN critic's gradient penalty differentiates a gradient: with --amp O2 (the critic kept float32,
    the generator float16) both steps compile and run with finite losses; O1, which MindSpore 2.10 cannot
    differentiate there, is refused with one line before anything is built."""
    data = digit_attributes[0]
    common = ["train.py", "--dataset", str(data), "--result_dir", str(tmp_path), "--iterations", "2",
              "--batch_size", "4", "--print_freq", "1", "--sample_freq", "2"] + STGAN_TOY
    r = run_cli(common + ["--run_name", "o2", "--amp", "O2"])
    assert r.returncode == 0, r.stderr[-2000:]
    assert "[     2/2]" in r.stdout and "D_gp" in r.stdout
    state = ms.load_checkpoint(str(tmp_path / "o2" / "checkpoints" / "iter_0000002.ckpt"))
    assert {"G_step.loss_scale", "D_step.loss_scale"} <= set(state)
    bad = run_cli(common + ["--run_name", "o1", "--amp", "O1"])
    assert bad.returncode != 0 and "use --amp O2" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o1").exists()
