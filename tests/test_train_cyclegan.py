"""train.py --model cyclegan | pix2pix, run as the README shows: they learn a toy task, CycleGAN resumes
exactly after SIGKILL (image pool included), the data layouts (folders, PaddleCV lists, A|B pairs, A<TAB>B
lists) work, bad input fails with one line, and test.py serves what was trained."""
import json
import signal
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tests.helpers import (ROOT, make_digit_pairs, run_cli, run_history,
                           wait_for_checkpoint)

CYC_TINY = ["--model", "cyclegan", "--netG", "resnet_6blocks", "--ngf", "8", "--ndf", "8", "--img_size", "32", "-q"]


@pytest.fixture
def digits(digit_domains):
    return digit_domains


def _l1_to_truth(net, a, b):
    return _scores(net, a, b)[0]


def _scores(net, a, b):
    """(L1 between net(A) and the true B, mean green-minus-red of net(A) on the digit strokes), images in [-1, 1]
    and the colour difference in [0, 1] units: +0.78 for the true mapping, -0.78 for the identity map."""
    import mindspore as ms
    x = (a.astype(np.float32) / 127.5 - 1.0).transpose(0, 3, 1, 2)
    t = (b.astype(np.float32) / 127.5 - 1.0).transpose(0, 3, 1, 2)
    y = net(ms.Tensor(np.ascontiguousarray(x))).asnumpy()
    strokes = a[..., 0] > 128
    green_minus_red = float(((y[:, 1] - y[:, 0]) / 2)[strokes].mean())
    return float(np.abs(y - t).mean()), green_minus_red


def test_cyclegan_learns_the_toy_mapping(digits, tmp_path):
    """Red digits -> green digits, unpaired, the published CycleGAN losses and pool (batch 4, lr 5e-4).

    Scores: L1 between G_A(A) and the true green digit, and the strokes' green-minus-red (true mapping +0.78,
    identity -0.78, untrained nets -0.09..+0.09 for seeds 0-2). Which of two outcomes a run reaches depends
    on the trajectory, not on the code: of 7 runs (seeds 0/1, 150 or 300 iterations, lr 5e-4 or 2e-4), 1
    reached the full mapping (L1 0.11) and 6 half-green strokes (+0.10..+0.17) on a grey background (L1
    0.36-0.38); a change of rounding in the norm (1e-6) moved seed 0 from the first to the second. So the test
    asserts what every run reached: closer to the truth than the identity map (0.405), and green-dominant
    strokes, clearly above the untrained net."""
    import mindspore as ms
    import models
    from families import get_family
    fam = get_family("cyclegan")
    data, test_a, test_b = digits
    cfg = dict(fam.defaults("cyclegan"), netG="resnet_6blocks", ngf=8, ndf=8, img_size=32)
    ms.set_seed(0)
    untrained = fam.build_nets(cfg)["G_A"]
    untrained.set_train(False)
    before, before_gr = _scores(untrained, test_a, test_b)
    identity = float(np.abs(test_a.astype(np.float32) - test_b).mean() / 127.5)
    r = run_cli(["train.py", "--dataset", str(data), "--result_dir", str(tmp_path), "--run_name", "t",
                 "--iterations", "150", "--batch_size", "4", "--lr", "5e-4", "--print_freq", "50",
                 "--save_freq", "150", "--sample_freq", "150", "--seed", "0"] + CYC_TINY, timeout=1500)
    assert r.returncode == 0, r.stderr[-2000:]
    run = tmp_path / "t"
    after, after_gr = _scores(models.load_network(str(run / "model"), "G_A"), test_a, test_b)
    print(f"L1 to the true mapping: untrained {before:.3f}, identity {identity:.3f}, trained {after:.3f}; "
          f"stroke green-minus-red: untrained {before_gr:.3f}, trained {after_gr:.3f}")
    assert before > 0.35 and identity > 0.35
    assert after < identity, (after, identity)
    assert after_gr > 0.05 and after_gr > before_gr + 0.05, (after_gr, before_gr)
    assert "cycle_A" in r.stdout and "idt_B" in r.stdout and "[   150/150]" in r.stdout
    assert Image.open(run / "samples" / "0000150.png").size == (32 * 4, 32 * 6)
    meta = json.loads((run / "model" / "model.json").read_text())
    assert sorted(meta["networks"]) == ["D_A", "D_B", "G_A", "G_B"]


def test_pix2pix_learns_pairs_and_test_py_serves_it(tmp_path):
    """Paired red -> green digits at 128 px (U-Net 128): L1 to the truth, untrained ~0.5, trained < 0.1
    (measured 0.015 after 150 iterations when written)."""
    import models
    data = tmp_path / "pairs"
    test_a, test_b = make_digit_pairs(str(data), size=128, n_train=100, n_test=6)
    r = run_cli(["train.py", "--model", "pix2pix", "--dataset", str(data), "--result_dir", str(tmp_path),
                 "--run_name", "p", "--netG", "unet_128", "--ngf", "8", "--ndf", "8", "--img_size", "128",
                 "--iterations", "120", "--batch_size", "4", "--lr", "1e-3", "--print_freq", "40",
                 "--save_freq", "120", "--sample_freq", "120", "-q"], timeout=1500)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "train: 100 pairs" in r.stdout and "G_L1" in r.stdout
    net = models.load_network(str(tmp_path / "p" / "model"), "G")
    after = _l1_to_truth(net, test_a, test_b)
    print(f"pix2pix L1 to the truth: {after:.3f}")
    assert after < 0.1, after
    photos = tmp_path / "photos"
    photos.mkdir()
    for k, a in enumerate(test_a[:2]):
        Image.fromarray(a).save(photos / f"{k}.png")
    out = tmp_path / "pred"
    r = run_cli(["test.py", "--model", "pix2pix", "--checkpoint", str(tmp_path / "p" / "model"), "--photo_path",
                 str(photos), "--save_path", str(out), "--eval", "-q"])
    assert r.returncode == 0, r.stderr[-2000:]
    pred = np.asarray(Image.open(out / "0_fakeB.png").convert("RGB"), np.float32)
    assert np.abs(pred - test_b[0]).mean() < 0.1 * 127.5
    r = run_cli(["test.py", "--model", "pix2pix", "--checkpoint", str(tmp_path / "p" / "model"), "--photo_path",
                 str(photos / "0.png"), "--direction", "BtoA"])
    assert r.returncode != 0 and "AtoB only" in r.stderr


def test_cyclegan_sigkill_then_resume_matches_uninterrupted(digits, tmp_path):
    """The image pool (size 3, full after 3 iterations, then mixing) is part of the saved state."""
    data, _, _ = digits
    common = ["train.py", "--dataset", str(data), "--result_dir", str(tmp_path), "--iterations", "12",
              "--print_freq", "1", "--save_freq", "4", "--sample_freq", "100", "--seed", "5", "--pool_size", "3",
              "--ngf", "4", "--ndf", "4"] + CYC_TINY
    ref = run_cli(common + ["--run_name", "straight"])
    assert ref.returncode == 0, ref.stderr[-2000:]
    proc = subprocess.Popen([sys.executable] + common + ["--run_name", "killed"], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_for_checkpoint(str(tmp_path / "killed"), 4, proc), "no checkpoint at iteration 4"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    stopped_at = json.load(open(tmp_path / "killed" / "checkpoints" / "latest.json"))["iteration"]
    assert 4 <= stopped_at < 12
    assert (tmp_path / "killed" / "checkpoints" / f"iter_{stopped_at:07d}.extra.npz").exists()
    resumed = run_cli(common + ["--run_name", "killed", "--resume"])
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    h_ref, h_res = run_history(tmp_path / "straight"), run_history(tmp_path / "killed")
    assert [h[0] for h in h_res] == list(range(1, 13))
    for a, b in zip(h_ref, h_res):
        np.testing.assert_allclose([a[1], a[2]], [b[1], b[2]], rtol=1e-5, err_msg=f"iteration {a[0]}")
    import mindspore as ms
    for net in ("G_B", "D_A"):
        p1 = ms.load_checkpoint(str(tmp_path / "straight" / "model" / f"{net}.ckpt"))
        p2 = ms.load_checkpoint(str(tmp_path / "killed" / "model" / f"{net}.ckpt"))
        for k in p1:
            np.testing.assert_allclose(p1[k].asnumpy(), p2[k].asnumpy(), rtol=1e-5, atol=1e-7)
    # the trained model on a photo through the face front end, both directions' files with --save_cycle
    photo = tmp_path / "astronaut.jpg"
    Image.open(f"{ROOT}/dataset/samples/astronaut.jpg").save(photo)
    out = tmp_path / "out"
    r = run_cli(["test.py", "--model", "cyclegan", "--checkpoint", str(tmp_path / "straight" / "model"),
                 "--photo_path", str(photo), "--save_path", str(out / "x.png"), "--direction", "BtoA",
                 "--save_cycle", "--preprocess", "face"])
    assert r.returncode == 0, r.stderr[-2000:]
    assert Image.open(out / "x.png").size == (256, 256) and Image.open(out / "x_recB.png").size == (256, 256)
    r = run_cli(["test.py", "--model", "cyclegan", "--checkpoint", str(tmp_path / "straight" / "model"),
                 "--photo_path", str(photo), "--save_path", str(out / "x.png"), "--direction", "BtoA"])
    assert r.returncode != 0 and "exists" in r.stderr and "Traceback" not in r.stderr


def test_data_layouts_and_one_line_errors(digits, tmp_path):
    data, _, _ = digits
    # PaddleCV layout: trainA.txt / trainB.txt listing paths relative to the dataset dir
    paddle = tmp_path / "paddle"
    paddle.mkdir()
    for split in ("trainA", "trainB"):
        names = sorted(p.name for p in (data / split).iterdir())[:10]
        (paddle / f"{split}.txt").write_text("".join(f"{data / split / n}\n" for n in names))
    r = run_cli(["train.py", "--dataset", str(paddle), "--result_dir", str(tmp_path), "--iterations", "2",
                 "--ngf", "4", "--ndf", "4"] + CYC_TINY)
    assert r.returncode == 0 and "trainA: 10 images, trainB: 10 images" in r.stdout, r.stderr[-2000:]
    # pix2pix list of A<TAB>B pairs, reversed with --direction BtoA, WGAN-GP (second-order gradients, compiled)
    pairs = tmp_path / "pairs"
    pairs.mkdir()
    a_files = sorted((data / "trainA").iterdir())[:6]
    b_files = sorted((data / "trainB").iterdir())[:6]
    (pairs / "train.txt").write_text("".join(f"{a}\t{b}\n" for a, b in zip(a_files, b_files)))
    r = run_cli(["train.py", "--model", "pix2pix", "--dataset", str(pairs), "--result_dir", str(tmp_path),
                 "--netG", "resnet_6blocks", "--ngf", "4", "--ndf", "4", "--img_size", "32", "--iterations", "3",
                 "--print_freq", "1", "--direction", "BtoA", "--gan_mode", "wgangp", "-q"])
    assert r.returncode == 0 and "train: 6 pairs" in r.stdout, r.stderr[-2000:]
    assert "[     3/3]" in r.stdout
    cfg = json.loads((tmp_path / "pairs_pix2pix" / "config.json").read_text())
    assert cfg["direction"] == "BtoA" and cfg["gan_mode"] == "wgangp"
    # one-line errors before any work
    empty = tmp_path / "empty"
    (empty / "trainA").mkdir(parents=True)
    (empty / "trainB").mkdir()
    cases = [
        (["--dataset", str(empty)] + CYC_TINY, "trainA folder has no readable images"),
        (["--dataset", str(data), "--lambda_L1", "5"] + CYC_TINY, "--lambda_L1 does not apply to --model cyclegan"),
        (["--dataset", str(data), "--netG", "resnet_7blocks", "--model", "cyclegan"], "invalid choice: 'resnet_7blocks'"),
        (["--dataset", str(data), "--model", "pix2pix", "--netG", "unet_256", "--img_size", "128"],
         "does not fit unet_256"),
        (["--dataset", str(data), "--model", "pix2pix"], "train folder not found"),
    ]
    for args, message in cases:
        r = run_cli(["train.py", "--result_dir", str(tmp_path / "errs")] + args)
        assert r.returncode != 0 and message in r.stderr and "Traceback" not in r.stderr, (args, r.stderr[-800:])
