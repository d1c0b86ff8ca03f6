"""STGAN / AttGAN: CelebA's attribute-list format, attribute conflicts and generator inputs, a learning test
on a toy attribute set judged by an independent classifier, exact resume with 5 critic steps per iteration,
and test.py's --edit / --slide / --edit all."""
import json

import numpy as np
import pytest
from PIL import Image

from tests.helpers import (DIGIT_ATTRS, digit_attribute_classifier, render_digit, run_cli,
                           run_history)

TOY = ["--model", "stgan", "--selected_attrs", *DIGIT_ATTRS, "--dim", "16", "--enc_layers", "3", "--dec_layers", "3",
       "--shortcut_layers", "2", "--inject_layers", "2", "--dis_dim", "16", "--dis_layers", "3",
       "--dis_fc_dim", "64", "--img_size", "32", "-q"]


ITERATIONS = "120"


@pytest.fixture
def toy(digit_attributes):
    return digit_attributes


def test_celeba_list_format_crop_and_conflicts(tmp_path):
    from data.celeba import CELEBA_13, DataError, apply_conflicts, load_face, read_attribute_list
    from inference.attributes import generator_input
    d = tmp_path / "celeba"
    (d / "img_align_celeba").mkdir(parents=True)
    names = ["5_o_Clock_Shadow"] + list(CELEBA_13)
    rows = []
    for k in range(3):
        img = np.zeros((218, 178, 3), np.uint8)
        img[26:196, 3:173] = 200                # the region CelebA's crop keeps
        Image.fromarray(img).save(d / "img_align_celeba" / f"{k:06d}.jpg")
        vals = ["1" if (j + k) % 3 == 0 else "-1" for j in range(len(names))]
        rows.append(f"{k:06d}.jpg  " + " ".join(vals))
    rows.append("999999.jpg " + " ".join(["-1"] * len(names)))       # listed, not on disk: skipped
    (d / "list_attr_celeba.txt").write_text(f"{len(rows)}\n{' '.join(names)}\n" + "\n".join(rows) + "\n")
    paths, attrs, bad, split = read_attribute_list(str(d), ["Bald", "Male", "Young"])
    assert len(paths) == 3 and len(bad) == 1 and bad[0][1] == "missing" and split["train"] == [0, 1, 2]
    col = {n: i for i, n in enumerate(names)}
    for k in range(3):
        assert list(attrs[k]) == [1.0 if (col[n] + k) % 3 == 0 else 0.0 for n in ("Bald", "Male", "Young")]
    face = load_face(paths[0], 64)
    assert face.shape == (3, 64, 64) and np.allclose(face, 200 / 127.5 - 1, atol=0.02)   # the crop, not the border
    with pytest.raises(DataError, match="no attribute Smiling_Wide"):
        read_attribute_list(str(d), ["Bald", "Smiling_Wide"])
    # conflicts: Bald turns Bangs off; one hair colour at a time
    names13 = list(CELEBA_13)
    a = np.zeros(13, np.float32)
    a[names13.index("Bangs")] = a[names13.index("Black_Hair")] = 1.0
    a[names13.index("Bald")] = 1.0
    apply_conflicts(a, names13, "Bald")
    assert a[names13.index("Bangs")] == 0.0 and a[names13.index("Black_Hair")] == 1.0
    a[names13.index("Blond_Hair")] = 1.0
    apply_conflicts(a, names13, "Blond_Hair")
    assert a[names13.index("Black_Hair")] == 0.0
    # generator inputs: +-thres_int, STGAN's difference, AttGAN's target, the slider value
    src, tgt = np.array([1, 0, 0], np.float32), np.array([1, 1, 0], np.float32)
    assert np.allclose(generator_input(src, tgt, 0.5, "diff"), [0, 1, 0])
    assert np.allclose(generator_input(src, tgt, 0.5, "target"), [0.5, 0.5, -0.5])
    assert np.allclose(generator_input(src, tgt, 0.5, "diff", 1, 0.25), [0, 0.75, 0])


def _edit_accuracy(net, grays, attrs, classify):
    """Toggle each attribute of each test image at full intensity; the share the classifier reads as toggled,
    and the share of the other attributes it reads as unchanged."""
    import mindspore as ms
    from inference.attributes import generator_input
    x = np.stack([render_digit(g, a) for g, a in zip(grays, attrs)]).astype(np.float32)
    x = np.ascontiguousarray((x / 127.5 - 1.0).transpose(0, 3, 1, 2))
    hit, kept = [], []
    for k in range(attrs.shape[1]):
        tgt = attrs.copy()
        tgt[:, k] = 1 - tgt[:, k]
        inp = np.stack([generator_input(a, t, 0.5, "diff", k, 1.0 if t[k] else -1.0) for a, t in zip(attrs, tgt)])
        y = net(ms.Tensor(x), ms.Tensor(inp)).asnumpy()
        pred = classify(np.clip((y.transpose(0, 2, 3, 1) + 1) * 127.5 + 0.5, 0, 255).astype(np.uint8))
        hit.append(float((pred[:, k] == tgt[:, k]).mean()))
        kept.append(float((np.delete(pred, k, 1) == np.delete(tgt, k, 1)).mean()))
    return float(np.mean(hit)), float(np.mean(kept))


def test_stgan_learns_the_toy_edits(toy, tmp_path):
    """Digits with Inverted / Dim / Red attributes (CelebA format), STGAN losses and WGAN-GP with 5 critic
    steps, batch 16, lr 1e-3, 120 iterations. An MLP per attribute, trained on ground-truth renders of other
    digits (100% on held-out renders), judges each edit. Measured when written: edit accuracy 0.89 (Inverted
    0.67, Dim 1.0, Red 1.0), the other attributes kept 0.97."""
    import mindspore as ms
    import models
    from families import get_family
    fam = get_family("stgan")
    root, grays, attrs = toy
    classify = digit_attribute_classifier(32)
    truth = np.stack([render_digit(g, a) for g, a in zip(grays, attrs)])
    assert (classify(truth) == attrs).mean() > 0.95
    cfg = dict(fam.defaults("stgan"), selected_attrs=list(DIGIT_ATTRS), dim=16, enc_layers=3, dec_layers=3,
               shortcut_layers=2, inject_layers=2, dis_dim=16, dis_layers=3, dis_fc_dim=64, img_size=32)
    ms.set_seed(0)
    untrained = fam.build_nets(cfg)["G"]
    untrained.set_train(False)
    before, _ = _edit_accuracy(untrained, grays, attrs, classify)
    r = run_cli(["train.py", "--dataset", str(root), "--result_dir", str(tmp_path), "--run_name", "s",
                 "--iterations", ITERATIONS, "--batch_size", "16", "--lr", "1e-3", "--print_freq", "25",
                 "--save_freq", ITERATIONS, "--sample_freq", ITERATIONS] + TOY, timeout=1800)
    assert r.returncode == 0, r.stderr[-2000:]
    after, kept = _edit_accuracy(models.load_network(str(tmp_path / "s" / "model"), "G"), grays, attrs, classify)
    print(f"edit accuracy: untrained {before:.3f}, trained {after:.3f} (other attributes kept {kept:.3f})")
    assert before < 0.6
    assert after > 0.75 and kept > 0.8, (after, kept)
    assert "D_gp" in r.stdout and "G_att" in r.stdout
    meta = json.loads((tmp_path / "s" / "model" / "model.json").read_text())
    assert meta["attributes"] == {"selected_attrs": list(DIGIT_ATTRS), "thres_int": 0.5, "label": "diff"}
    # test.py on a digit: a 5-step slider strip, and every attribute at once
    photo = tmp_path / "digit.png"
    Image.fromarray(truth[0]).save(photo)
    present = " ".join(n for n, v in zip(DIGIT_ATTRS, attrs[0]) if v)
    out = tmp_path / "edits"
    common = ["test.py", "--model", "stgan", "--checkpoint", str(tmp_path / "s" / "model"), "--photo_path",
              str(photo), "--preprocess", "resize", "--attrs", present]
    r = run_cli(common + ["--edit", "Red", "--slide", "-1:1:5", "--save_path", str(out / "strip.png")])
    assert r.returncode == 0, r.stderr[-2000:]
    assert Image.open(out / "strip.png").size == (32 * 6, 32)
    r = run_cli(common + ["--edit", "all", "--save_path", str(out / "all.png")])
    assert r.returncode == 0, r.stderr[-2000:]
    assert Image.open(out / "all.png").size == (32 * 2, 32 * 3)
    for args, message in ((["--edit", "Bald"], "not an attribute of this model"),
                          (["--edit", "Red", "--attrs", "Smiling"], "unknown attribute Smiling"),
                          (["--edit", "Red", "--slide", "1:2"], "expected MIN:MAX:COUNT"),
                          ([], "needs --edit")):
        r = run_cli(common + args + ["--save_path", str(out / "x.png")])
        assert r.returncode != 0 and message in r.stderr and "Traceback" not in r.stderr, (args, r.stderr[-600:])


# The resume check runs the kernels on one thread. With two, under pytest, about half the runs of even the
# uninterrupted training gave losses that differ run to run (2.6e-5 relative at iteration 3, 4.6e-4 at
# iteration 4). Not seen with FACEGAN_NATIVE_THREADS=1, nor with FACEGAN_NATIVE=0; the cause is open. One
# thread keeps this test about resume, at its original rtol.
ONE_THREAD = {"FACEGAN_NATIVE_THREADS": "1"}


def test_resume_with_five_critic_steps_is_exact(toy, tmp_path):
    """2 iterations, then --resume to 4, equals 4 straight (constant lr; 5 D batches per iteration)."""
    root, _, _ = toy
    common = ["train.py", "--dataset", str(root), "--result_dir", str(tmp_path), "--batch_size", "4",
              "--print_freq", "1", "--save_freq", "2", "--sample_freq", "100", "--no_decay", "--seed", "2"] + TOY
    r = run_cli(common + ["--run_name", "straight", "--iterations", "4"], env_extra=ONE_THREAD)
    assert r.returncode == 0, r.stderr[-2000:]
    r = run_cli(common + ["--run_name", "split", "--iterations", "2"], env_extra=ONE_THREAD)
    assert r.returncode == 0, r.stderr[-2000:]
    r = run_cli(common + ["--run_name", "split", "--iterations", "4", "--resume"], env_extra=ONE_THREAD)
    assert r.returncode == 0 and "at iteration 2" in r.stdout, r.stderr[-2000:]
    h1, h2 = run_history(tmp_path / "straight"), run_history(tmp_path / "split")
    assert [h[0] for h in h2] == [1, 2, 3, 4]
    for a, b in zip(h1, h2):
        np.testing.assert_allclose([a[1], a[2]], [b[1], b[2]], rtol=1e-5, err_msg=f"iteration {a[0]}")


def test_pynative_mode_is_refused_with_the_reason(toy, tmp_path):
    """MindSpore 2.10's PyNative second-order gradients drop the critic's dense-layer terms of the penalty
    (tests/test_losses.py), so train.py refuses the mode instead of training a wrong critic."""
    root, _, _ = toy
    r = run_cli(["train.py", "--dataset", str(root), "--result_dir", str(tmp_path), "--run_name", "p",
                 "--iterations", "2", "--mode", "pynative"] + TOY)
    assert r.returncode != 0 and "Traceback" not in r.stderr, r.stderr[-600:]
    assert "--mode pynative cannot train STGAN" in r.stderr
    assert not (tmp_path / "p").exists()
