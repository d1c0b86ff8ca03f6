"""Attribute editing accuracy (metrics/attributes.py, eval.py --attr_accuracy) and the attribute classifier
family: how edits are counted, and the one-line errors. The end-to-end checks on trained toy models live in
the STGAN and StarGAN learning tests."""
import numpy as np
from PIL import Image

from tests.helpers import (DIGIT_ATTRS, assert_resume_after_sigkill_is_exact, digit_grays, make_digit_attributes,
                           render_digit, run_cli, write_celeba_layout)


def _oracle_read(images):
    """Reads the toy's attributes from renders of known digits exactly (the test's own ground truth)."""
    return np.stack([_TRUTH[img.tobytes()] for img in _as_u8(images)])


_TRUTH = {}


def _as_u8(x):
    return np.clip((x.transpose(0, 2, 3, 1) + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8)


def _unit(imgs):
    return np.stack([i.astype(np.float32).transpose(2, 0, 1) / 127.5 - 1.0 for i in imgs])


def test_edits_are_counted_against_the_target_and_the_other_attributes_as_kept():
    """A perfect editor scores 1 everywhere; the identity scores 0 on the edited attribute and 1 on the kept
    ones; an editor that flips everything scores 1 and 0; an attribute the classifier does not read is left
    out. Every image of all 8 attribute sets, so each value is exact."""
    from metrics.attributes import editing_accuracy
    gray = digit_grays(16)[0]
    sets = np.array([[a, b, c] for a in (0, 1) for b in (0, 1) for c in (0, 1)], np.float32)
    renders = {tuple(s): render_digit(gray, s) for s in sets}
    _TRUTH.clear()
    _TRUTH.update({img.tobytes(): np.array(s, np.float32) for s, img in renders.items()})
    x = _unit([renders[tuple(s)] for s in sets])

    def toggled(attrs, k):
        t = attrs.copy()
        t[:, k] = 1 - t[:, k]
        return t

    def perfect(x, attrs, k):
        t = toggled(attrs, k)
        return _unit([renders[tuple(r)] for r in t]), t

    def identity(x, attrs, k):
        return x, toggled(attrs, k)

    def flip_all(x, attrs, k):
        return _unit([renders[tuple(1 - r)] for r in attrs]), toggled(attrs, k)

    names = list(DIGIT_ATTRS)
    for edit, acc, kept in ((perfect, 1.0, 1.0), (identity, 0.0, 1.0), (flip_all, 1.0, 0.0)):
        scores = editing_accuracy(edit, _oracle_read, x, sets, names, names)
        assert set(scores) == set(names)
        for s in scores.values():
            assert (s["accuracy"], s["kept"], s["n"]) == (acc, kept, 8), (edit.__name__, scores)
    # a classifier that reads only Dim and Red: Inverted is not scored, and not counted as kept either
    part = editing_accuracy(identity, lambda im: _oracle_read(im)[:, 1:], x, sets, names, names[1:])
    assert set(part) == {"Dim", "Red"} and part["Dim"] == {"accuracy": 0.0, "kept": 1.0, "n": 8}


def test_classifier_cli_and_one_line_errors(tmp_path):
    """train.py --model attr_classifier's model dir (here untrained, exported as training does) serves
    test.py and eval.py --classifier; wrong model dirs, missing arguments and datasets without the attributes
    are one-line errors."""
    import mindspore as ms
    from families import get_family
    grays = digit_grays(32)[:12]
    rng = np.random.default_rng(0)
    attrs = rng.integers(0, 2, (12, 3))
    root = tmp_path / "toy"
    write_celeba_layout(str(root), [render_digit(g, a) for g, a in zip(grays, attrs)], DIGIT_ATTRS, attrs, 8)
    clf_fam, st_fam = get_family("attr_classifier"), get_family("stgan")
    ccfg = dict(clf_fam.defaults("attr_classifier"), selected_attrs=list(DIGIT_ATTRS), img_size=32, dim=8,
                n_layers=3, fc_dim=16)
    scfg = dict(st_fam.defaults("stgan"), selected_attrs=["Dim", "Red"], dim=8, enc_layers=3, dec_layers=3,
                shortcut_layers=1, inject_layers=1, dis_dim=8, dis_layers=3, dis_fc_dim=16, img_size=32)
    ms.set_seed(0)
    clf_fam.export(clf_fam.build_nets(ccfg), ccfg, str(tmp_path / "clf"))
    st_fam.export(st_fam.build_nets(scfg), scfg, str(tmp_path / "stgan"))

    r = run_cli(["eval.py", "--classifier", str(tmp_path / "clf"), "--dataset", str(root), "-q",
                 "--json", str(tmp_path / "c.json")])
    assert r.returncode == 0 and "(4 test images)" in r.stdout, r.stderr[-1500:]
    r = run_cli(["eval.py", "--attr_accuracy", "--checkpoint", str(tmp_path / "stgan"), "--classifier",
                 str(tmp_path / "clf"), "--dataset", str(root), "-q"])
    assert r.returncode == 0 and "Dim" in r.stdout and "Inverted " not in r.stdout, r.stderr[-1500:]
    Image.fromarray(render_digit(grays[0], attrs[0])).save(tmp_path / "d.png")
    r = run_cli(["test.py", "--model", "attr_classifier", "--checkpoint", str(tmp_path / "clf"), "--photo_path",
                 str(tmp_path / "d.png"), "--preprocess", "resize", "--save_path", str(tmp_path / "out.png")])
    assert r.returncode == 0 and "Inverted:" in r.stdout, r.stderr[-1500:]
    assert Image.open(tmp_path / "out.png").size == (128 + 220, 128)

    (tmp_path / "other").mkdir()
    write_celeba_layout(str(tmp_path / "other"), [render_digit(grays[0], attrs[0])] * 2, ["Smiling"], [[1], [0]], 1)
    base = ["eval.py", "-q", "--dataset", str(root)]
    for args, message in (
            (["--attr_accuracy", "--classifier", str(tmp_path / "clf")], "needs --checkpoint"),
            (["--classifier", str(tmp_path / "clf"), "--dataset", ""], "needs --dataset"),
            (["--classifier", str(tmp_path / "stgan")], "not an attribute classifier"),
            (["--attr_accuracy", "--checkpoint", str(tmp_path / "clf"), "--classifier", str(tmp_path / "clf")],
             "not an attribute editing one"),
            (["--classifier", str(tmp_path / "clf"), "--dataset", str(tmp_path / "other")], "has no attribute"),
            (["--classifier", str(tmp_path / "nope")], "not found"),
            (["--classifier", str(tmp_path / "clf"), "--max_images", "0"], "at least 1")):
        r = run_cli(base + args)
        assert r.returncode != 0 and message in r.stderr and "Traceback" not in r.stderr, (args, r.stderr[-800:])


def test_classifier_training_resumes_exactly_after_sigkill(tmp_path):
    """The one-optimiser path of the engine (no discriminator): a killed run resumes to the same losses and
    weights."""
    make_digit_attributes(str(tmp_path / "toy"), size=32, n_train=200, n_test=8)
    assert_resume_after_sigkill_is_exact(
        ["--model", "attr_classifier", "--dataset", str(tmp_path / "toy"), "--selected_attrs", *DIGIT_ATTRS,
         "--img_size", "32", "--dim", "8", "--n_layers", "3", "--fc_dim", "16", "--batch_size", "8",
         "--save_freq", "100", "-q"], tmp_path, kill_after=100, total=400, nets=("C",))
