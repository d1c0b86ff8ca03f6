"""Training data goes through the same image reader as inference and the face front end (data/images.py):
16-bit images scaled, not clipped; alpha composited on white; EXIF orientation applied; palette, grey and CMYK
converted; unreadable and tiny files skipped with their reason, named on the console and listed in the run
directory."""
import numpy as np
import pytest
from PIL import Image

from tests.helpers import run_cli


@pytest.fixture(scope="module")
def odd_images(tmp_path_factory):
    """One image of every awkward kind, each with a known expected content at 40 x 40 (sideways for EXIF)."""
    d = tmp_path_factory.mktemp("odd")
    ramp = np.tile(np.linspace(0, 1, 40), (40, 1))
    Image.fromarray((ramp * 65535).astype(np.uint16)).save(d / "gray16.png")      # 16-bit: a full ramp
    rgba = np.zeros((40, 40, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:, 20:, 3] = 255                                                           # left half transparent
    Image.fromarray(rgba, "RGBA").save(d / "rgba.png")
    exif = Image.Exif()
    exif[0x0112] = 6                                                                # stored sideways
    tall = np.zeros((60, 40, 3), np.uint8)
    tall[:10] = 255                                                                 # a white band on top
    Image.fromarray(np.ascontiguousarray(np.rot90(tall, 1))).save(d / "exif.jpg", exif=exif, quality=95)
    Image.fromarray(np.full((40, 40, 3), 90, np.uint8)).convert("P", palette=Image.Palette.ADAPTIVE).save(
        d / "palette.png")
    Image.fromarray(np.full((40, 40, 3), 150, np.uint8)).convert("CMYK").save(d / "cmyk.jpg", quality=95)
    Image.fromarray(np.full((8, 8, 3), 100, np.uint8)).save(d / "tiny.png")         # below the minimum side
    (d / "notes.png").write_bytes(b"this is a text file")
    good = d / "good.png"
    Image.fromarray(np.full((40, 40, 3), 30, np.uint8)).save(good)
    (d / "truncated.png").write_bytes(good.read_bytes()[:60])
    return d


def test_every_kind_is_read_as_the_front_end_reads_it(odd_images):
    from data.folders import scan_folder
    from data.images import read_rgb
    from data.pipelines import _load
    good, skipped = scan_folder(str(odd_images), "trainA")
    names = sorted(p.rsplit("/", 1)[-1] for p in good)
    assert names == ["cmyk.jpg", "exif.jpg", "good.png", "gray16.png", "palette.png", "rgba.png"]
    assert sorted((p.rsplit("/", 1)[-1], why) for p, why in skipped) == [
        ("notes.png", "unreadable"), ("tiny.png", "too_small"), ("truncated.png", "unreadable")]
    for p in good:   # the training loader and the reader agree on every file
        x = _load(p, 40, False, 0, 0, False)
        rgb = read_rgb(p, min_side=1)
        want = np.asarray(Image.fromarray(rgb).resize((40, 40), Image.BILINEAR), np.float32) / 127.5 - 1
        np.testing.assert_allclose(x.transpose(1, 2, 0), want, atol=1e-5, err_msg=p)
    g16 = _load(str(odd_images / "gray16.png"), 40, False, 0, 0, False)
    assert g16[0, :, 0].mean() < -0.95 and g16[0, :, -1].mean() > 0.95       # the ramp, not all white
    assert np.ptp(g16[0, 0]) > 1.9
    rgba = _load(str(odd_images / "rgba.png"), 40, False, 0, 0, False)
    assert np.allclose(rgba[:, :, :18], 1.0, atol=1e-3)                        # transparent: white paper
    assert rgba[1, :, 25:].max() < -0.9 and rgba[0, :, 25:].min() > 0.5        # opaque red stays red
    ex = _load(str(odd_images / "exif.jpg"), 40, False, 0, 0, False)
    assert ex[:, :5].mean() > 0.9 and ex[:, 10:].mean() < -0.9                 # upright: the band on top
    assert np.allclose(_load(str(odd_images / "palette.png"), 40, False, 0, 0, False), 90 / 127.5 - 1, atol=0.02)
    assert np.allclose(_load(str(odd_images / "cmyk.jpg"), 40, False, 0, 0, False), 150 / 127.5 - 1, atol=0.03)


def test_skipped_files_are_named_and_listed_in_the_run_dir(odd_images, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for split in ("trainA", "trainB"):
        (data / split).symlink_to(odd_images, target_is_directory=True)
    r = run_cli(["train.py", "--dataset", str(data), "--result_dir", str(tmp_path), "--run_name", "r",
                 "--arch", "ugatit", "--ngf", "4", "--n_blocks", "1", "--img_size", "32", "--n_dis_global", "4",
                 "--n_dis_local", "3", "--iterations", "1", "-q"])
    assert r.returncode == 0, r.stderr[-2000:]
    for name, why in (("notes.png", "unreadable"), ("tiny.png", "too_small"), ("truncated.png", "unreadable")):
        assert f"{name}: {why}" in r.stdout
    listed = (tmp_path / "r" / "skipped_files.txt").read_text().splitlines()
    assert len(listed) == 6 and all(ln.split("\t")[0] in ("unreadable", "too_small") for ln in listed)
    assert "(6 files skipped)" in r.stdout
