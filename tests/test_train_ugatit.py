"""train.py for U-GAT-IT, run as the README shows: it learns, it resumes exactly after SIGKILL, it refuses bad
data and mismatched checkpoints with one-line errors, and test.py uses what it trained."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from tests.helpers import ROOT, run_cli, run_history as _history, wait_for_checkpoint as _wait_for_checkpoint

TINY = ["--arch", "ugatit", "--ngf", "8", "--n_blocks", "2", "--img_size", "32", "--n_dis_global", "5",
        "--n_dis_local", "4", "-q"]


@pytest.fixture
def digits(digit_domains):
    return digit_domains


def _score(net, test_a, test_b_true):
    """Mean L1 (in [-1, 1] units) between G(A) and the true B of each test A."""
    import mindspore as ms
    x = (test_a.astype(np.float32) / 127.5 - 1.0).transpose(0, 3, 1, 2)
    t = (test_b_true.astype(np.float32) / 127.5 - 1.0).transpose(0, 3, 1, 2)
    y = net(ms.Tensor(np.ascontiguousarray(x)))[0].asnumpy()
    return float(np.abs(y - t).mean())


def test_learns_the_toy_mapping(digits, tmp_path):
    """Red digits -> green digits, unpaired, with the published U-GAT-IT losses and weights (lr 1e-3, batch 4).
    Score: L1 between G(A) and the true green version. Measured when written: the untrained generator (same
    seed) about 0.6, the identity map 0.41, the trained one 0.11 after 300 iterations."""
    import mindspore as ms
    import models
    from families import get_family
    fam = get_family("ugatit")
    data, test_a, test_b = digits
    cfg = dict(fam.defaults("ugatit"), ngf=8, n_blocks=2, img_size=32, n_dis_global=5,
               n_dis_local=4, seed=0)
    ms.set_seed(0)
    untrained = fam.build_nets(cfg)["genA2B"]
    untrained.set_train(False)
    before = _score(untrained, test_a, test_b)
    identity = float(np.abs(test_a.astype(np.float32) - test_b).mean() / 127.5)
    r = run_cli(["train.py", "--dataset", str(data), "--result_dir", str(tmp_path), "--run_name", "t",
                 "--iterations", "300", "--batch_size", "4", "--print_freq", "50", "--save_freq", "150",
                 "--sample_freq", "150", "--lr", "1e-3", "--seed", "0"] + TINY, timeout=1500)
    assert r.returncode == 0, r.stderr[-2000:]
    run = tmp_path / "t"
    after = _score(models.load_network(str(run / "model"), "genA2B"), test_a, test_b)
    print(f"L1 to the true mapping: untrained {before:.3f}, identity {identity:.3f}, trained {after:.3f}")
    assert before > 0.35 and identity > 0.35
    assert after < 0.2, after
    assert (run / "loss_curve.png").exists() and (run / "config.json").exists()
    assert sorted(os.listdir(run / "samples")) == ["0000150.png", "0000300.png"]
    assert Image.open(run / "samples" / "0000300.png").size == (32 * 4, 32 * 8)
    assert "d_loss" in r.stdout and "G_cam" in r.stdout and "[   300/300]" in r.stdout
    # the trained model serves test.py directly
    out = tmp_path / "pred"
    r = run_cli(["test.py", "--photo_path", str(data / "testA"), "--save_path", str(out), "--no_preprocess",
                 "--checkpoint", str(run / "model"), "-q"])
    assert r.returncode == 0, r.stderr[-2000:]
    pred = np.asarray(Image.open(out / "0000_cartoon.png").convert("RGB"), np.float32)
    assert np.abs(pred - test_b[0].astype(np.float32)).mean() < 0.2 * 127.5


def _assert_clamped(model_dir):
    """After steps with a large lr, every rho / w_gamma / w_beta is in [0, 1] and some sit on a bound."""
    import mindspore as ms
    vals = []
    for net in ("genA2B", "genB2A"):
        for k, p in ms.load_checkpoint(str(model_dir / f"{net}.ckpt")).items():
            if k.rsplit(".", 1)[-1] in ("rho", "w_gamma", "w_beta"):
                vals.append(p.asnumpy().ravel())
    v = np.concatenate(vals)
    assert v.min() >= 0.0 and v.max() <= 1.0
    assert np.isclose(v, 0.0).any() or np.isclose(v, 1.0).any()


def test_sigkill_then_resume_matches_uninterrupted(digits, tmp_path):
    data, _, _ = digits
    common = ["train.py", "--dataset", str(data), "--result_dir", str(tmp_path), "--iterations", "16",
              "--print_freq", "1", "--save_freq", "4", "--sample_freq", "100", "--seed", "3"] + TINY
    ref = run_cli(common + ["--run_name", "straight"])
    assert ref.returncode == 0, ref.stderr[-2000:]
    proc = subprocess.Popen([sys.executable] + common + ["--run_name", "killed"], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert _wait_for_checkpoint(str(tmp_path / "killed"), 8, proc), "no checkpoint at iteration 8"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    stopped_at = json.load(open(tmp_path / "killed" / "checkpoints" / "latest.json"))["iteration"]
    assert 8 <= stopped_at < 16
    # a killed run is not silently overwritten
    again = run_cli(common + ["--run_name", "killed"])
    assert again.returncode != 0 and "--resume" in again.stderr
    resumed = run_cli(common + ["--run_name", "killed", "--resume"])
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"at iteration {stopped_at}" in resumed.stdout
    h_ref, h_res = _history(tmp_path / "straight"), _history(tmp_path / "killed")
    assert [h[0] for h in h_res] == list(range(1, 17))
    for a, b in zip(h_ref, h_res):
        assert a[0] == b[0]
        np.testing.assert_allclose([a[1], a[2]], [b[1], b[2]], rtol=1e-5, err_msg=f"iteration {a[0]}")
    # the exported inference weights are the same too
    import mindspore as ms
    for net in ("genA2B", "disLB"):
        p1 = ms.load_checkpoint(str(tmp_path / "straight" / "model" / f"{net}.ckpt"))
        p2 = ms.load_checkpoint(str(tmp_path / "killed" / "model" / f"{net}.ckpt"))
        for k in p1:
            np.testing.assert_allclose(p1[k].asnumpy(), p2[k].asnumpy(), rtol=1e-5, atol=1e-7)


def test_sigterm_saves_and_exits(digits, tmp_path):
    data, _, _ = digits
    proc = subprocess.Popen([sys.executable, "train.py", "--dataset", str(data), "--result_dir", str(tmp_path),
                             "--run_name", "term", "--iterations", "100000", "--save_freq", "100000",
                             "--print_freq", "1000"] + TINY, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        t0 = time.time()
        while time.time() - t0 < 240 and not (tmp_path / "term" / "config.json").exists():
            time.sleep(0.2)
        time.sleep(8)   # compile and a few iterations
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err and "rerun with --resume" in out
    it = json.load(open(tmp_path / "term" / "checkpoints" / "latest.json"))["iteration"]
    assert it >= 1


def test_bad_data_and_configs_fail_fast(digits, tmp_path):
    data, _, _ = digits
    base = ["train.py", "--result_dir", str(tmp_path)] + TINY
    r = run_cli(base + ["--dataset", str(tmp_path / "nowhere")])
    assert r.returncode != 0 and "dataset not found" in r.stderr
    empty = tmp_path / "empty"
    (empty / "trainA").mkdir(parents=True)
    (empty / "trainB").mkdir()
    r = run_cli(base + ["--dataset", str(empty)])
    assert r.returncode != 0 and "trainA folder has no readable images" in r.stderr
    broken = tmp_path / "broken"
    for split in ("trainA", "trainB"):
        (broken / split).mkdir(parents=True)
        for k in range(3):
            Image.fromarray(np.full((40, 40, 3), 40 * k, np.uint8)).save(broken / split / f"{k}.png")
        (broken / split / "bad.png").write_bytes(b"not a png")
    r = run_cli(base + ["--dataset", str(broken), "--iterations", "2", "--print_freq", "1", "--lr", "0.05"])
    assert r.returncode == 0, r.stderr[-2000:]
    assert "(2 unreadable skipped)" in r.stdout
    _assert_clamped(tmp_path / "broken_ugatit" / "model")      # GRAPH_MODE: clamped inside the step
    r = run_cli(base + ["--dataset", str(broken), "--img_size", "48", "--n_dis_global", "7"])
    assert r.returncode != 0 and "too small for a discriminator" in r.stderr
    # resuming with a different network shape is refused before any work
    r = run_cli(base + ["--dataset", str(broken), "--resume", "--ngf", "16", "--iterations", "3"])
    assert r.returncode != 0 and "does not match the run being resumed" in r.stderr
    # a pretrained model of another arch / shape
    r = run_cli(base + ["--dataset", str(broken), "--run_name", "ft", "--pretrained_model",
                        str(tmp_path / "broken_ugatit" / "model"), "--arch", "photo2cartoon"])
    assert r.returncode != 0 and "is a ugatit model, but --arch is photo2cartoon" in r.stderr
    r = run_cli(base + ["--dataset", str(broken), "--run_name", "ft2", "--pretrained_model",
                        str(tmp_path / "broken_ugatit" / "model"), "--ngf", "16"])
    assert r.returncode != 0 and "does not match the pretrained model" in r.stderr
    for res in (r,):
        assert "Traceback" not in res.stderr
    # fine-tuning from it works and says what it loaded
    r = run_cli(base + ["--dataset", str(broken), "--run_name", "ft3", "--iterations", "1", "--pretrained_model",
                        str(tmp_path / "broken_ugatit" / "model")])
    assert r.returncode == 0, r.stderr[-2000:]
    assert "fine-tuning from" in r.stdout and "genA2B, genB2A, disGA, disGB, disLA, disLB" in r.stdout


def test_pynative_mode_and_photo2cartoon_arch_run(digits, tmp_path):
    data, _, _ = digits
    r = run_cli(["train.py", "--dataset", str(data), "--result_dir", str(tmp_path), "--run_name", "pn",
                 "--mode", "pynative", "--iterations", "2", "--print_freq", "1", "--arch", "photo2cartoon",
                 "--ngf", "8", "--img_size", "32", "--n_dis_global", "5", "--n_dis_local", "4", "-q",
                 "--lr", "0.05"])
    assert r.returncode == 0, r.stderr[-2000:]
    _assert_clamped(tmp_path / "pn" / "model")
    assert "face-ID loss off: no --faceid_weights given" in r.stdout
    assert "(pynative mode)" in r.stdout and "[     2/2]" in r.stdout
    meta = json.load(open(tmp_path / "pn" / "model" / "model.json"))
    assert meta["networks"]["genA2B"]["model"] == "ugatit_p2c_generator"


def test_data_stream_is_a_function_of_seed_and_index(digits, tmp_path):
    """What makes resume exact: sample k of a stream started at s equals sample s + k of a full stream;
    list files of the PaddleCV layout (`trainA.txt`) are read too."""
    from data.folders import domain_files
    from data.pipelines import UnpairedSource
    data, _, _ = digits
    fa, _ = domain_files(str(data), "trainA")
    fb, _ = domain_files(str(data), "trainB")
    full = UnpairedSource(fa, fb, 32, seed=7, start=0, length=700)
    late = UnpairedSource(fa, fb, 32, seed=7, start=650, length=50)
    for k in (0, 13, 49):   # crosses the epoch boundary at 600
        for x, y in zip(full[650 + k], late[k]):
            np.testing.assert_array_equal(x, y)
    other_seed = UnpairedSource(fa, fb, 32, seed=8, start=0, length=10)
    assert any(not np.array_equal(a[0], b[0]) for a, b in zip((full[i] for i in range(10)),
                                                             (other_seed[i] for i in range(10))))
    x = full[0][0]
    assert x.shape == (3, 32, 32) and x.dtype == np.float32 and -1.0 <= x.min() and x.max() <= 1.0
    # PaddleCV list-file layout: <root>/trainA.txt with relative paths, no trainA/ folder
    root = tmp_path / "paddle"
    (root / "imgs").mkdir(parents=True)
    for k in range(3):
        Image.fromarray(np.full((40, 40, 3), 60 * k, np.uint8)).save(root / "imgs" / f"{k}.png")
    (root / "trainA.txt").write_text("imgs/0.png\nimgs/1.png\nimgs/missing.png\nimgs/2.png\n")
    files, bad = domain_files(str(root), "trainA")
    assert [os.path.basename(f) for f in files] == ["0.png", "1.png", "2.png"]
    assert [(os.path.basename(f), why) for f, why in bad] == [("missing.png", "missing")]
