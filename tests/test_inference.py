"""test.py and demo.py as a user runs them: photo -> front end -> generator -> composite on white."""
import json

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

import models
from core.model_dir import write_model_dir
from tests.helpers import run_cli


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A photo2cartoon generator (light, ngf 8, 64 px) with random weights, as a model directory."""
    d = tmp_path_factory.mktemp("tiny") / "model"
    cfg = {"ngf": 8, "img_size": 64, "light": True}
    net = models.create_model("ugatit_p2c_generator", **cfg)
    rng = np.random.default_rng(0)
    tensors = {"genA2B": {}}
    for p in net.get_parameters():      # random but well-scaled weights: the output is an image, not a constant
        v = p.asnumpy()
        if v.ndim >= 2 and not p.name.endswith(("rho", "w_gamma", "w_beta")):
            v = rng.normal(0, 0.6 / np.sqrt(np.prod(v.shape[1:])), v.shape)
        tensors["genA2B"][p.name] = v.astype(np.float32)
    write_model_dir(str(d), {"format": 1, "arch": "photo2cartoon", "label": "tiny test model",
                             "networks": {"genA2B": {"model": "ugatit_p2c_generator", "config": cfg}}}, tensors)
    return d


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    d = tmp_path_factory.mktemp("photos")
    Image.fromarray(skdata.astronaut()).save(d / "astronaut.jpg")
    Image.fromarray(np.full((300, 300, 3), 128, np.uint8)).save(d / "wall.png")
    (d / "notes.jpg").write_bytes(b"not an image")
    return d


def test_single_photo(tiny_model, photos, tmp_path):
    out = tmp_path / "cartoon.png"
    r = run_cli(["test.py", "--photo_path", str(photos / "astronaut.jpg"), "--save_path", str(out),
                 "--checkpoint", str(tiny_model)])
    assert r.returncode == 0, r.stderr[-2000:]
    img = np.asarray(Image.open(out).convert("RGB"))
    assert img.shape == (256, 256, 3)
    assert img[:10, :10].mean() > 245 and img[:10, -10:].mean() > 245   # background composited on white
    assert img[100:160, 100:160].std() > 1                                # the generator drew something
    r = run_cli(["test.py", "--photo_path", str(photos / "astronaut.jpg"), "--save_path", str(out),
                 "--checkpoint", str(tiny_model)])
    assert r.returncode != 0 and "--overwrite" in r.stderr                # never overwrites silently


def test_no_face_missing_checkpoint_and_wrong_model(tiny_model, photos, tmp_path):
    r = run_cli(["test.py", "--photo_path", str(photos / "wall.png"), "--save_path", str(tmp_path / "w.png"),
                 "--checkpoint", str(tiny_model)])
    assert r.returncode != 0 and "no face found" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "w.png").exists()
    r = run_cli(["test.py", "--photo_path", str(photos / "astronaut.jpg"), "--checkpoint", str(tmp_path / "none")])
    assert r.returncode != 0 and "convert_weights.py --src photo2cartoon_weights.pt" in r.stderr
    r = run_cli(["test.py", "--photo_path", str(tmp_path / "absent.jpg")])
    assert r.returncode != 0 and "not found" in r.stderr
    r = run_cli(["test.py", "--photo_path", str(photos / "astronaut.jpg"), "--checkpoint", str(tiny_model),
                 "--direction", "BtoA"])
    assert r.returncode != 0 and "has no genB2A" in r.stderr and "Traceback" not in r.stderr


def test_folder_with_bad_files(tiny_model, photos, tmp_path):
    out = tmp_path / "out"
    r = run_cli(["test.py", "--photo_path", str(photos), "--save_path", str(out), "--checkpoint", str(tiny_model)])
    assert r.returncode == 0, r.stderr[-2000:]
    assert (out / "astronaut_cartoon.png").exists()
    assert "skipped" in r.stdout and "wall.png: no_face" in r.stdout and "notes.jpg: unreadable" in r.stdout
    assert "1 of 3 photos cartoonized" in r.stdout


def test_demo_sheet(tiny_model, tmp_path):
    r = run_cli(["demo.py", "--out", str(tmp_path), "--checkpoint", str(tiny_model)])
    assert r.returncode == 0, r.stderr[-2000:]
    sheet = Image.open(tmp_path / "sheet.png")
    assert sheet.size == (3 * 256, 256)            # photo | aligned face | cartoon
    assert (tmp_path / "astronaut_cartoon.png").exists() and (tmp_path / "astronaut_face.png").exists()
    cartoon_col = np.asarray(sheet.convert("RGB"))[30:, 512:]
    assert cartoon_col.std() > 1                      # the cartoon column holds an image, not blank paper


def test_compiled_graph_cache_is_per_workload_and_changes_nothing(tiny_model, photos, tmp_path):
    """test.py's compiled-graph cache: a second run of one model reuses its folder; a model of another
    architecture gets a folder of its own (MindSpore's cache, shared, loaded the wrong graph for it); every
    cached result equals the uncached one exactly; FACEGAN_COMPILE_CACHE=0 turns it off; a folder another
    process holds is left alone (that run compiles without it)."""
    import fcntl
    import shutil
    other = tmp_path / "other"
    shutil.copytree(tiny_model, other)
    meta = (other / "model.json").read_text().replace('"ngf": 8', '"ngf": 16')
    cfg_net = models.create_model("ugatit_p2c_generator", ngf=16, img_size=64, light=True)
    write_model_dir(str(other), json.loads(meta),
                    {"genA2B": {p.name: p.asnumpy() for p in cfg_net.get_parameters()}}, overwrite=True)
    cache = tmp_path / "cache"

    def run(model, name, **env):
        r = run_cli(["test.py", "--photo_path", str(photos / "astronaut.jpg"), "--save_path",
                     str(tmp_path / name), "--checkpoint", str(model)],
                    env_extra={"FACEGAN_COMPILE_CACHE_DIR": str(cache), **env})
        assert r.returncode == 0, r.stderr[-2000:]
        return np.asarray(Image.open(tmp_path / name))

    plain = {m: run(m, f"plain{i}.png", FACEGAN_COMPILE_CACHE="0") for i, m in enumerate((tiny_model, other))}
    assert not cache.exists() or not any(p.is_dir() for p in cache.iterdir())
    assert np.array_equal(run(tiny_model, "a1.png"), plain[tiny_model])
    folders = {p.name for p in cache.iterdir() if p.is_dir()}
    assert len(folders) == 1 and any((cache / f).iterdir() for f in folders)
    assert np.array_equal(run(tiny_model, "a2.png"), plain[tiny_model])            # from the cache
    assert np.array_equal(run(other, "b1.png"), plain[other])                       # its own folder
    assert len({p.name for p in cache.iterdir() if p.is_dir()}) == 2
    held = open(cache / (sorted(folders)[0] + ".lock"), "w")
    fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)                                # another process's
    try:
        assert np.array_equal(run(tiny_model, "a3.png"), plain[tiny_model])
    finally:
        held.close()


@pytest.mark.parametrize("mode", ["diff", "target"])
def test_attribute_editor_feeds_the_generator_its_own_kind_of_input(mode):
    """STGAN's generator reads target minus source attributes, AttGAN's the target (model.json's
    attributes.label), whatever the model's display label: an edit of a1 at intensity 1 on a face with a0
    gives the generator exactly inference.attributes.generator_input's vector for that kind."""
    from inference.attributes import AttributeEditor, generator_input
    seen = []

    def run(x, a):
        seen.append(a.copy())
        return np.zeros_like(x)
    meta = {"label": "trained stgan", "attributes": {"selected_attrs": ["a0", "a1", "a2"], "thres_int": 0.5,
                                                      "label": mode},
            "networks": {"G": {"config": {"img_size": 16}}}}
    editor = AttributeEditor(loaded=(meta, run))
    present = editor.parse_attrs("a0")
    editor.edit(np.zeros((16, 16, 3), np.uint8), present, ["a1"], [1.0])
    target = np.array([1.0, 1.0, 0.0], np.float32)
    np.testing.assert_array_equal(seen[0][0], generator_input(present, target, 0.5, mode, 1, 1.0))
    if mode == "diff":
        np.testing.assert_array_equal(seen[0][0], [0.0, 1.5, 0.0])    # unchanged attributes: no difference
