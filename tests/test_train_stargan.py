"""StarGAN: a learning test on a toy multi-domain set in CelebA's format (one colour of three, as hair
colours, and a stroke weight), judged per domain by independent classifiers with baselines; folder-per-domain
data (RaFD's layout, cross-entropy); exact resume after SIGKILL; test.py's strips, --edit, --stats and errors."""
import json

import numpy as np
import pytest
from PIL import Image

from tests.helpers import (STAR_ATTRS, assert_resume_after_sigkill_is_exact, attr_accuracy, digit_labels,
                           make_star_digits, render_star_digit, run_cli, star_classifier, star_digit_reader,
                           train_attr_classifier)

SIZES = ["--model", "stargan", "--g_conv_dim", "16", "--g_repeat_num", "2", "--d_conv_dim", "16",
         "--d_repeat_num", "3", "--img_size", "32", "-q"]
TOY = SIZES + ["--selected_attrs", *STAR_ATTRS, "--exclusive_attrs", "Red", "Green", "Blue"]
EXCLUSIVE = ["Red", "Green", "Blue"]


@pytest.fixture(scope="module")
def star(tmp_path_factory):
    root = tmp_path_factory.mktemp("star") / "toy"
    grays, attrs = make_star_digits(str(root), size=32)
    n_train = 600
    digits = digit_labels()[n_train:n_train + len(grays)]
    return root, grays, attrs, digits


def test_target_labels_follow_the_original():
    """One row per domain: an exclusive attribute (a hair colour) is switched on and the rest of its group
    off; any other attribute is toggled; folder domains are one-hot."""
    from families.stargan import target_labels
    names = ["Black_Hair", "Blond_Hair", "Male", "Young"]
    t = target_labels(np.array([1, 0, 1, 0], np.float32), names, ["Black_Hair", "Blond_Hair"], False)
    assert t.tolist() == [[1, 0, 1, 0], [0, 1, 1, 0], [1, 0, 0, 0], [1, 0, 1, 1]]
    assert target_labels(np.zeros(3, np.float32), ["a", "b", "c"], [], True).tolist() == np.eye(3).tolist()


def _judge(G, untrained, grays, attrs, digits):
    """Per domain: the share of test digits translated to it that the classifiers read with that domain's
    label AND as the same digit (an edit must keep the content), against the untrained generator, the
    identity and the best constant image."""
    import mindspore as ms
    from families.stargan import target_labels
    from tests.learning import best_constant, judge_attribute, to_uint8, to_unit
    read_attrs, read_digit = star_classifier(32), star_digit_reader(32)
    x_img = np.stack([render_star_digit(g, a) for g, a in zip(grays, attrs)])
    assert (read_attrs(x_img) == attrs).mean() > 0.95 and (read_digit(x_img) == digits).mean() > 0.9
    x = to_unit(x_img)
    names = list(STAR_ATTRS)
    verdicts = {}
    for k, name in enumerate(names):
        tgt = np.stack([target_labels(a, names, EXCLUSIVE, False)[k] for a in attrs.astype(np.float32)])

        def right(images):
            return (read_attrs(images)[:, k] == tgt[:, k]) & (read_digit(images) == digits)
        outs = {n: to_uint8(net(ms.Tensor(x), ms.Tensor(tgt)).asnumpy()) for n, net in (("G", G), ("u", untrained))}
        verdicts[name] = judge_attribute(right(outs["G"]), True, {
            "untrained": right(outs["u"]), "identity": right(x_img), "constant": right(to_uint8(best_constant(x)))})
    return verdicts


def test_stargan_learns_each_toy_domain_and_test_py_serves_it(star, tmp_path):
    """250 iterations (5 critic steps each), batch 16, lr 5e-4 decaying to 0, seed 2. Each domain must beat its
    baselines by 0.25 and reach 0.75 (tests/learning.py), reading both the domain and the digit. Measured on 24
    test digits: Red 0.96, Green 0.96, Blue 0.96, Thick 0.92 (best baselines: identity 0.42, 0.25, 0.29,
    constant / untrained 0.08).
    This toy sometimes collapses: the colour is edited right but the digit is lost (every score 0). Measured
    on the CPU kernels, seeds 0-3 at lr 5e-4: seeds 0, 1 and 2 learn (Thick 0.79, 0.88, 0.92), seed 3
    collapses, as it did with lr 1e-3, with a discriminator twice as wide and with batch 32; at lr 1e-3 seed 0
    learned or collapsed depending on float rounding alone (the norm's kernel or MindSpore's ops, the kernels'
    thread count). Hence the lower rate, and a seed with margin."""
    import mindspore as ms
    import models
    from families import get_family
    from models.stargan import use_instance_stats
    root, grays, attrs, digits = star
    fam = get_family("stargan")
    cfg = dict(fam.defaults("stargan"), selected_attrs=list(STAR_ATTRS), g_conv_dim=16, g_repeat_num=2,
               d_conv_dim=16, d_repeat_num=3, img_size=32, label_mode="attributes", exclusive_attrs=EXCLUSIVE)
    ms.set_seed(0)
    untrained_nets = fam.build_nets(cfg)
    fam.export(untrained_nets, cfg, str(tmp_path / "untrained"))
    untrained = use_instance_stats(untrained_nets["G"])
    untrained.set_train(False)
    r = run_cli(["train.py", "--dataset", str(root), "--result_dir", str(tmp_path), "--run_name", "star",
                 "--iterations", "250", "--batch_size", "16", "--lr", "5e-4", "--seed", "2", "--print_freq", "50",
                 "--save_freq", "250", "--sample_freq", "250"] + TOY, timeout=1800)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "D_gp" in r.stdout and "G_cls" in r.stdout and "G_rec" in r.stdout
    model = tmp_path / "star" / "model"
    meta = json.loads((model / "model.json").read_text())
    assert meta["domains"] == {"names": list(STAR_ATTRS), "exclusive": EXCLUSIVE, "label_mode": "attributes",
                               "img_size": 32}
    G = use_instance_stats(models.load_network(str(model), "G"))
    G.set_train(False)
    verdicts = _judge(G, untrained, grays, attrs, digits)
    for name, v in verdicts.items():
        print(f"stargan {name}: {v}")
    failed = {n: str(v) for n, v in verdicts.items() if not v.passed}
    assert not failed, failed
    assert Image.open(tmp_path / "star" / "samples" / "0000250.png").size == (32 * 5, 32 * 4)
    # eval.py --attr_accuracy (StarGAN's targets: a colour switched on, Thick toggled), read by a classifier
    # trained on StarGAN's crop: every domain edited, far above the untrained generator
    clf = train_attr_classifier(root, STAR_ATTRS, tmp_path, crop="stargan")
    trained = attr_accuracy(model, clf, root, tmp_path / "trained.json")
    before = attr_accuracy(tmp_path / "untrained", clf, root, tmp_path / "untrained.json")
    assert min(trained["classifier_accuracy"].values()) >= 0.95, trained
    assert min(v["accuracy"] for v in trained["attributes"].values()) >= 0.75, trained
    assert trained["mean_accuracy"] >= before["mean_accuracy"] + 0.25, (trained, before)

    # test.py: the strip (input, then each domain) equals the model's own forward on each target
    from families.stargan import target_labels
    from tests.learning import to_unit
    photo = tmp_path / "digit.png"
    truth = render_star_digit(grays[0], attrs[0])
    Image.fromarray(truth).save(photo)
    present = " ".join(n for n, v in zip(STAR_ATTRS, attrs[0]) if v)
    common = ["test.py", "--model", "stargan", "--checkpoint", str(model), "--photo_path", str(photo),
              "--preprocess", "resize", "--attrs", present]
    r = run_cli(common + ["--save_path", str(tmp_path / "out" / "strip.png")])
    assert r.returncode == 0, r.stderr[-2000:]
    assert "each image" in r.stdout
    strip = np.asarray(Image.open(tmp_path / "out" / "strip.png").convert("RGB"), np.float32)
    assert strip.shape == (32, 32 * 5, 3)
    assert np.abs(strip[:, :32] - truth).max() == 0
    tgt = target_labels(attrs[0].astype(np.float32), list(STAR_ATTRS), EXCLUSIVE, False)
    want = G(ms.Tensor(np.repeat(to_unit(truth[None]), 4, 0)), ms.Tensor(tgt)).asnumpy()
    for k in range(4):
        tile = strip[:, 32 * (k + 1):32 * (k + 2)]
        assert np.abs(tile - (want[k].transpose(1, 2, 0) + 1) * 127.5).max() <= 1.0, k
    r = run_cli(common + ["--edit", "Thick", "--stats", "running", "--save_path", str(tmp_path / "out" / "t.png")])
    assert r.returncode == 0 and "running statistics" in r.stdout, r.stderr[-2000:]
    assert Image.open(tmp_path / "out" / "t.png").size == (32, 32)
    for args, message in ((["--edit", "Bald"], "not a domain of this model"),
                          (["--attrs", "Smiling"], "unknown attribute Smiling")):
        r = run_cli(common + args + ["--save_path", str(tmp_path / "out" / "x.png")])
        assert r.returncode != 0 and message in r.stderr and "Traceback" not in r.stderr, (args, r.stderr[-600:])
    # the face front end path: a portrait is aligned, then translated at the model's size
    from skimage import data as skdata
    Image.fromarray(skdata.astronaut()).save(tmp_path / "astronaut.jpg")
    r = run_cli(["test.py", "--model", "stargan", "--checkpoint", str(model), "--photo_path",
                 str(tmp_path / "astronaut.jpg"), "--save_path", str(tmp_path / "out" / "face.png")])
    assert r.returncode == 0, r.stderr[-2000:]
    assert Image.open(tmp_path / "out" / "face.png").size == (32 * 5, 32)


def test_folder_per_domain_data_trains_with_cross_entropy_and_serves(tmp_path):
    """RaFD's layout: train/<domain>/ folders; the domain loss is cross-entropy, the domains are the sorted
    folder names, test.py takes the photo's domain; an empty domain folder is a one-line error."""
    from tests.helpers import digit_grays
    grays = digit_grays(32)
    root = tmp_path / "faces"
    for k, (name, colour) in enumerate((("blue", [0, 0, 1]), ("green", [0, 1, 0]), ("red", [1, 0, 0]))):
        (root / "train" / name).mkdir(parents=True)
        for i in range(8):
            g = grays[k * 8 + i].astype(np.float32)[:, :, None] * np.array(colour, np.float32)
            Image.fromarray(g.astype(np.uint8)).save(root / "train" / name / f"{i}.png")
    args = ["train.py", "--dataset", str(root), "--result_dir", str(tmp_path), "--iterations", "2", "--batch_size", "4",
            "--print_freq", "1", "--save_freq", "2", "--sample_freq", "2"] + SIZES
    r = run_cli(args + ["--run_name", "rafd"])
    assert r.returncode == 0, r.stderr[-2000:]
    assert "domains: blue green red" in r.stdout and "D_cls" in r.stdout
    meta = json.loads((tmp_path / "rafd" / "model" / "model.json").read_text())
    assert meta["domains"]["names"] == ["blue", "green", "red"] and meta["domains"]["label_mode"] == "domains"
    assert meta["networks"]["G"]["config"]["c_dim"] == 3
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "x.png")
    r = run_cli(["test.py", "--model", "stargan", "--checkpoint", str(tmp_path / "rafd" / "model"), "--photo_path",
                 str(tmp_path / "x.png"), "--preprocess", "resize", "--attrs", "red",
                 "--save_path", str(tmp_path / "strip.png")])
    assert r.returncode == 0, r.stderr[-2000:]
    assert Image.open(tmp_path / "strip.png").size == (32 * 4, 32)
    (root / "train" / "purple").mkdir()
    r = run_cli(args + ["--run_name", "empty"])
    assert r.returncode != 0 and "without readable images" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "empty").exists()


def test_resume_after_sigkill_is_exact(star, tmp_path):
    """Killed after the checkpoint of iteration 2 of 5 (5 critic batches per iteration, the learning rate
    decaying over the last 2), then resumed: the same losses and weights (running statistics included) as a
    straight run."""
    root = star[0]
    assert_resume_after_sigkill_is_exact(["--dataset", str(root), "--batch_size", "4", "--save_freq", "2",
                                          "--decay_iters", "2", "--seed", "3"] + TOY, tmp_path, kill_after=2,
                                         total=5, nets=("G", "D"))
