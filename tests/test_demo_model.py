"""The bundled demo generator and what it is trained with: the cartoon filter (its teacher), U-GAT-IT's
--paired_weight (an L1 term to trainB's image of the same name) and the shipped model measured on the face it
was not trained on."""
import os

import cv2
import numpy as np
import pytest

from tests.helpers import ROOT, run_cli

DEMO = os.path.join(ROOT, "pretrained_models", "demo_cartoon")
PHOTO = os.path.join(ROOT, "dataset", "samples", "astronaut.jpg")


@pytest.fixture(scope="module")
def face():
    from data.images import read_rgb
    from preprocess.pipeline import FacePipeline
    return FacePipeline().process(read_rgb(PHOTO)).faces[0].image


def test_cartoon_filter_keeps_white_bands_lightness_outlines_edges_and_scales(face):
    from data.toon_filter import cartoon_filter
    white = np.full((64, 64, 3), 255, np.uint8)
    assert np.abs(cartoon_filter(white).astype(int) - 255).max() <= 1
    out = cartoon_filter(face)
    assert out.shape == face.shape and out.dtype == np.uint8
    # the soft quantisation's plateaus lie half-way between the 6 band centres (100 / 6 apart): far more of the
    # face's (non-white) pixels within 2 of a plateau than in the photo
    def near_plateau(rgb):
        step = 100.0 / 6
        light = cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)[:, :, 0]
        light = light[light < 97] - step / 2
        return float((np.abs(light - np.round(light / step) * step) < 2.0).mean())
    assert near_plateau(out) > 1.5 * near_plateau(face), (near_plateau(out), near_plateau(face))
    # a dark outline on the dark side of a step, none in flat areas
    step = np.full((256, 256, 3), 200, np.uint8)
    step[:, :128] = 90
    s = cartoon_filter(step).astype(int)
    left, right = s[:, :116], s[:, 132:]
    assert s[:, 125:128].max() < 20 and left.min() > 60 and right.min() > 150, (left.min(), right.min())
    assert np.ptp(left) <= 2 and np.ptp(right) <= 2
    # widths scale with the side: the filter at 128 px is close to the 256 px result downscaled
    small = cv2.resize(face, (128, 128), interpolation=cv2.INTER_AREA)
    down = cv2.resize(out, (128, 128), interpolation=cv2.INTER_AREA)
    assert np.abs(cartoon_filter(small).astype(int) - down).mean() / 255 < 0.06
    with pytest.raises(ValueError):
        cartoon_filter(face[:, :, 0])


def _same_name_dataset(root, n=6, size=40, renamed=None):
    rng = np.random.default_rng(0)
    from data.images import write_image_atomic
    for k in range(n):
        img = rng.integers(0, 256, (size, size + 8 * k, 3), dtype=np.uint8)
        write_image_atomic(os.path.join(root, "trainA", f"{k:03d}.png"), img)
        name = renamed if (renamed and k == n - 1) else f"{k:03d}.png"
        write_image_atomic(os.path.join(root, "trainB", name), img)


def test_paired_data_gives_each_a_its_b_with_the_same_flip_and_crop(tmp_path):
    """trainB holds copies of trainA: every batch's B must equal its A exactly (same file, flip and crop)."""
    from families import get_family
    from families.common import same_name_pairs_data
    _same_name_dataset(str(tmp_path))
    cfg = dict(get_family("ugatit").defaults("ugatit"), img_size=32, batch_size=2, iterations=6, workers=1,
               paired_weight=10.0)
    data = same_name_pairs_data(cfg, str(tmp_path))
    assert data.n_train == 6 and "6 trainA / trainB pairs" in data.notes[0]
    batches = list(data.factory(0))
    assert len(batches) == 6
    for a, b in batches:
        a, b = np.asarray(a), np.asarray(b)
        assert a.shape == (2, 3, 32, 32) and np.array_equal(a, b)
    assert len({np.asarray(a).tobytes() for a, _ in batches}) == 6           # not one image over and over


def test_paired_weight_with_an_unpaired_name_is_a_one_line_error(tmp_path):
    _same_name_dataset(str(tmp_path / "d"), renamed="other.png")
    r = run_cli(["train.py", "--dataset", str(tmp_path / "d"), "--result_dir", str(tmp_path), "--arch", "ugatit",
                 "--img_size", "32", "--n_dis_global", "5", "--n_dis_local", "4", "--paired_weight", "10",
                 "--iterations", "2", "-q"], timeout=300)
    assert r.returncode != 0 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert "no image named" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    r = run_cli(["train.py", "--dataset", str(tmp_path / "d"), "--arch", "ugatit", "--paired_weight", "-1"],
                timeout=300)
    assert r.returncode != 0 and "--paired_weight must be 0 or more" in r.stderr


def test_the_generator_loss_adds_the_paired_l1_with_its_weight():
    """Same networks and inputs: the loss with --paired_weight w is the loss without it plus w x L1(genA2B(A),
    B), and G_paired is that L1."""
    import mindspore as ms
    from families import get_family
    from families.ugatit import GeneratorLoss
    ms.set_context(mode=ms.PYNATIVE_MODE)
    fam = get_family("ugatit")
    cfg = dict(fam.defaults("ugatit"), ngf=8, n_blocks=2, img_size=32, n_dis_global=5, n_dis_local=4, seed=0)
    ms.set_seed(0)
    nets = fam.build_nets(cfg)
    for n in nets.values():
        n.set_train(False)
    rng = np.random.default_rng(1)
    a, b = (ms.Tensor(rng.uniform(-1, 1, (1, 3, 32, 32)).astype(np.float32)) for _ in range(2))
    plain, plain_terms = GeneratorLoss(nets, dict(cfg, paired_weight=0.0))(a, b)
    paired_loss = GeneratorLoss(nets, dict(cfg, paired_weight=7.0))
    assert paired_loss.terms[-1] == "G_paired" and "G_paired" not in GeneratorLoss(nets, cfg).terms
    loss, terms = paired_loss(a, b)
    expect = float(np.abs(nets["genA2B"](a)[0].asnumpy() - b.asnumpy()).mean())
    assert abs(float(terms["G_paired"].asnumpy()) - expect) < 1e-5
    assert abs(float(loss.asnumpy()) - float(plain.asnumpy()) - 7.0 * expect) < 1e-3 * max(1.0, float(loss.asnumpy()))


def test_the_shipped_demo_model_is_close_to_its_teacher_on_the_face_it_never_saw():
    """The bundled generator (scripts/train_demo_model.py: a Pix2Pix U-Net distilled from the cartoon filter on
    crops of photos without a human face) on the bundled face photo, which it never saw, through the cartoon
    path test.py runs (composite on white with the face's mask; the teacher's output composited alike): L1 to
    the teacher at most 0.08 ([0, 1] pixels) and at most 0.75 x what copying the photo or the best constant
    image scores; model.json records what it measured."""
    import sys
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    from train_demo_model import held_out_face, score_on_face
    from models import read_model_json
    from tests.learning import best_constant, l1
    meta = read_model_json(DEMO)
    assert meta["arch"] == "pix2pix" and list(meta["networks"]) == ["G"]
    _, teacher, score = score_on_face(DEMO, held_out_face())
    t = teacher.transpose(2, 0, 1)[None] / 255.0
    constant = l1(best_constant(t), t)
    print(f"demo model on the held-out face: L1 to the teacher {score['l1']:.4f} (copying the photo "
          f"{score['copy_l1']:.4f}, best constant {constant:.4f})")
    assert score["l1"] <= 0.08 and score["l1"] <= 0.75 * min(score["copy_l1"], constant), (score, constant)
    assert abs(meta["demo_training"]["held_out_l1_to_teacher"] - score["l1"]) < 2e-3, meta["demo_training"]
    assert meta["label"].startswith("demo:")
