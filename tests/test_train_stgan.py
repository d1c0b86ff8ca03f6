"""STGAN / AttGAN: CelebA's attribute-list format, attribute conflicts and generator inputs, learning tests
on a toy attribute set judged per attribute by an independent classifier, exact resume after SIGKILL with 5
critic steps per iteration, and test.py's --edit / --slide / --intensity / --edit all / the face front end."""
import json

import numpy as np
import pytest
from PIL import Image

from tests.helpers import (DIGIT_ATTRS, assert_resume_after_sigkill_is_exact, attr_accuracy,
                           digit_attribute_classifier, render_digit, run_cli, train_attr_classifier)

TOY = ["--model", "stgan", "--selected_attrs", *DIGIT_ATTRS, "--dim", "16", "--enc_layers", "3", "--dec_layers", "3",
       "--shortcut_layers", "2", "--inject_layers", "2", "--dis_dim", "16", "--dis_layers", "3",
       "--dis_fc_dim", "64", "--img_size", "32", "-q"]


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


def _edits(net, x, attrs, label, intensity=1.0):
    """For each attribute k: the generator's output with k toggled at `intensity` (the toy's full edit), and the
    target attributes."""
    import mindspore as ms
    from inference.attributes import generator_input
    outs = []
    for k in range(attrs.shape[1]):
        tgt = attrs.copy()
        tgt[:, k] = 1 - tgt[:, k]
        inp = np.stack([generator_input(a, t, 0.5, label, k, intensity if t[k] else -intensity)
                        for a, t in zip(attrs, tgt)])
        outs.append((net(ms.Tensor(x), ms.Tensor(inp)).asnumpy(), tgt))
    return outs


def _judge_edits(trained, untrained, grays, attrs, classify, label):
    """Per attribute: the share of edited test digits an independent classifier reads as toggled, against the
    untrained generator, the identity (no edit) and the best constant image; and the share of the other
    attributes it reads as kept."""
    from tests.learning import best_constant, judge_attribute, to_uint8, to_unit
    x_img = np.stack([render_digit(g, a) for g, a in zip(grays, attrs)])
    x = to_unit(x_img)
    as_is, const = classify(x_img), classify(to_uint8(best_constant(x)))
    verdicts, kept = {}, {}
    for k, ((y, tgt), (y0, _)) in enumerate(zip(_edits(trained, x, attrs, label), _edits(untrained, x, attrs, label))):
        pred, pred0 = classify(to_uint8(y)), classify(to_uint8(y0))
        verdicts[DIGIT_ATTRS[k]] = judge_attribute(pred[:, k], tgt[:, k], {
            "untrained": pred0[:, k], "identity": as_is[:, k], "constant": const[:, k]})
        kept[DIGIT_ATTRS[k]] = float((np.delete(pred, k, 1) == np.delete(tgt, k, 1)).mean())
    return verdicts, kept


def _train_and_judge(toy, tmp_path, arch, iterations):
    import mindspore as ms
    import models
    from families import get_family
    fam = get_family("stgan")
    root, grays, attrs = toy
    classify = digit_attribute_classifier(32)
    truth = np.stack([render_digit(g, a) for g, a in zip(grays, attrs)])
    assert (classify(truth) == attrs).mean() > 0.95          # the judge itself reads true renders
    cfg = dict(fam.defaults(arch), selected_attrs=list(DIGIT_ATTRS), dim=16, enc_layers=3, dec_layers=3,
               shortcut_layers=2, inject_layers=2, dis_dim=16, dis_layers=3, dis_fc_dim=64, img_size=32)
    ms.set_seed(0)
    untrained_nets = fam.build_nets(cfg)
    untrained = untrained_nets["G"]
    untrained.set_train(False)
    fam.export(untrained_nets, cfg, str(tmp_path / "untrained"))
    r = run_cli(["train.py", "--dataset", str(root), "--result_dir", str(tmp_path), "--run_name", arch,
                 "--arch", arch, "--iterations", str(iterations), "--batch_size", "16", "--lr", "1e-3",
                 "--print_freq", "25", "--save_freq", str(iterations), "--sample_freq", str(iterations)] + TOY,
                timeout=1800)
    assert r.returncode == 0, r.stderr[-2000:]
    model = tmp_path / arch / "model"
    verdicts, kept = _judge_edits(models.load_network(str(model), "G"), untrained, grays, attrs, classify,
                                  cfg["label"])
    for name, v in verdicts.items():
        print(f"{arch} {name}: {v}; other attributes kept {kept[name]:.3f}")
    failed = {n: str(v) for n, v in verdicts.items() if not v.passed}
    assert not failed, failed
    assert min(kept.values()) > 0.8, kept
    assert "D_gp" in r.stdout and "G_att" in r.stdout
    return model, truth, attrs, verdicts


def test_stgan_learns_each_toy_edit_and_test_py_serves_it(toy, tmp_path):
    """Digits with Inverted / Dim / Red attributes (CelebA format), STGAN losses and WGAN-GP with 5 critic
    steps, batch 16, lr 1e-3, 120 iterations. An MLP per attribute, trained on ground-truth renders of other
    digits, judges each edit; each attribute must beat its own baselines (tests/learning.py). Measured when
    written: Inverted 0.833, Dim 1.0, Red 1.0 (baselines at most 0.21, 0.58, 0.67), other attributes kept
    0.96-1.0."""
    model, truth, attrs, verdicts = _train_and_judge(toy, tmp_path, "stgan", 120)
    # eval.py --attr_accuracy with a classifier the project trains: it agrees with the independent judge,
    # and the untrained generator scores far lower
    clf = train_attr_classifier(toy[0], DIGIT_ATTRS, tmp_path)
    trained = attr_accuracy(model, clf, toy[0], tmp_path / "trained.json")
    untrained = attr_accuracy(tmp_path / "untrained", clf, toy[0], tmp_path / "untrained.json")
    assert min(trained["classifier_accuracy"].values()) >= 0.95, trained
    for name, v in verdicts.items():
        assert abs(trained["attributes"][name]["accuracy"] - v.score) <= 0.15, (name, trained, str(v))
    assert trained["mean_accuracy"] >= untrained["mean_accuracy"] + 0.25, (trained, untrained)
    assert trained["n_images"] == len(attrs)
    meta = json.loads((model / "model.json").read_text())
    assert meta["attributes"] == {"selected_attrs": list(DIGIT_ATTRS), "thres_int": 0.5, "label": "diff"}
    # test.py on a digit: a slider strip whose edit grows with the intensity, one intensity, every attribute
    photo = tmp_path / "digit.png"
    Image.fromarray(truth[0]).save(photo)
    present = " ".join(n for n, v in zip(DIGIT_ATTRS, attrs[0]) if v)
    out = tmp_path / "edits"
    common = ["test.py", "--model", "stgan", "--checkpoint", str(model), "--photo_path", str(photo),
              "--preprocess", "resize", "--attrs", present]
    r = run_cli(common + ["--edit", "Dim", "--slide", "0:1:5", "--save_path", str(out / "strip.png")])
    assert r.returncode == 0, r.stderr[-2000:]
    strip = np.asarray(Image.open(out / "strip.png").convert("RGB"), np.float32)
    assert strip.shape == (32, 32 * 6, 3)
    tiles = [strip[:, 32 * i:32 * (i + 1)] for i in range(6)]          # the input, then intensities 0 .. 1
    change = [float(np.abs(t - tiles[1]).mean()) for t in tiles[1:]]   # distance from the intensity-0 edit
    assert all(b > a for a, b in zip(change, change[1:])), change       # the edit grows with the slider
    assert change[-1] > 20, change
    r = run_cli(common + ["--edit", "Dim", "--intensity", "0.5", "--save_path", str(out / "half.png")])
    assert r.returncode == 0, r.stderr[-2000:]
    half = np.asarray(Image.open(out / "half.png").convert("RGB"), np.float32)
    assert half.shape == (32, 32, 3)
    assert np.abs(half - tiles[3]).mean() < 1.0                        # --intensity 0.5: the strip's middle
    r = run_cli(common + ["--edit", "all", "--save_path", str(out / "all.png")])
    assert r.returncode == 0, r.stderr[-2000:]
    assert Image.open(out / "all.png").size == (32 * 2, 32 * 3)
    r = run_cli(common + ["--edit", "Red", "--slide", "-1:1:5", "--save_path", str(out / "neg.png")])
    assert r.returncode == 0, r.stderr[-2000:]                          # a negative start, as users type it
    for args, message in ((["--edit", "Bald"], "not an attribute of this model"),
                          (["--edit", "Red", "--attrs", "Smiling"], "unknown attribute Smiling"),
                          (["--edit", "Red", "--slide", "1:2"], "expected MIN:MAX:COUNT"),
                          ([], "needs --edit")):
        r = run_cli(common + args + ["--save_path", str(out / "x.png")])
        assert r.returncode != 0 and message in r.stderr and "Traceback" not in r.stderr, (args, r.stderr[-600:])
    # the face front end path: a portrait is aligned, then edited at the model's size
    from skimage import data as skdata
    Image.fromarray(skdata.astronaut()).save(tmp_path / "astronaut.jpg")
    r = run_cli(["test.py", "--model", "stgan", "--checkpoint", str(model), "--photo_path",
                 str(tmp_path / "astronaut.jpg"), "--edit", "Red", "--save_path", str(out / "face.png")])
    assert r.returncode == 0, r.stderr[-2000:]
    assert Image.open(out / "face.png").size == (32, 32)


@pytest.mark.slow   # make test-slow: AttGAN is this family with the STU off and target labels; the STGAN test above
#                    trains the same loop and losses on every suite run, and attgan_G's parity row checks the network
def test_attgan_learns_each_toy_edit(toy, tmp_path):
    """AttGAN (STU off, target attributes): the same toy and judge, 200 iterations. Measured when written:
    Inverted, Dim and Red 1.0, other attributes kept 0.92-1.0."""
    model, _, _, _ = _train_and_judge(toy, tmp_path, "attgan", 200)
    assert json.loads((model / "model.json").read_text())["attributes"]["label"] == "target"


def test_resume_after_sigkill_is_exact(toy, tmp_path):
    """Killed after the checkpoint of iteration 2 of 5 (5 critic batches per iteration, lr dropped halfway),
    then resumed: the same losses as a straight run, at the default kernel thread count."""
    root, _, _ = toy
    assert_resume_after_sigkill_is_exact(["--dataset", str(root), "--batch_size", "4", "--save_freq", "2",
                                          "--seed", "2"] + TOY, tmp_path, kill_after=2, total=5, nets=("G", "D"))


def test_pynative_mode_is_refused_with_the_reason(toy, tmp_path):
    """MindSpore 2.10's PyNative second-order gradients drop the critic's dense-layer terms of the penalty
    (tests/test_losses.py), so train.py refuses the mode instead of training a wrong critic."""
    root, _, _ = toy
    r = run_cli(["train.py", "--dataset", str(root), "--result_dir", str(tmp_path), "--run_name", "p",
                 "--iterations", "2", "--mode", "pynative"] + TOY)
    assert r.returncode != 0 and "Traceback" not in r.stderr, r.stderr[-600:]
    assert "--mode pynative cannot train STGAN" in r.stderr
    assert not (tmp_path / "p").exists()
