"""Shared test helpers: comparisons, running the entry points as a user does, the offline toy datasets."""
import json
import os
import subprocess
import sys
import time

import numpy as np

from torch_refs.weights import load_into_ms, randomize_torch, torch_state_numpy  # noqa: F401

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def assert_close(t, m, tol):
    """A torch output vs a MindSpore output: same shape, max abs diff <= tol (scaled by |t| when above 1)."""
    t = t.detach().numpy() if hasattr(t, "detach") else np.asarray(t)
    m = m.asnumpy() if hasattr(m, "asnumpy") else np.asarray(m)
    assert t.shape == m.shape, (t.shape, m.shape)
    scale = max(1.0, float(np.abs(t).max()))
    err = float(np.abs(t - m).max())
    assert err <= tol * scale, f"max abs diff {err:.3g} (scale {scale:.3g})"


def assert_close_beyond_rounding(t, m, t64, tol, k=2.0):
    """assert_close for a network that amplifies float32 rounding: the MindSpore output may differ from
    PyTorch's float32 output `t` by tol plus k times PyTorch's own float32 error (its distance from the same
    network in float64, `t64`). Two float32 implementations carry rounding noise of about that size each, so
    on a well-conditioned network this is tol itself, and on one whose output moves by 5e-5 under a 1-ulp
    change of its input (photo2cartoon's full generator with the tests' random weights) it does not fail on
    which CPU's vector width rounded last."""
    t, t64 = (v.detach().numpy() if hasattr(v, "detach") else np.asarray(v) for v in (t, t64))
    m = m.asnumpy() if hasattr(m, "asnumpy") else np.asarray(m)
    assert t.shape == m.shape == t64.shape, (t.shape, m.shape, t64.shape)
    scale = max(1.0, float(np.abs(t).max()))
    floor = float(np.abs(t - t64).max())
    err = float(np.abs(t - m).max())
    assert err <= tol * scale + k * floor, \
        f"max abs diff {err:.3g} (scale {scale:.3g}; PyTorch float32 vs float64: {floor:.3g})"


def run_cli(args, timeout=900, cwd=ROOT, env_extra=None):
    """Run an entry point exactly as a user would: `python <script> ...` from the repo root."""
    env = dict(os.environ)
    env.update(env_extra or {})
    return subprocess.run([sys.executable] + list(args), cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env)


def run_history(run_dir):
    """The loss history stored with a run's latest checkpoint: [iteration, d_loss, g_loss, terms]."""
    with open(os.path.join(run_dir, "checkpoints", "latest.json")) as f:
        name = json.load(f)["checkpoint"]
    with open(os.path.join(run_dir, "checkpoints", name[:-5] + ".json")) as f:
        return json.load(f)["history"]


def assert_resume_after_sigkill_is_exact(args, tmp_path, kill_after, total, nets=(), env=None):
    """train.py with `args` (which must include --save_freq) run straight to `total` iterations, and again
    killed with SIGKILL once a checkpoint at `kill_after` or later exists, then resumed: the resumed run must
    refuse to start over without --resume, continue from the checkpoint, and give the same loss history (every
    term, rtol 1e-5) and the same exported weights for `nets` as the straight run. Returns the straight run's
    CompletedProcess."""
    import signal
    import mindspore as ms
    common = ["train.py", "--result_dir", str(tmp_path), "--iterations", str(total), "--print_freq", "1",
              "--sample_freq", "1000"] + list(args)
    ref = run_cli(common + ["--run_name", "straight"], env_extra=env)
    assert ref.returncode == 0, ref.stderr[-2000:]
    full_env = dict(os.environ, **(env or {}))
    proc = subprocess.Popen([sys.executable] + common + ["--run_name", "killed"], cwd=ROOT, env=full_env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_for_checkpoint(str(tmp_path / "killed"), kill_after, proc, timeout=600), \
            f"no checkpoint at iteration {kill_after}"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    with open(tmp_path / "killed" / "checkpoints" / "latest.json") as f:
        stopped_at = json.load(f)["iteration"]
    assert kill_after <= stopped_at < total, stopped_at
    again = run_cli(common + ["--run_name", "killed"], env_extra=env)
    assert again.returncode != 0 and "--resume" in again.stderr     # a killed run is never overwritten
    resumed = run_cli(common + ["--run_name", "killed", "--resume"], env_extra=env)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"at iteration {stopped_at}" in resumed.stdout
    h_ref, h_res = run_history(tmp_path / "straight"), run_history(tmp_path / "killed")
    assert [h[0] for h in h_res] == list(range(1, total + 1))
    for a, b in zip(h_ref, h_res):
        assert a[0] == b[0] and sorted(a[3]) == sorted(b[3]) and (a[1] is None) == (b[1] is None)
        np.testing.assert_allclose([v for v in a[1:3] if v is not None] + [a[3][k] for k in sorted(a[3])],
                                   [v for v in b[1:3] if v is not None] + [b[3][k] for k in sorted(b[3])],
                                   rtol=1e-5, atol=1e-7, err_msg=f"iteration {a[0]}")
    for net in nets:
        p1 = ms.load_checkpoint(str(tmp_path / "straight" / "model" / f"{net}.ckpt"))
        p2 = ms.load_checkpoint(str(tmp_path / "killed" / "model" / f"{net}.ckpt"))
        assert sorted(p1) == sorted(p2)
        for k in p1:
            np.testing.assert_allclose(p1[k].asnumpy(), p2[k].asnumpy(), rtol=1e-5, atol=1e-7, err_msg=k)
    return ref


def assert_resume_from_checkpoint_is_exact(args, tmp_path, resume_at, total, nets=()):
    """For runs whose compilation is costly: one straight run (with checkpoints every `resume_at` iterations)
    to `total`, then a copy of its run directory cut back to the checkpoint of `resume_at` (the state a kill
    after that checkpoint leaves) resumed to `total`: the same loss history and exported weights. Returns the
    straight run's CompletedProcess."""
    import shutil
    import mindspore as ms
    common = ["train.py", "--result_dir", str(tmp_path), "--iterations", str(total), "--print_freq", "1",
              "--sample_freq", "1000", "--save_freq", str(resume_at)] + list(args)
    ref = run_cli(common + ["--run_name", "straight"])
    assert ref.returncode == 0, ref.stderr[-2000:]
    cut = tmp_path / "cut"
    shutil.copytree(tmp_path / "straight", cut)
    stem = f"iter_{resume_at:07d}"
    for f in (cut / "checkpoints").iterdir():
        if f.name.startswith("iter_") and not f.name.startswith(stem):
            f.unlink()
    (cut / "checkpoints" / "latest.json").write_text(json.dumps({"checkpoint": stem + ".ckpt",
                                                                 "iteration": resume_at}))
    shutil.rmtree(cut / "model")
    resumed = run_cli(common + ["--run_name", "cut", "--resume"])
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"at iteration {resume_at}" in resumed.stdout
    h_ref, h_res = run_history(tmp_path / "straight"), run_history(cut)
    assert [h[0] for h in h_res] == list(range(1, total + 1))
    for a, b in zip(h_ref, h_res):
        np.testing.assert_allclose([a[1], a[2]] + [a[3][k] for k in sorted(a[3])],
                                   [b[1], b[2]] + [b[3][k] for k in sorted(b[3])], rtol=1e-5, atol=1e-7,
                                   err_msg=f"iteration {a[0]}")
    for net in nets:
        p1 = ms.load_checkpoint(str(tmp_path / "straight" / "model" / f"{net}.ckpt"))
        p2 = ms.load_checkpoint(str(cut / "model" / f"{net}.ckpt"))
        for k in p1:
            np.testing.assert_allclose(p1[k].asnumpy(), p2[k].asnumpy(), rtol=1e-5, atol=1e-7, err_msg=k)
    return ref


def wait_for_checkpoint(run_dir, iteration, proc, timeout=300):
    pointer = os.path.join(run_dir, "checkpoints", "latest.json")
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            return False
        if os.path.exists(pointer):
            try:
                with open(pointer) as f:
                    if json.load(f)["iteration"] >= iteration:
                        return True
            except ValueError:
                pass
        time.sleep(0.2)
    return False


def make_digit_domains(root, size=32, n_train=300, n_test=40, seed=0):
    """An offline toy domain pair from sklearn's digits: A = red digits on black, B = green digits on black,
    upscaled to `size`. Train A and B use disjoint digit images (unpaired). The known mapping A->B moves the
    red channel into the green one and leaves green images as they are (so U-GAT-IT's identity loss agrees
    with it). Returns (test A images, their true B images), uint8 HxWx3."""
    import cv2
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits().images  # 1797 x 8 x 8 in 0..16
    order = np.random.default_rng(seed).permutation(len(digits))
    gray = [np.clip(cv2.resize((d / 16.0 * 255).astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC),
                    0, 255).astype(np.uint8) for d in digits[order]]

    def red(g):
        return np.dstack([g, np.zeros_like(g), np.zeros_like(g)])

    def green(g):
        return np.dstack([np.zeros_like(g), g, np.zeros_like(g)])
    test = gray[2 * n_train:2 * n_train + n_test]
    split = {"trainA": [red(g) for g in gray[:n_train]], "trainB": [green(g) for g in gray[n_train:2 * n_train]],
             "testA": [red(g) for g in test],
             "testB": [green(g) for g in gray[2 * n_train + n_test:2 * n_train + 2 * n_test]]}
    for name, items in split.items():
        os.makedirs(os.path.join(root, name), exist_ok=True)
        for k, im in enumerate(items):
            Image.fromarray(im).save(os.path.join(root, name, f"{k:04d}.png"))
    return np.stack(split["testA"]), np.stack([green(g) for g in test])


def make_digit_pairs(root, size=32, n_train=200, n_test=16, seed=0):
    """Paired toy data for pix2pix from the same digits: A = red digit, B = the same digit in green, saved side
    by side (A|B) in train/ and test/, as the original's aligned datasets. Returns (test A, test B) uint8."""
    import tempfile

    from PIL import Image
    with tempfile.TemporaryDirectory() as tmp:
        test_a, test_b = make_digit_domains(tmp, size, n_train, n_test, seed)
        train_a = [np.asarray(Image.open(os.path.join(tmp, "trainA", f))) for f in sorted(os.listdir(os.path.join(tmp, "trainA")))]
    green = [np.dstack([np.zeros_like(a[:, :, 0]), a[:, :, 0], np.zeros_like(a[:, :, 0])]) for a in train_a]
    for split, a_list, b_list in (("train", train_a, green), ("test", list(test_a), list(test_b))):
        os.makedirs(os.path.join(root, split), exist_ok=True)
        for k, (a, b) in enumerate(zip(a_list, b_list)):
            Image.fromarray(np.concatenate([a, b], 1)).save(os.path.join(root, split, f"{k:04d}.png"))
    return test_a, test_b


DIGIT_ATTRS = ("Inverted", "Dim", "Red")


def render_digit(gray, attrs):
    """A toy 'face' with attributes: gray (HxW uint8 digit), attrs (Inverted, Dim, Red) in {0, 1}: Inverted
    swaps ink and paper, Dim scales the brightness to 45 %, Red tints the light parts."""
    g = gray.astype(np.float32) / 255.0
    if attrs[0]:
        g = 1.0 - g
    if attrs[1]:
        g = g * 0.45
    colour = np.array([1.0, 0.15, 0.15]) if attrs[2] else np.array([1.0, 1.0, 1.0])
    return np.clip(g[:, :, None] * colour * 255.0 + 0.5, 0, 255).astype(np.uint8)


def digit_grays(size=32, seed=0):
    import cv2
    from sklearn.datasets import load_digits
    digits = load_digits().images
    order = np.random.default_rng(seed).permutation(len(digits))
    return [np.clip(cv2.resize((d / 16.0 * 255).astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC),
                    0, 255).astype(np.uint8) for d in digits[order]]


def make_digit_attributes(root, size=32, n_train=600, n_test=24, seed=0):
    """An offline attribute-editing toy in CelebA's format: root/list_attr_celeba.txt (count, names, `name 1 -1
    ...`), root/list_eval_partition.txt and root/img_align_celeba/*.png; each digit gets random Inverted /
    Dim / Red attributes. Returns (test grays, test attrs (n, 3) 0/1)."""
    grays = digit_grays(size, seed)
    n = n_train + n_test
    attrs = np.random.default_rng(seed + 1).integers(0, 2, (n, len(DIGIT_ATTRS)))
    write_celeba_layout(root, [render_digit(grays[k], attrs[k]) for k in range(n)], DIGIT_ATTRS, attrs, n_train)
    return grays[n_train:n], attrs[n_train:]


def write_celeba_layout(root, images, names, attrs, n_train):
    """CelebA's files for `images` (uint8 HxWx3) with 0/1 `attrs` over `names`: root/img_align_celeba/*.png,
    root/list_attr_celeba.txt (a count, the names, `name 1 -1 ...`) and root/list_eval_partition.txt (the
    first n_train images train (0), the rest test (2))."""
    from PIL import Image
    img_dir = os.path.join(root, "img_align_celeba")
    os.makedirs(img_dir, exist_ok=True)
    lines, parts = [str(len(images)), " ".join(names)], []
    for k, img in enumerate(images):
        name = f"{k:06d}.png"
        Image.fromarray(img).save(os.path.join(img_dir, name))
        lines.append(name + " " + " ".join("1" if v else "-1" for v in attrs[k]))
        parts.append(f"{name} {0 if k < n_train else 2}")
    with open(os.path.join(root, "list_attr_celeba.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(root, "list_eval_partition.txt"), "w") as f:
        f.write("\n".join(parts) + "\n")


def digit_attribute_classifier(size=32, seed=0):
    """A small MLP per attribute, trained on ground-truth renders of digits the toy set does not use (the last
    500 of the shuffled digits, each drawn with 4 random attribute sets): predict(images uint8 NxHxWx3) ->
    N x 3 0/1."""
    from sklearn.neural_network import MLPClassifier
    grays = digit_grays(size, seed)[-500:] * 4
    rng = np.random.default_rng(seed + 2)
    attrs = rng.integers(0, 2, (len(grays), len(DIGIT_ATTRS)))
    x = np.stack([render_digit(g, a) for g, a in zip(grays, attrs)])

    def features(images):
        small = images.reshape(len(images), size // 2, 2, size // 2, 2, 3).mean((2, 4))
        return small.reshape(len(images), -1).astype(np.float64) / 255.0
    models = [MLPClassifier((64,), max_iter=400, random_state=seed).fit(features(x), attrs[:, k])
              for k in range(len(DIGIT_ATTRS))]

    def predict(images):
        f = features(images)
        return np.stack([m.predict(f) for m in models], 1)
    return predict


STAR_ATTRS = ("Red", "Green", "Blue", "Thick")   # one colour at a time (as hair colours), and a stroke weight
_STAR_COLOURS = np.array([[1.0, 0.12, 0.12], [0.12, 1.0, 0.12], [0.2, 0.35, 1.0]])


def render_star_digit(gray, attrs):
    """A toy multi-domain image: the digit inked in the one colour of attrs[:3] (Red / Green / Blue), its
    strokes thickened (a 5x5 dilation) when attrs[3] (Thick)."""
    import cv2
    g = gray
    if attrs[3]:
        g = cv2.dilate(g, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5)))
    colour = _STAR_COLOURS[int(np.argmax(attrs[:3]))]
    return np.clip(g.astype(np.float32)[:, :, None] / 255.0 * colour * 255.0 + 0.5, 0, 255).astype(np.uint8)


def random_star_attrs(rng, n):
    colour = rng.integers(0, 3, n)
    attrs = np.zeros((n, len(STAR_ATTRS)), np.int64)
    attrs[np.arange(n), colour] = 1
    attrs[:, 3] = rng.integers(0, 2, n)
    return attrs


def make_star_digits(root, size=32, n_train=600, n_test=24, seed=0):
    """StarGAN's offline toy in CelebA's format (list_attr_celeba.txt, list_eval_partition.txt,
    img_align_celeba/): digits with one colour of Red / Green / Blue and Thick or not. Returns (test grays,
    test attrs (n, 4) 0/1)."""
    grays = digit_grays(size, seed)
    n = n_train + n_test
    attrs = random_star_attrs(np.random.default_rng(seed + 5), n)
    write_celeba_layout(root, [render_star_digit(grays[k], attrs[k]) for k in range(n)], STAR_ATTRS, attrs, n_train)
    return grays[n_train:n], attrs[n_train:]


def star_classifier(size=32, seed=0):
    """An MLP for the colour (3 classes) and one for Thick, trained on true renders of digits the toy set
    does not use: predict(images uint8 NxHxWx3) -> N x 4 0/1 (one colour on)."""
    from sklearn.neural_network import MLPClassifier
    grays = digit_grays(size, seed)[-500:] * 4
    attrs = random_star_attrs(np.random.default_rng(seed + 6), len(grays))
    x = np.stack([render_star_digit(g, a) for g, a in zip(grays, attrs)])

    def features(images):
        small = images.reshape(len(images), size // 2, 2, size // 2, 2, 3).mean((2, 4))
        return small.reshape(len(images), -1).astype(np.float64) / 255.0
    f = features(x)
    colour = MLPClassifier((64,), max_iter=400, random_state=seed).fit(f, attrs[:, :3].argmax(1))
    thick = MLPClassifier((64,), max_iter=400, random_state=seed).fit(f, attrs[:, 3])

    def predict(images):
        fi = features(images)
        out = np.zeros((len(images), 4), np.int64)
        out[np.arange(len(images)), colour.predict(fi)] = 1
        out[:, 3] = thick.predict(fi)
        return out
    return predict


def digit_labels(seed=0):
    """The digit (0-9) of each image of digit_grays(size, seed), in the same order."""
    from sklearn.datasets import load_digits
    d = load_digits()
    return d.target[np.random.default_rng(seed).permutation(len(d.images))]


def star_digit_reader(size=32, seed=0):
    """Which digit a toy render shows, whatever its colour and stroke weight: an MLP on the ink intensity
    (the brightest channel, scaled by the image's maximum), trained on true renders of digits the toy set
    does not use. read(images uint8 NxHxWx3) -> N digits."""
    from sklearn.neural_network import MLPClassifier
    grays, labels = digit_grays(size, seed), digit_labels(seed)
    idx = list(range(len(grays) - 500, len(grays))) * 4
    attrs = random_star_attrs(np.random.default_rng(seed + 7), len(idx))
    x = np.stack([render_star_digit(grays[i], a) for i, a in zip(idx, attrs)])

    def features(images):
        g = images.max(3).astype(np.float32)
        g = g / np.maximum(g.reshape(len(g), -1).max(1), 1.0)[:, None, None]
        return g.reshape(len(g), size // 2, 2, size // 2, 2).mean((2, 4)).reshape(len(g), -1)
    model = MLPClassifier((128,), max_iter=500, random_state=seed).fit(features(x), labels[idx])
    return lambda images: model.predict(features(images))


def digit_class_reader(seed=0):
    """An independent judge of generated digits: logistic regression on scikit-learn's 8x8 digits (trained on
    1200 of them), applied to any-size grey images (area-downsampled to 8x8). read(images uint8 NxHxW) ->
    class probabilities N x 10; also returns its accuracy on the 597 digits it did not see."""
    import cv2
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    d = load_digits()
    perm = np.random.default_rng(seed).permutation(len(d.images))
    clf = LogisticRegression(max_iter=2000).fit(d.data[perm[:1200]], d.target[perm[:1200]])
    held_out = float(clf.score(d.data[perm[1200:]], d.target[perm[1200:]]))

    def read(images):
        small = [cv2.resize(np.asarray(i, np.float32), (8, 8), interpolation=cv2.INTER_AREA) / 255.0 * 16.0
                 for i in images]
        return clf.predict_proba(np.stack(small).reshape(len(images), -1))
    return read, held_out


def train_attr_classifier(root, names, tmp_path, crop="stgan", size=32):
    """train.py --model attr_classifier on a toy in CelebA's layout (small sizes, 60 iterations): its model dir."""
    r = run_cli(["train.py", "--model", "attr_classifier", "--dataset", str(root), "--result_dir", str(tmp_path),
                 "--run_name", f"clf_{crop}", "--selected_attrs", *names, "--crop", crop, "--img_size", str(size),
                 "--dim", "16", "--n_layers", "3", "--fc_dim", "64", "--iterations", "60", "--batch_size", "32",
                 "--lr", "1e-3", "--print_freq", "30", "--save_freq", "60", "--sample_freq", "60", "-q"])
    assert r.returncode == 0, r.stderr[-2000:]
    assert "loss:" in r.stdout and "C_acc" in r.stdout and "d_loss" not in r.stdout
    return os.path.join(str(tmp_path), f"clf_{crop}", "model")


def attr_accuracy(model, classifier, root, out_json):
    """eval.py --attr_accuracy's JSON for an editing model dir on the toy's test partition."""
    r = run_cli(["eval.py", "--attr_accuracy", "--checkpoint", str(model), "--classifier", str(classifier),
                 "--dataset", str(root), "--json", str(out_json), "-q"])
    assert r.returncode == 0, r.stderr[-2000:]
    assert "editing acc" in r.stdout
    with open(out_json, encoding="utf-8") as f:
        return json.load(f)


# ------------------------------------------------------------------ semantic synthesis (SPADE)
SEMANTIC_COLOURS = np.array([[40, 40, 40], [220, 50, 40], [40, 190, 60], [50, 80, 230], [235, 215, 50]], np.float32)


def render_semantic(label, rng):
    """A toy photo of a label map: each class its own colour and texture (0: plain dark, 1: red with horizontal
    stripes, 2: green checks, 3: blue with vertical stripes, 4: yellow speckle), plus a little noise."""
    h, w = label.shape
    yy, xx = np.mgrid[0:h, 0:w]
    tex = [np.zeros((h, w)), ((yy // 2) % 2) * 30.0, (((yy // 3) + (xx // 3)) % 2) * 30.0, ((xx // 2) % 2) * 30.0,
           rng.integers(0, 2, (h, w)) * 30.0]
    img = np.zeros((h, w, 3), np.float32)
    for c in range(len(SEMANTIC_COLOURS)):
        m = label == c
        img[m] = SEMANTIC_COLOURS[c] - tex[c][m][:, None] * 0.5 + 15.0
    img += rng.normal(0, 4, img.shape)
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


def random_label_map(rng, size, n_classes=5, n_shapes=4):
    """A label map of random shapes (discs, rectangles, triangles) of classes 1.. over class 0, and its instance
    map (a distinct id per shape)."""
    import cv2
    label = np.zeros((size, size), np.uint8)
    inst = np.zeros((size, size), np.uint16)
    for k in range(n_shapes):
        c = int(rng.integers(1, n_classes))
        kind = int(rng.integers(0, 3))
        cx, cy = (int(v) for v in rng.integers(size // 6, size - size // 6, 2))
        r = int(rng.integers(size // 8, size // 3))
        m = np.zeros_like(label)
        if kind == 0:
            cv2.circle(m, (cx, cy), r, 1, -1)
        elif kind == 1:
            cv2.rectangle(m, (cx - r, cy - r // 2), (cx + r, cy + r // 2), 1, -1)
        else:
            pts = np.array([[cx, cy - r], [cx - r, cy + r], [cx + r, cy + r]], np.int32)
            cv2.fillPoly(m, [pts], 1)
        label[m > 0] = c
        inst[m > 0] = k + 1
    return label, inst


def make_semantic_dataset(root, size=32, n_train=200, n_test=16, n_classes=5, layout="list", instances=False, seed=0):
    """An offline semantic-synthesis toy: label maps of random shapes, each class rendered with its own colour
    and texture (render_semantic). layout "list": root/train.txt and test.txt of label<TAB>image[<TAB>instance]
    (files under labels/, images/, instances/); "custom": root/{train,test}_{label,img[,inst]}/. Returns the
    test label maps (n, size, size) uint8."""
    from PIL import Image
    rng = np.random.default_rng(seed)
    tests = []
    for split, n in (("train", n_train), ("test", n_test)):
        lines = []
        for k in range(n):
            label, inst = random_label_map(rng, size, n_classes)
            img = render_semantic(label, rng)
            if layout == "list":
                names = [f"labels/{split}_{k:04d}.png", f"images/{split}_{k:04d}.jpg", f"instances/{split}_{k:04d}.png"]
            else:
                names = [f"{split}_label/{k:04d}.png", f"{split}_img/{k:04d}.png", f"{split}_inst/{k:04d}.png"]
            for name in names[:2] + (names[2:] if instances else []):
                os.makedirs(os.path.join(root, os.path.dirname(name)), exist_ok=True)
            Image.fromarray(label, "L").save(os.path.join(root, names[0]))
            kw = {"quality": 95} if names[1].endswith(".jpg") else {}
            Image.fromarray(img).save(os.path.join(root, names[1]), **kw)
            if instances:
                Image.fromarray(inst.astype(np.uint16)).save(os.path.join(root, names[2]))
            lines.append("\t".join(names if instances else names[:2]))
            if split == "test":
                tests.append(label)
        if layout == "list":
            with open(os.path.join(root, f"{split}.txt"), "w") as f:
                f.write("\n".join(lines) + "\n")
    return np.stack(tests)


def semantic_miou(images, labels, n_classes=5):
    """Mean IoU between `labels` and the segmentation of `images` (N x H x W x 3 uint8) by nearest class colour."""
    d = ((images[:, :, :, None, :].astype(np.float32) - SEMANTIC_COLOURS[None, None, None]) ** 2).sum(-1)
    seg = d.argmin(-1)
    ious = []
    for c in range(n_classes):
        inter = np.logical_and(seg == c, labels == c).sum()
        union = np.logical_or(seg == c, labels == c).sum()
        if union:
            ious.append(inter / union)
    return float(np.mean(ious))
