"""The web demo (app.py) served on localhost and used in a real headless browser: Debian's chromium driven by
Playwright (scripts/setup_browser.sh installs it). The page's cartoon and attribute edit equal what test.py
writes for the same photo and options, from an upload and from the webcam (chromium's fake camera playing the
bundled photo); bad uploads get a message in the page and the server keeps serving;
the page asks nothing of any host but the demo's own. The screenshot of the cartoon tab goes to docs/."""
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from urllib.parse import urlparse

import numpy as np
import pytest
from PIL import Image

from tests.helpers import ROOT, run_cli

CHROMIUM = "/usr/bin/chromium"
PHOTO = os.path.join(ROOT, "dataset", "samples", "astronaut.jpg")
SCREENSHOT = os.path.join(ROOT, "docs", "images", "web_demo.png")
# the flags this machine's closed network needs (no background connections, no first-run work)
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tiny_models(root):
    """A models folder like pretrained_models/: the bundled cartoon model, and small STGAN and CycleGAN
    generators with their PyTorch references' random weights (what the page does with them is checked, not
    what they draw)."""
    from tests.test_export import _model_dir
    from tests.test_parity import ROWS
    root.mkdir()
    shutil.copytree(os.path.join(ROOT, "pretrained_models", "demo_cartoon"), root / "demo_cartoon")
    st = _model_dir(next(r for r in ROWS if r.id == "stgan_G_sc3_inj1"), root / "stgan")
    meta = json.loads((st / "model.json").read_text())
    meta.update(arch="stgan", label="tiny random STGAN",
                attributes={"selected_attrs": ["Bald", "Bangs", "Male", "Young", "Eyeglasses"], "thres_int": 0.5,
                            "label": "diff"})
    (st / "model.json").write_text(json.dumps(meta))
    cyc = _model_dir(next(r for r in ROWS if r.id == "resnet_6blocks_batch"), root / "makeup", net="G_A")
    meta = json.loads((cyc / "model.json").read_text())
    meta.update(arch="cyclegan", label="tiny random CycleGAN")
    (cyc / "model.json").write_text(json.dumps(meta))
    return root


def _fetch_png(page, selector):
    src = page.locator(f"{selector} img").first.get_attribute("src")
    data = page.request.get(src).body()
    from io import BytesIO
    return np.asarray(Image.open(BytesIO(data)).convert("RGB"), np.int16)


def _write_y4m(path, rgb, frames=4):
    """A raw YUV 4:2:0 video of one still picture: chromium's --use-file-for-fake-video-capture plays it as the
    webcam (looping)."""
    import cv2
    h, w = (d - d % 2 for d in rgb.shape[:2])
    yuv = cv2.cvtColor(np.ascontiguousarray(rgb[:h, :w]), cv2.COLOR_RGB2YUV_I420)
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            f.write(b"FRAME\n" + yuv.tobytes())


def _wait_server(url, proc, timeout=180):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            raise AssertionError(f"app.py ended early: {proc.stderr.read()[-2000:]}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(0.5)
    raise AssertionError("app.py did not start serving")


def _upload_and_run(page, url, tab, photo, button):
    page.goto(url)
    if tab:
        page.get_by_role("tab", name=tab).click()
    prefix = button.split("-")[0]
    page.locator(f"#{prefix}-photo input[type=file]").set_input_files(photo)
    page.wait_for_timeout(300)
    page.click(f"#{button}")


def _message(page, prefix, expected, timeout=120_000):
    """The message line once it shows one of `expected` (while the request runs it shows a timer); what it
    shows after `timeout` otherwise."""
    js = ("([sel, words]) => { const t = document.querySelector(sel).innerText; "
          "return words.some(w => t.includes(w)); }")
    try:
        page.wait_for_function(js, arg=[f"#{prefix}-message", list(expected)], timeout=timeout)
    except Exception:
        pass
    return page.locator(f"#{prefix}-message").inner_text()


def test_the_web_demo_in_a_real_browser(tmp_path):
    if not os.path.exists(CHROMIUM):
        if os.environ.get("FACEGAN_NO_BROWSER") == "1":
            pytest.skip("FACEGAN_NO_BROWSER=1 and no chromium")
        pytest.fail(f"{CHROMIUM} is missing: install it with scripts/setup_browser.sh (make test runs it), or set "
                    f"FACEGAN_NO_BROWSER=1 to skip this test")
    from playwright.sync_api import sync_playwright
    models = _tiny_models(tmp_path / "models")
    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    env = dict(os.environ, PYTHONUNBUFFERED="1", GRADIO_TEMP_DIR=str(tmp_path / "gradio"))
    app = subprocess.Popen([sys.executable, "app.py", "--port", str(port), "--models", str(models)], cwd=ROOT,
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "notes.txt").write_text("not a photo\n")
    (bad / "notes.png").write_text("not a photo either\n")
    Image.new("1", (20000, 1000)).save(bad / "wide.png")
    from skimage import data as skdata
    Image.fromarray(skdata.coffee()).save(bad / "coffee.png")
    try:
        # test.py's outputs for the same photo and options, while the server starts
        ref = run_cli(["test.py", "--photo_path", PHOTO, "--checkpoint", str(models / "demo_cartoon"),
                       "--save_path", str(tmp_path / "ref_cartoon.png")])
        assert ref.returncode == 0, ref.stderr[-1500:]
        ref = run_cli(["test.py", "--model", "stgan", "--checkpoint", str(models / "stgan"), "--photo_path", PHOTO,
                       "--attrs", "Male", "--edit", "Bald", "--intensity", "0.5",
                       "--save_path", str(tmp_path / "ref_bald.png")])
        assert ref.returncode == 0, ref.stderr[-1500:]
        _wait_server(url, app)
        outside = []
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
            page = browser.new_page(viewport={"width": 1280, "height": 1100})

            def route(r):
                host = urlparse(r.request.url).hostname
                if r.request.url.startswith(("data:", "blob:")) or host in ("127.0.0.1", "localhost"):
                    return r.continue_()
                outside.append(r.request.url)
                return r.abort()
            page.route("**/*", route)

            # the cartoon tab: the aligned face and the cartoon, equal to test.py's
            _upload_and_run(page, url, None, PHOTO, "cartoon-run")
            page.wait_for_selector("#cartoon-result img", timeout=180_000)
            got = _fetch_png(page, "#cartoon-result")
            want = np.asarray(Image.open(tmp_path / "ref_cartoon.png").convert("RGB"), np.int16)
            assert got.shape == want.shape and np.abs(got - want).max() <= 1, np.abs(got - want).max()
            assert _fetch_png(page, "#cartoon-face").shape == want.shape
            assert page.locator("#cartoon-compare img").count() == 2      # before / after
            os.makedirs(os.path.dirname(SCREENSHOT), exist_ok=True)
            page.screenshot(path=SCREENSHOT + ".part.png", full_page=True)
            os.replace(SCREENSHOT + ".part.png", SCREENSHOT)

            # bad uploads: a message in the page, the server still serving
            for name, says in (("notes.png", "not an image"), ("wide.png", "20000x1000 pixels"),
                               ("coffee.png", "No face found")):
                _upload_and_run(page, url, None, str(bad / name), "cartoon-run")
                text = _message(page, "cartoon", [says])
                assert says in text, (name, text)
                assert page.locator("#cartoon-result img").count() == 0
            # a file the page's upload refuses by its type: Gradio's own message, then the demo's on Run
            page.goto(url)
            page.locator("#cartoon-photo input[type=file]").set_input_files(str(bad / "notes.txt"))
            page.get_by_text("Invalid file type").wait_for(timeout=30_000)
            page.click("#cartoon-run")
            text = _message(page, "cartoon", ["Upload a photo"])
            assert "Upload a photo first" in text, text

            # attribute editing: toggle Bald of a face marked Male at intensity 0.5, equal to test.py's
            _upload_and_run(page, url, "Attributes", PHOTO, "attr-photo")
            page.locator("#attr-present").get_by_label("Male").check()
            page.locator("#attr-edit input").fill("Bald")
            page.keyboard.press("Enter")
            page.locator("#attr-intensity input[type=number]").fill("0.5")
            page.keyboard.press("Enter")
            page.click("#attr-run")
            page.wait_for_selector("#attr-result img", timeout=120_000)
            got = _fetch_png(page, "#attr-result")
            want = np.asarray(Image.open(tmp_path / "ref_bald.png").convert("RGB"), np.int16)
            assert got.shape == want.shape and np.abs(got - want).max() <= 1, np.abs(got - want).max()

            # the makeup tab runs its model; the same page again after all that
            _upload_and_run(page, url, "Makeup off / on", PHOTO, "makeup-run")
            page.wait_for_selector("#makeup-result img", timeout=120_000)
            assert _fetch_png(page, "#makeup-result").shape[2] == 3
            _upload_and_run(page, url, None, PHOTO, "cartoon-run")
            page.wait_for_selector("#cartoon-result img", timeout=120_000)
            browser.close()

            # the webcam: chromium's fake camera plays the bundled photo; the page grants access, captures a
            # frame and cartoonizes it
            _write_y4m(str(tmp_path / "camera.y4m"), np.asarray(Image.open(PHOTO).convert("RGB")))
            camera = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS + [
                "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-video-capture={tmp_path / 'camera.y4m'}"])
            page = camera.new_page(viewport={"width": 1280, "height": 1100})
            page.route("**/*", route)
            page.goto(url)
            photo = page.locator("#cartoon-photo")
            photo.get_by_label("Capture from camera").click()
            photo.get_by_text("Click to Access Webcam").click()
            page.wait_for_function("() => { const v = document.querySelector('#cartoon-photo video'); "
                                   "return v && v.readyState >= 2 && v.videoWidth > 0; }", timeout=30_000)
            photo.get_by_label("capture photo").click()
            page.wait_for_selector("#cartoon-photo img[src*='gradio_api/file']", timeout=30_000)
            page.click("#cartoon-run")
            page.wait_for_selector("#cartoon-result img", timeout=180_000)
            captured = _fetch_png(page, "#cartoon-photo")
            Image.fromarray(captured.astype(np.uint8)).save(tmp_path / "captured.png")
            camera_cartoon = _fetch_png(page, "#cartoon-result")
            camera.close()
        assert outside == [], outside
        # the frame is the photo (as a selfie camera shows it: mirrored, through the video's YUV 4:2:0)
        original = np.asarray(Image.open(PHOTO).convert("RGB"), np.int16)
        assert captured.shape == original.shape, captured.shape
        assert min(np.abs(captured - original).mean(), np.abs(captured - original[:, ::-1]).mean()) < 12
        ref = run_cli(["test.py", "--photo_path", str(tmp_path / "captured.png"), "--checkpoint",
                       str(models / "demo_cartoon"), "--save_path", str(tmp_path / "ref_camera.png")])
        assert ref.returncode == 0, ref.stderr[-1500:]
        want = np.asarray(Image.open(tmp_path / "ref_camera.png").convert("RGB"), np.int16)
        assert camera_cartoon.shape == want.shape and np.abs(camera_cartoon - want).max() <= 1
        assert app.poll() is None, "the server stopped"
    finally:
        app.terminate()
        try:
            _, err = app.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            app.kill()
            _, err = app.communicate()
    assert "Traceback" not in err, err[-3000:]


def test_app_without_models_says_so_and_bad_arguments_fail_in_one_line(tmp_path):
    """Each tool of an empty models folder tells how to get a model, in its tab and on use; --models that is not
    a folder and a port in use are one-line errors."""
    from deploy.web_demo import Demo
    demo = Demo(str(tmp_path))
    for result, tool in ((demo.cartoon(PHOTO), "cartoon"), (demo.makeup(PHOTO, "AtoB"), "makeup"),
                         (demo.edit(PHOTO, "stgan", [], "Bald", 1.0), "attributes")):
        assert result[:2] == (None, None) and result[2] == demo.missing_text(tool)
    assert "convert_weights.py" in demo.missing_text("cartoon") and "train.py" in demo.missing_text("makeup")
    from app import build_ui
    shown = [c.get("props", {}).get("value") for c in build_ui(demo).get_config_file()["components"]]
    assert all(demo.missing_text(tool) in shown for tool in ("cartoon", "makeup", "attributes"))
    assert f"{tmp_path}/photo2cartoon" in demo.missing_text("cartoon")
    r = run_cli(["app.py", "--models", str(tmp_path / "none")])
    assert r.returncode != 0 and "--models is not a folder" in r.stderr and "Traceback" not in r.stderr
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        r = run_cli(["app.py", "--models", str(tmp_path), "--port", str(s.getsockname()[1])], timeout=300)
    assert r.returncode != 0 and "cannot serve on" in r.stderr and "Traceback" not in r.stderr, r.stderr[-1500:]
