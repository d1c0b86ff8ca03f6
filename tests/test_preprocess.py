"""The face front end on real photos shipped in packages, on every kind of awkward input, and its options."""
import json
import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from preprocess.align import crop, crop_box, rotate
from preprocess.detect import FAN_FILE, DlibHOGDetector, DlibLandmarks, FANLandmarks, ModelFileMissing
from data.images import ImageReadError, read_rgb
from preprocess.pipeline import FacePipeline
from preprocess.segment import FrozenGraphSegmenter, composite_on_white
from tests.helpers import run_cli


@pytest.fixture(scope="module")
def pipe():
    return FacePipeline()


@pytest.fixture(scope="module")
def measure():
    det, lm = DlibHOGDetector(), DlibLandmarks()

    def eye_line_deg(img):
        boxes = det(img)
        assert boxes, "no face found on the processed image"
        pts = lm(img, boxes[0])
        d = pts[45] - pts[36]
        return float(np.degrees(np.arctan2(d[1], d[0]))), pts
    return eye_line_deg


def _rotated(img, deg):
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), deg, 1.0)
    return cv2.warpAffine(img, m, (w, h), borderValue=(255, 255, 255))


@pytest.mark.parametrize("tilt", [0.0, 12.0, -15.0])
def test_astronaut_is_levelled_centred_and_on_white(pipe, measure, tilt):
    photo = _rotated(skdata.astronaut(), tilt)
    before, _ = measure(photo)
    res = pipe.process(photo)
    assert res.status == "ok" and len(res.faces) == 1
    face = res.faces[0]
    assert face.image.shape == (256, 256, 3) and face.image.dtype == np.uint8
    after, pts = measure(face.image)
    assert abs(after) < 1.0, f"eye line {after:.2f} deg after alignment (was {before:.2f})"
    if abs(tilt) > 5:
        assert abs(before) > 5   # the test photo really was tilted
    # centred: the landmark box's centre is near the middle horizontally, and in the crop's expected row
    cx = (pts[:, 0].min() + pts[:, 0].max()) / 2
    assert abs(cx - 128) < 0.06 * 256
    # the crop puts 0.8 H of margin above the landmarks and 0.3 H below: the face sits low-centre
    top, bottom = pts[:, 1].min(), pts[:, 1].max()
    assert top > 0.25 * 256 and bottom < 0.95 * 256
    # background whitened: the top corners (sky of the studio backdrop) are white
    for corner in (face.image[:12, :12], face.image[:12, -12:]):
        assert corner.mean() > 245
    # and the face itself is not whitened
    assert face.image[int(pts[30, 1]), int(pts[30, 0])].mean() < 240


def test_rotate_moves_landmarks_with_the_image():
    img = np.full((200, 300, 3), 255, np.uint8)
    pts = np.zeros((68, 2))
    pts[36], pts[45] = (100, 80), (200, 120)            # tilted eye line
    for p in pts[[36, 45]]:
        cv2.circle(img, (int(p[0]), int(p[1])), 4, (0, 0, 0), -1)
    out, pts_r = rotate(img, pts)
    assert abs(pts_r[36, 1] - pts_r[45, 1]) < 1e-6        # eyes level
    for p in pts_r[[36, 45]]:                              # the dots moved to where the landmarks went
        assert out[int(round(p[1])), int(round(p[0]))].mean() < 60
    assert out.shape[0] > 200 and out.shape[1] > 300       # enlarged canvas, nothing cut


def test_crop_box_follows_photo2cartoon_rule_and_pads_white():
    pts = np.array([[50.0, 40.0], [150.0, 140.0]] * 34)
    t, b, l, r = crop_box(pts)
    assert (t, b) == (int(40 - 80), int(140 + 30))          # top - 0.8 H, bottom + 0.3 H
    assert b - t == r - l                                   # square, widened around the box
    img = np.zeros((100, 100, 3), np.uint8)
    out, moved = crop(img, pts)
    assert out.shape[0] == out.shape[1] == b - t + 1
    assert (out[0, 0] == 255).all()                          # outside the photo: white
    assert np.allclose(moved[0], pts[0] - [l, t])


def _png_header_only(path, w, h):
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(b"\x00" * 1000)) + chunk(b"IEND", b""))


@pytest.fixture(scope="module")
def awkward(tmp_path_factory):
    """A folder of real and awkward inputs; name -> expected status."""
    d = tmp_path_factory.mktemp("awkward")
    astro = skdata.astronaut()
    im = Image.fromarray(astro)
    im.save(d / "good.jpg", quality=90)
    gray16 = (cv2.cvtColor(astro, cv2.COLOR_RGB2GRAY).astype(np.uint16) * 257)
    Image.fromarray(gray16).save(d / "gray16.png")
    assert Image.open(d / "gray16.png").mode.startswith("I")
    im.convert("L").save(d / "gray8.png")
    rgba = np.dstack([astro, np.full(astro.shape[:2], 255, np.uint8)])
    rgba[:, :60, 3] = 0
    Image.fromarray(rgba).save(d / "rgba.png")
    im.convert("CMYK").save(d / "cmyk.jpg", quality=90)
    exif = Image.Exif()
    exif[0x0112] = 6   # "rotate 90 CW to view": stored sideways
    Image.fromarray(np.ascontiguousarray(np.rot90(astro, 1))).save(d / "exif_rotated.jpg", exif=exif, quality=90)
    (d / "notes.jpg").write_bytes(b"this is a text file with an image extension\n")
    (d / "truncated.jpg").write_bytes((d / "good.jpg").read_bytes()[:4000])
    _png_header_only(d / "bomb.png", 20000, 20000)
    Image.fromarray(astro[:20, :20]).save(d / "tiny.png")
    nonface = (skdata.lfw_subset()[150] * 255).astype(np.uint8)
    Image.fromarray(cv2.resize(nonface, (200, 200), interpolation=cv2.INTER_CUBIC)).save(d / "nonface.png")
    two = np.full((512, 1024, 3), 255, np.uint8)    # the astronaut, and beside her a 400 px copy
    two[:, :512] = astro
    two[56:456, 568:968] = cv2.resize(astro, (400, 400), interpolation=cv2.INTER_AREA)
    Image.fromarray(two).save(d / "two_faces.png")
    expected = {"good.jpg": "ok", "gray16.png": "ok", "gray8.png": "ok", "rgba.png": "ok", "cmyk.jpg": "ok",
                "exif_rotated.jpg": "ok", "notes.jpg": "unreadable", "truncated.jpg": "unreadable",
                "bomb.png": "too_large", "tiny.png": "too_small", "nonface.png": "no_face",
                "two_faces.png": "ok"}
    return d, expected


def test_read_rgb_statuses(awkward):
    d, expected = awkward
    for name, status in expected.items():
        if status in ("unreadable", "too_large", "too_small"):
            with pytest.raises(ImageReadError) as e:
                read_rgb(str(d / name))
            assert e.value.status == status, name
        else:
            img = read_rgb(str(d / name))
            assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3, name
    assert read_rgb(str(d / "exif_rotated.jpg")).shape == (512, 512, 3)
    rgba = read_rgb(str(d / "rgba.png"))
    assert (rgba[:, :60] == 255).all()                       # transparent part composited on white
    with pytest.raises(ImageReadError) as e:
        read_rgb(str(d / "absent.png"))
    assert e.value.status == "missing"


def test_exif_orientation_is_honoured(pipe, awkward):
    d, _ = awkward
    upright = read_rgb(str(d / "exif_rotated.jpg"))
    assert pipe.process(upright).status == "ok"
    raw = np.asarray(Image.open(d / "exif_rotated.jpg").convert("RGB"))   # ignoring EXIF: sideways face
    assert pipe.process(raw).status == "no_face"


def test_many_faces(awkward):
    d, _ = awkward
    img = read_rgb(str(d / "two_faces.png"))
    all_faces = FacePipeline(faces="all").process(img)
    assert all_faces.status == "ok" and len(all_faces.faces) == 2
    largest = FacePipeline(faces="largest").process(img)
    assert len(largest.faces) == 1
    assert largest.faces[0].box[0] < 512                       # the big face is the left one
    assert np.allclose(largest.faces[0].landmarks_source, all_faces.faces[0].landmarks_source)


def test_data_process_cli_mixed_folder_and_resume(awkward, tmp_path):
    d, expected = awkward
    out, rgba = tmp_path / "out", tmp_path / "rgba"
    before = {p.name: p.read_bytes() for p in d.iterdir()}
    r = run_cli(["data_process.py", "--data_path", str(d), "--save_path", str(out), "--faces", "all",
                 "--save_rgba", str(rgba), "-q"])
    assert r.returncode == 0, r.stderr[-2000:]
    assert "Traceback" not in r.stderr
    rows = {json.loads(l)["input"]: json.loads(l) for l in (out / "manifest.jsonl").read_text().splitlines()}
    assert {k: v["status"] for k, v in rows.items()} == expected
    assert rows["two_faces.png"]["outputs"] == ["two_faces_0.png", "two_faces_1.png"]
    assert len(rows["good.jpg"]["faces"][0]["landmarks"]) == 68
    for name, row in rows.items():
        for o in row.get("outputs", []):
            assert Image.open(out / o).size == (256, 256)
            assert Image.open(rgba / o).mode == "RGBA"
    assert not list(out.rglob(".part-*")) and not (out / "manifest.partial.jsonl").exists()
    assert {p.name: p.read_bytes() for p in d.iterdir()} == before    # inputs untouched
    last_line = r.stdout.strip().splitlines()[-1]
    assert "12 inputs (0 already done)" in last_line and "ok 7" in last_line
    for name in ("notes.jpg", "bomb.png", "nonface.png"):
        assert f"skipped {name}" in r.stdout
    # a rerun does no work; removing one output redoes exactly that input
    (out / "good_0.png").unlink()
    r2 = run_cli(["data_process.py", "--data_path", str(d), "--save_path", str(out), "--faces", "all",
                  "--save_rgba", str(rgba), "-q"])
    assert r2.returncode == 0 and "12 inputs (11 already done)" in r2.stdout
    assert (out / "good_0.png").exists()
    r3 = run_cli(["data_process.py", "--data_path", str(d), "--save_path", str(out), "--faces", "all",
                  "--save_rgba", str(rgba), "-q"])
    assert "12 inputs (12 already done)" in r3.stdout


def test_data_process_cli_errors(tmp_path):
    r = run_cli(["data_process.py", "--data_path", str(tmp_path / "nope"), "--save_path", str(tmp_path / "o")])
    assert r.returncode != 0 and r.stderr.strip().startswith("error:") and "Traceback" not in r.stderr
    (tmp_path / "empty").mkdir()
    r = run_cli(["data_process.py", "--data_path", str(tmp_path / "empty"), "--save_path", str(tmp_path / "o")])
    assert r.returncode != 0 and "no image files" in r.stderr and "Traceback" not in r.stderr
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(skdata.astronaut()).save(src / "a.png")
    r = run_cli(["data_process.py", "--data_path", str(src), "--save_path", str(tmp_path / "o"),
                 "--seg_model", str(tmp_path / "missing.pb")])
    assert r.returncode != 0 and "missing.pb" in r.stderr and "Traceback" not in r.stderr
    r = run_cli(["data_process.py", "--data_path", str(src), "--save_path", str(tmp_path / "o"),
                 "--landmarks", "fan"], env_extra={"TORCH_HOME": str(tmp_path / "hub")})
    assert r.returncode != 0 and FAN_FILE in r.stderr and "Traceback" not in r.stderr


def _write_frozen_graph(path):
    """A frozen graph of the photo2cartoon kind: input_1 (1x384x384x3 in [0,1]) -> sigmoid/Sigmoid."""
    import tensorflow as tf
    g = tf.Graph()
    with g.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, 384, 384, 3], name="input_1")
        logits = 20.0 * (tf.reduce_mean(x, axis=3, keepdims=True) - 0.5)
        with tf.compat.v1.name_scope("sigmoid"):
            tf.sigmoid(logits, name="Sigmoid")
    with open(path, "wb") as f:
        f.write(g.as_graph_def().SerializeToString())


def test_frozen_graph_segmenter(tmp_path):
    pb = tmp_path / "seg_model_384.pb"
    _write_frozen_graph(pb)
    seg = FrozenGraphSegmenter(str(pb))
    img = np.zeros((300, 200, 3), np.uint8)
    img[:, 100:] = 255                                     # right half bright -> mask 1, left dark -> 0
    a = seg(img)
    assert a.shape == (300, 200)
    assert a[:, :90].max() < 0.01 and a[:, 110:].min() > 0.99
    out = composite_on_white(img, a)
    assert (out[:, :90] == 255).all()                       # dark half (mask 0) whitened
    with pytest.raises(ModelFileMissing):
        FrozenGraphSegmenter(str(pb), output_name="nope:0")
    # through the pipeline too
    res = FacePipeline(seg_model=str(pb)).process(skdata.astronaut())
    assert res.status == "ok"


def test_fan_landmarks_load_from_the_hub_dir(tmp_path, monkeypatch):
    import torch
    from face_alignment.models import FAN
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    hub = tmp_path / "hub"
    assert torch.hub.get_dir() == str(hub)
    with pytest.raises(ModelFileMissing) as e:
        FANLandmarks()
    assert FAN_FILE in str(e.value)
    (hub / "checkpoints").mkdir(parents=True)
    torch.manual_seed(0)
    torch.save(FAN(4).state_dict(), hub / "checkpoints" / FAN_FILE)
    fan = FANLandmarks()
    img = skdata.astronaut()
    box = DlibHOGDetector()(img)[0]
    pts = fan(img, box)
    assert pts.shape == (68, 2) and np.isfinite(pts).all()
    # FAN decodes its points inside the crop it took around the face box it was given (about 1.6x the box)
    w = box[2] - box[0]
    assert (pts[:, 0] > box[0] - w).all() and (pts[:, 0] < box[2] + w).all()
    assert (pts[:, 1] > box[1] - w).all() and (pts[:, 1] < box[3] + w).all()


def test_weak_false_detection_is_not_taken_for_the_largest_face(pipe, tmp_path):
    """Regression: on the astronaut saved as a quality-75 JPEG, dlib's HOG also fires weakly on the suit,
    with a landmark box larger than the real face's; "largest" must still be the real face."""
    Image.fromarray(skdata.astronaut()).save(tmp_path / "q75.jpg", quality=75)
    res = pipe.process(read_rgb(str(tmp_path / "q75.jpg")))
    assert res.status == "ok"
    x0, y0, x1, y1 = res.faces[0].box[:4]
    assert 150 < (x0 + x1) / 2 < 300 and 60 < (y0 + y1) / 2 < 200     # the real face, upper middle
    assert res.faces[0].alpha.mean() > 0.3
