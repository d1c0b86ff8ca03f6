"""eval.py and metrics/: the FID Inception network against pytorch-fid itself (random weights in the
published layout, converted by convert_weights.py), FID equal to pytorch-fid's calculate_fid_given_paths,
its statistics files both ways, KID against a direct computation, and one-line errors."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from tests.helpers import run_cli
from torch_refs.inception_ref import patched_fid_weights, random_fid_weights


@pytest.fixture(scope="module")
def inception(tmp_path_factory):
    d = tmp_path_factory.mktemp("inception")
    src = random_fid_weights(str(d / "pt_inception-2015-12-05-6726825d.pth"), seed=0)
    r = run_cli(["convert_weights.py", "--src", src, "--dst", str(d / "model")])
    assert r.returncode == 0, r.stderr[-2000:]
    return src, d / "model"


def _images(folder, n, seed, size=(40, 48), shift=0.0):
    """n RGB images of smooth random blobs (a distribution the seed and shift set)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size[0], 0:size[1]] / max(size)
    for k in range(n):
        c = rng.uniform(0, 1, (3, 3))
        img = np.stack([np.sin(6 * (c[i, 0] * xx + c[i, 1] * yy) + 6 * c[i, 2]) for i in range(3)], -1)
        img = np.clip((img * 0.5 + 0.5 + shift) * 255 * rng.uniform(0.6, 1.0), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(folder / f"{k:03d}.png")
    return folder


def test_network_matches_pytorch_fid_at_every_block(inception):
    """pytorch-fid's InceptionV3([0, 1, 2, 3]) (resize to 299, scale to [-1, 1]) and the converted network:
    every block's output within 1e-4, for an upscaled and a downscaled input."""
    import mindspore as ms
    import models
    src, model = inception
    with patched_fid_weights(src) as inc:
        ref = inc.InceptionV3([0, 1, 2, 3]).eval()
    net = models.load_network(str(model), "inception", output_blocks=(0, 1, 2, 3))
    rng = np.random.default_rng(0)
    for shape in ((2, 3, 64, 80), (1, 3, 400, 360)):
        x = rng.uniform(0, 1, shape).astype(np.float32)
        with torch.no_grad():
            want = ref(torch.from_numpy(x))
        got = net(ms.Tensor(x))
        assert len(want) == len(got) == 4
        for w, g in zip(want, got):
            w, g = w.numpy(), g.asnumpy()
            assert w.shape == g.shape
            assert np.abs(w - g).max() <= 1e-4 * max(1.0, float(np.abs(w).max())), (shape, w.shape)
    meta = json.loads((model / "model.json").read_text())
    assert meta["arch"] == "inception" and meta["networks"]["inception"]["model"] == "fid_inception"


def test_fid_and_stats_equal_pytorch_fid(inception, tmp_path):
    """The same folders through pytorch-fid's calculate_fid_given_paths and eval.py (64 dims, 70 images each):
    FID within 1e-3 relative; eval.py's .npz is accepted by pytorch-fid and as --real, with the same FID."""
    src, model = inception
    real = _images(tmp_path / "real", 70, 1)
    fake = _images(tmp_path / "fake", 70, 2, shift=0.15)
    from torch_refs.inception_ref import pytorch_fid_inception
    pytorch_fid_inception()
    from pytorch_fid import fid_score
    with patched_fid_weights(src):
        want = fid_score.calculate_fid_given_paths([str(real), str(fake)], 50, "cpu", 64, num_workers=0)
    r = run_cli(["eval.py", "--real", str(real), "--fake", str(fake), "--inception", str(model), "--dims", "64",
                 "--json", str(tmp_path / "fid.json"), "-q"])
    assert r.returncode == 0, r.stderr[-2000:]
    got = json.loads((tmp_path / "fid.json").read_text())
    assert got["n_real"] == 70 and got["n_fake"] == 70 and got["dims"] == 64 and got["kid_mean"] is None
    assert want > 1e-3 and abs(got["fid"] - want) <= 1e-3 * want, (got["fid"], want)
    r = run_cli(["eval.py", "--save_stats", str(real), str(tmp_path / "real.npz"), "--inception", str(model),
                 "--dims", "64", "-q"])
    assert r.returncode == 0, r.stderr[-2000:]
    with patched_fid_weights(src):
        want_npz = fid_score.calculate_fid_given_paths([str(tmp_path / "real.npz"), str(fake)], 50, "cpu", 64,
                                                       num_workers=0)
    assert abs(want_npz - want) <= 1e-3 * want
    r = run_cli(["eval.py", "--real", str(tmp_path / "real.npz"), "--fake", str(fake), "--inception", str(model),
                 "--dims", "64", "--json", str(tmp_path / "fid2.json"), "-q"])
    assert r.returncode == 0, r.stderr[-2000:]
    assert abs(json.loads((tmp_path / "fid2.json").read_text())["fid"] - want) <= 1e-3 * want
    # a set against itself: 0
    r = run_cli(["eval.py", "--real", str(real), "--fake", str(real), "--inception", str(model), "--dims", "64",
                 "-q"])
    assert r.returncode == 0 and "FID 0.0000" in r.stdout.replace("-0.0000", "0.0000"), r.stdout


def _kid_direct(x, y):
    """The unbiased MMD^2 with k(a, b) = (a.b / d + 1)^3, written as the definition reads (pairwise sums)."""
    d, m = x.shape[1], len(x)

    def k(a, b):
        return (float(a @ b) / d + 1.0) ** 3
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return xx + yy - 2 * xy


def test_kid_is_the_unbiased_polynomial_mmd(inception, tmp_path):
    from metrics.fid import kernel_inception_distance
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (30, 16))
    y = rng.uniform(0.2, 1.2, (30, 16))
    mean, std = kernel_inception_distance(x, y, subsets=3, subset_size=30)   # every subset is the whole set
    assert std < 1e-12 and abs(mean - _kid_direct(x, y)) < 1e-9
    same, _ = kernel_inception_distance(x, rng.uniform(0, 1, (30, 16)), subsets=20, subset_size=20)
    assert abs(same) < 0.2 * mean
    src, model = inception
    real = _images(tmp_path / "real", 66, 1)
    fake = _images(tmp_path / "fake", 66, 2, shift=0.15)
    r = run_cli(["eval.py", "--real", str(real), "--fake", str(fake), "--inception", str(model), "--dims", "64",
                 "--kid", "--kid_subsets", "10", "--kid_subset_size", "50", "--json", str(tmp_path / "k.json"), "-q"])
    assert r.returncode == 0, r.stderr[-2000:]
    got = json.loads((tmp_path / "k.json").read_text())
    assert got["kid_mean"] > 0 and got["kid_std"] >= 0 and "KID" in r.stdout


def test_bad_inputs_are_one_line_errors(inception, tmp_path):
    src, model = inception
    real = _images(tmp_path / "real", 10, 1)
    (tmp_path / "empty").mkdir()
    (tmp_path / "broken").mkdir()
    for k in range(70):
        (tmp_path / "broken" / f"{k}.png").write_bytes(b"not a png")
    (tmp_path / "s.npz").write_bytes(b"junk")
    base = ["eval.py", "--inception", str(model), "-q"]
    for args, message in (
            (["--real", str(tmp_path / "empty"), "--fake", str(real)], "holds no images"),
            (["--real", str(real), "--fake", str(real), "--dims", "64"], "singular covariance"),
            (["--real", str(tmp_path / "broken"), "--fake", str(real), "--dims", "64"], "cannot read"),
            (["--real", str(tmp_path / "nope"), "--fake", str(real)], "not found"),
            (["--real", str(tmp_path / "s.npz"), "--fake", str(real), "--kid"], "--kid needs the real images"),
            (["--real", str(real), "--fake", str(real), "--inception", str(tmp_path / "none")], "no Inception weights"),
            (["--real", str(real)], "give --real and --fake")):
        r = run_cli(base + args)
        assert r.returncode != 0 and message in r.stderr and "Traceback" not in r.stderr, (args, r.stderr[-500:])
    r = run_cli(["convert_weights.py", "--src", src, "--dst", str(tmp_path / "again"), "--arch", "inception"])
    assert r.returncode == 0, r.stderr[-1000:]


def test_evaluation_while_training_scores_logs_and_keeps_the_best(inception, tmp_path):
    """train.py --eval_freq 2 on a CycleGAN toy with 70 test images per domain (64 dims): FID / KID of A2B and
    B2A logged at iterations 2 and 4, RUN/eval.jsonl, RUN/best/ a loadable model of the best mean FID with its
    best.json; without Inception weights, or asking 2048 dims of 70 images, one line says why."""
    from tests.helpers import make_digit_domains
    src, model = inception
    make_digit_domains(str(tmp_path / "toy"), size=32, n_train=40, n_test=70)
    args = ["train.py", "--model", "cyclegan", "--netG", "resnet_6blocks", "--ngf", "8", "--ndf", "8", "--img_size",
            "32", "-q", "--dataset", str(tmp_path / "toy"), "--result_dir", str(tmp_path), "--iterations", "4",
            "--batch_size", "2", "--print_freq", "2", "--save_freq", "4", "--sample_freq", "4", "--eval_freq", "2"]
    r = run_cli(args + ["--run_name", "ev", "--inception", str(model), "--eval_dims", "64"])
    assert r.returncode == 0, r.stderr[-2000:]
    assert "evaluating every 2 iterations" in r.stdout
    assert "[eval 2] A2B: FID" in r.stdout and "[eval 4] A2B: FID" in r.stdout and "B2A: FID" in r.stdout
    rows = [json.loads(x) for x in (tmp_path / "ev" / "eval.jsonl").read_text().splitlines()]
    assert [x["iteration"] for x in rows] == [2, 4]
    assert all(set(x["scores"]) == {"A2B", "B2A"} and x["scores"]["A2B"]["fid"] >= 0 for x in rows)
    best = json.loads((tmp_path / "ev" / "best" / "best.json").read_text())
    assert best["mean_fid"] == min(x["mean_fid"] for x in rows)
    import models
    models.load_network(str(tmp_path / "ev" / "best"), "G_A")
    r = run_cli(args + ["--run_name", "off", "--inception", str(tmp_path / "none")])
    assert r.returncode == 0 and "no Inception weights" in r.stdout and "[eval" not in r.stdout, r.stderr[-1000:]
    r = run_cli(args + ["--run_name", "big", "--inception", str(model)])
    assert r.returncode != 0 and "singular covariance" in r.stderr and "Traceback" not in r.stderr


def test_pix2pix_is_scored_against_its_test_targets(inception, tmp_path):
    """Pix2Pix: the test pairs' A halves translated, scored against their B halves (at their own size); the
    mean FID joins the loss curve."""
    from tests.helpers import make_digit_pairs
    src, model = inception
    make_digit_pairs(str(tmp_path / "pairs"), size=32, n_train=20, n_test=70)
    r = run_cli(["train.py", "--model", "pix2pix", "--netG", "resnet_6blocks", "--ngf", "8", "--ndf", "8",
                 "--img_size", "32", "-q", "--dataset", str(tmp_path / "pairs"), "--result_dir", str(tmp_path),
                 "--run_name", "p",
                 "--iterations", "4", "--batch_size", "2", "--print_freq", "1", "--save_freq", "4", "--sample_freq",
                 "4", "--eval_freq", "2", "--inception", str(model), "--eval_dims", "64"])
    assert r.returncode == 0, r.stderr[-2000:]
    assert "A2B (70 sources, 70 reals)" in r.stdout and "[eval 4] A2B: FID" in r.stdout
    assert (tmp_path / "p" / "best" / "best.json").is_file() and (tmp_path / "p" / "loss_curve.png").is_file()


def test_stargan_is_scored_per_target_domain(inception, tmp_path):
    """StarGAN: one set per domain, the test images without it translated into it (its test targets: a colour
    of the exclusive group switched on, the others off; Thick toggled on), against the test images with it,
    both at the training crop and size; the sets score in eval mode."""
    import mindspore as ms
    from families import get_family
    from metrics.during_training import TrainingEvaluator
    from tests.helpers import digit_grays, render_star_digit, write_celeba_layout
    grays = digit_grays(32)[:150]
    names = ["Red", "Green", "Thick"]
    k = np.arange(150)
    attrs = np.stack([k % 2, 1 - k % 2, (k // 2) % 2], 1)         # Red xor Green; Thick on half of each
    images = [render_star_digit(g, [a[0], a[1], 0, a[2]]) for g, a in zip(grays, attrs)]
    write_celeba_layout(str(tmp_path / "toy"), images, names, attrs, 10)
    fam = get_family("stargan")
    cfg = dict(fam.defaults("stargan"), selected_attrs=names, exclusive_attrs=["Red", "Green"], g_conv_dim=8,
               g_repeat_num=1, d_conv_dim=8, d_repeat_num=3, img_size=32, label_mode="attributes")
    sets = fam.eval_sets(cfg, str(tmp_path / "toy"))
    assert [s.name for s in sets] == ["to_Red", "to_Green", "to_Thick"]
    test = attrs[10:]
    for j, s in enumerate(sets):
        assert len(s.sources) == (test[:, j] == 0).sum() and len(s.real_files) == (test[:, j] == 1).sum()
        assert (s.conditions[:, j] == 1).all()
        if j < 2:                                    # the other colour of the group is switched off
            assert (s.conditions[:, 1 - j] == 0).all()
        else:                                        # a non-exclusive edit keeps the colours
            np.testing.assert_array_equal(s.conditions[:, :2], test[test[:, 2] == 0][:, :2])
        assert s.real_files[0].min() >= 0 and s.real_files[0].max() <= 1 and s.real_files[0].shape == (3, 32, 32)
    ms.set_seed(0)
    nets = fam.build_nets(cfg)
    for n in nets.values():
        n.set_train(False)
    scores = TrainingEvaluator(sets, str(inception[1]), 64).evaluate(nets)
    assert set(scores) == {"to_Red", "to_Green", "to_Thick"}
    assert all(v["fid"] > 0 and np.isfinite(v["kid_mean"]) for v in scores.values())
