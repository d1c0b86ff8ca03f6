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
    from PIL import Image
    grays = digit_grays(size, seed)
    rng = np.random.default_rng(seed + 1)
    n = n_train + n_test
    attrs = rng.integers(0, 2, (n, len(DIGIT_ATTRS)))
    img_dir = os.path.join(root, "img_align_celeba")
    os.makedirs(img_dir, exist_ok=True)
    lines, parts = [str(n), " ".join(DIGIT_ATTRS)], []
    for k in range(n):
        name = f"{k:06d}.png"
        Image.fromarray(render_digit(grays[k], attrs[k])).save(os.path.join(img_dir, name))
        lines.append(name + " " + " ".join("1" if v else "-1" for v in attrs[k]))
        parts.append(f"{name} {0 if k < n_train else 2}")
    with open(os.path.join(root, "list_attr_celeba.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(root, "list_eval_partition.txt"), "w") as f:
        f.write("\n".join(parts) + "\n")
    return grays[n_train:n], attrs[n_train:]


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
