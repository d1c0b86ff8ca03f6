"""When the disk fills up, the output folder is read-only, or an input vanishes during a run: every entry point
stops with one line, leaves no partial file, and keeps what it wrote before (outputs, manifests,
checkpoints) whole.

A full disk is a small tmpfs filled up to a few kilobytes; a read-only folder is a read-only tmpfs (as root,
where file permissions do not stop writes) or a folder without write permission (otherwise).
"""
import errno
import json
import os
import shutil
import subprocess
import sys
import types

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from tests.helpers import ROOT, run_cli


def _mount(path, options):
    path.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True, text=True)
    return r.returncode == 0


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MB file system (`.path`); `.fill(leave)` fills it up to `leave` bytes."""
    disk = tmp_path / "disk"
    if not _mount(disk, "size=2m"):
        pytest.skip("no tmpfs mount here (needs root); the full-disk behaviour is not exercised")

    def fill(leave=4096):
        stat = os.statvfs(disk)
        free = stat.f_bavail * stat.f_frsize
        with open(disk / "filler", "wb") as f:
            try:
                f.write(b"\0" * max(0, free - leave))
                f.flush()
            except OSError as e:
                assert e.errno == errno.ENOSPC
    yield types.SimpleNamespace(path=disk, fill=fill)
    subprocess.run(["umount", str(disk)], capture_output=True)


@pytest.fixture
def read_only(tmp_path):
    ro = tmp_path / "ro"
    if os.geteuid() == 0:
        if not _mount(ro, "size=64k,ro"):
            pytest.skip("root without mount: a read-only folder cannot be made")
        yield ro
        subprocess.run(["umount", str(ro)], capture_output=True)
    else:
        ro.mkdir()
        ro.chmod(0o555)
        yield ro
        ro.chmod(0o755)


def _no_leftovers(folder):
    left = [p for p in folder.rglob("*") if p.name.startswith((".part-", ".tmp-", ".old-")) or p.suffix == ".tmp"]
    assert not left, left


def _one_line_error(r, *words):
    assert r.returncode != 0
    assert "Traceback" not in r.stderr and "CRITICAL" not in r.stderr, r.stderr[-1500:]
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, r.stderr[-1500:]
    for w in words:
        assert w in errors[0], errors[0]
    return errors[0]


@pytest.fixture(scope="module")
def cartoon_model(tmp_path_factory):
    import models
    from core.model_dir import write_model_dir
    d = tmp_path_factory.mktemp("model") / "m"
    cfg = {"ngf": 8, "img_size": 64, "light": True}
    net = models.create_model("ugatit_p2c_generator", **cfg)
    write_model_dir(str(d), {"format": 1, "arch": "photo2cartoon", "networks": {
        "genA2B": {"model": "ugatit_p2c_generator", "config": cfg}}},
        {"genA2B": {p.name: p.asnumpy() for p in net.get_parameters()}})
    return d


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    d = tmp_path_factory.mktemp("photos")
    astro = skdata.astronaut()
    Image.fromarray(astro).save(d / "a.jpg")
    Image.fromarray(np.ascontiguousarray(astro[:, ::-1])).save(d / "b.jpg")
    return d


def test_test_py(cartoon_model, photos, small_disk, read_only, tmp_path):
    r = run_cli(["test.py", "--photo_path", str(photos / "a.jpg"), "--save_path", str(read_only / "x.png"),
                 "--checkpoint", str(cartoon_model)])
    _one_line_error(r, "cannot write to the output folder")
    r = run_cli(["test.py", "--photo_path", str(photos / "a.jpg"), "--save_path", str(small_disk.path / "out"),
                 "--checkpoint", str(cartoon_model)])
    assert r.returncode == 0, r.stderr[-2000:]
    first = (small_disk.path / "out" / "a_cartoon.png").read_bytes()
    small_disk.fill()
    r = run_cli(["test.py", "--photo_path", str(photos), "--save_path", str(small_disk.path / "out"),
                 "--checkpoint", str(cartoon_model), "-q"])
    _one_line_error(r, "cannot write", "b_cartoon.png", "No space left on device")
    assert (small_disk.path / "out" / "a_cartoon.png").read_bytes() == first
    assert not (small_disk.path / "out" / "b_cartoon.png").exists()
    _no_leftovers(small_disk.path)
    # an input that vanished between the listing and the reading (a dangling link): named, skipped
    gone = tmp_path / "gone"
    gone.mkdir()
    shutil.copy(photos / "a.jpg", gone / "a.jpg")
    (gone / "z.jpg").symlink_to(tmp_path / "nowhere.jpg")
    r = run_cli(["test.py", "--photo_path", str(gone), "--save_path", str(tmp_path / "o"),
                 "--checkpoint", str(cartoon_model), "-q"])
    assert r.returncode == 0 and "z.jpg: missing" in r.stdout, r.stdout + r.stderr[-1000:]


def test_data_process(photos, small_disk, read_only, tmp_path):
    r = run_cli(["data_process.py", "--data_path", str(photos), "--save_path", str(read_only / "faces")])
    _one_line_error(r, "cannot write to --save_path")
    one = tmp_path / "one"
    one.mkdir()
    shutil.copy(photos / "a.jpg", one / "a.jpg")
    out = small_disk.path / "faces"
    r = run_cli(["data_process.py", "--data_path", str(one), "--save_path", str(out), "-q"])
    assert r.returncode == 0, r.stderr[-2000:]
    face = (out / "a.png").read_bytes()
    manifest = (out / "manifest.jsonl").read_text()
    shutil.copy(photos / "b.jpg", one / "b.jpg")
    small_disk.fill(leave=16384)
    r = run_cli(["data_process.py", "--data_path", str(one), "--save_path", str(out), "-q"])
    _one_line_error(r, "b.jpg", "No space left on device")
    assert (out / "a.png").read_bytes() == face and (out / "manifest.jsonl").read_text() == manifest
    assert not (out / "b.png").exists()
    _no_leftovers(small_disk.path)


def _train(args, result_dir, **kw):
    return run_cli(["train.py", "--arch", "ugatit", "--ngf", "4", "--n_blocks", "1", "--img_size", "32",
                    "--n_dis_global", "4", "--n_dis_local", "3", "--result_dir", str(result_dir), "-q"] + args, **kw)


def test_train_py(digit_domains, small_disk, read_only, tmp_path):
    data, _, _ = digit_domains
    r = _train(["--dataset", str(data), "--iterations", "1"], read_only)
    _one_line_error(r, "cannot write to the run directory")
    # checkpoints on a disk that fills up: the run stops at the next save, the last complete one stays
    r = _train(["--dataset", str(data), "--run_name", "r", "--iterations", "2", "--save_freq", "2"], small_disk.path)
    assert r.returncode == 0, r.stderr[-2000:]
    ckpt = small_disk.path / "r" / "checkpoints"
    before = {p.name: p.read_bytes() for p in ckpt.iterdir()}
    small_disk.fill(leave=20000)
    r = _train(["--dataset", str(data), "--run_name", "r", "--iterations", "4", "--save_freq", "2", "--resume"],
               small_disk.path)
    _one_line_error(r, "cannot write", "No space left on device", "iter_0000002.ckpt")
    assert {p.name: p.read_bytes() for p in ckpt.iterdir()} == before
    assert json.loads((ckpt / "latest.json").read_text())["iteration"] == 2
    _no_leftovers(small_disk.path)


def test_train_py_stops_when_training_images_vanish(digit_domains, tmp_path):
    """Every training image of domain A removed during the run: the run saves its last complete iteration and
    names a missing file in one line; --resume continues once they are back."""
    import signal
    import time
    from tests.helpers import wait_for_checkpoint
    src, _, _ = digit_domains
    data = tmp_path / "data"
    shutil.copytree(src, data)
    args = ["train.py", "--arch", "ugatit", "--ngf", "4", "--n_blocks", "1", "--img_size", "32", "--n_dis_global",
            "4", "--n_dis_local", "3", "--result_dir", str(tmp_path), "--run_name", "v", "--dataset", str(data),
            "--iterations", "100000", "--save_freq", "2", "--print_freq", "1000", "-q"]
    proc = subprocess.Popen([sys.executable] + args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        assert wait_for_checkpoint(str(tmp_path / "v"), 2, proc, timeout=600)
        shutil.move(str(data / "trainA"), str(tmp_path / "trainA.away"))
        out, err = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            time.sleep(1)
    assert proc.returncode == 1, err[-2000:]
    assert "Traceback" not in err and "training image could not be read:" in err and "(missing)" in err, err[-2000:]
    latest = json.loads((tmp_path / "v" / "checkpoints" / "latest.json").read_text())["iteration"]
    assert f"stopped at iteration {latest}" in err
    shutil.move(str(tmp_path / "trainA.away"), str(data / "trainA"))
    r = run_cli(args[:-7] + ["--iterations", str(latest + 1), "--save_freq", "1", "--print_freq", "1000", "-q",
                             "--resume"])
    assert r.returncode == 0 and f"at iteration {latest}" in r.stdout, r.stderr[-2000:]


def test_convert_weights(small_disk, read_only, tmp_path):
    import torch
    from tests.helpers import randomize_torch
    from torch_refs.ugatit_ref import P2CGeneratorRef
    src = tmp_path / "photo2cartoon_weights.pt"
    torch.save({"genA2B": randomize_torch(P2CGeneratorRef(ngf=8, img_size=256, light=True)).state_dict()}, src)
    r = run_cli(["convert_weights.py", "--src", str(src), "--dst", str(read_only / "p2c")])
    _one_line_error(r, "cannot write")
    small_disk.fill(leave=8192)
    r = run_cli(["convert_weights.py", "--src", str(src), "--dst", str(small_disk.path / "p2c")])
    _one_line_error(r, "cannot write", "No space left on device")
    assert not (small_disk.path / "p2c").exists()
    _no_leftovers(small_disk.path)
