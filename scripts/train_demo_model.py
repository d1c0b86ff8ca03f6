#!/usr/bin/env python
"""Train the small demo generator that ships in pretrained_models/demo_cartoon/.

No published weights can be downloaded here, so `make demo` uses a generator this project trains itself:
the U-GAT-IT generator (light, ngf 16, 2 blocks, 64 px) trained with train.py on augmented crops of the
bundled sample photo (A) against a classic OpenCV cartoon filter of other crops (B). (The photo2cartoon
generator itself compiles for about 3 minutes and runs 2.6 s per iteration at 64 px on this 2-core CPU
in GRAPH_MODE, too slow for a setup step.)
It is a toy that shows the whole path runs; real results need the published photo2cartoon weights
(convert_weights.py) or training on a real dataset.

  .venv/bin/python scripts/train_demo_model.py [--iterations 600] [--out pretrained_models/demo_cartoon]
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

import cv2
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def cartoon_filter(rgb):
    """Edge-preserving smoothing + colour quantisation + dark edges: the classic OpenCV cartoon effect."""
    color = rgb
    for _ in range(3):
        color = cv2.bilateralFilter(color, 9, 60, 60)
    color = (color // 40) * 40 + 20
    gray = cv2.medianBlur(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), 5)
    edges = cv2.adaptiveThreshold(gray, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY, 9, 4)
    return cv2.bitwise_and(color, color, mask=edges)


def augment(face, rng):
    h, w = face.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2 + rng.uniform(-8, 8), h / 2 + rng.uniform(-8, 8)),
                                rng.uniform(-8, 8), rng.uniform(0.9, 1.12))
    out = cv2.warpAffine(face, m, (w, h), borderValue=(255, 255, 255))
    if rng.random() < 0.5:
        out = out[:, ::-1]
    gain = rng.uniform(0.85, 1.15, size=3)
    return np.clip(out.astype(np.float32) * gain, 0, 255).astype(np.uint8)


def build_dataset(root, faces, n=160, seed=0):
    from data.images import write_image_atomic
    rng = np.random.default_rng(seed)
    for split, count in (("trainA", n), ("trainB", n), ("testA", 4), ("testB", 4)):
        for k in range(count):
            img = augment(faces[k % len(faces)], rng)
            if split.endswith("B"):
                img = cartoon_filter(img)
            write_image_atomic(os.path.join(root, split, f"{k:04d}.png"), img)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--iterations", type=int, default=600)
    ap.add_argument("--out", default=os.path.join(ROOT, "pretrained_models", "demo_cartoon"))
    args = ap.parse_args()
    from data.images import list_images, read_rgb
    from preprocess.pipeline import FacePipeline
    pipe = FacePipeline()
    faces = [pipe.process(read_rgb(p)).faces[0].image for p in list_images(os.path.join(ROOT, "dataset", "samples"))]
    work = tempfile.mkdtemp(prefix="demo_cartoon_")
    try:
        build_dataset(os.path.join(work, "data"), faces)
        cmd = [sys.executable, os.path.join(ROOT, "train.py"), "--dataset", os.path.join(work, "data"),
               "--result_dir", work, "--run_name", "run", "--arch", "ugatit", "--ngf", "16",
               "--n_blocks", "2", "--img_size", "64", "--n_dis_global", "5", "--n_dis_local", "4", "--iterations",
               str(args.iterations), "--lr", "5e-4", "--print_freq", "50", "--save_freq", str(args.iterations),
               "--sample_freq", str(args.iterations), "--seed", "0", "-q"]
        subprocess.run(cmd, check=True)
        model = os.path.join(work, "run", "model")
        import json
        meta = json.load(open(os.path.join(model, "model.json")))
        meta["label"] = f"toy, {args.iterations} its (README)"
        meta["networks"] = {"genA2B": meta["networks"]["genA2B"]}     # ship the generator only
        for f in os.listdir(model):
            if f.endswith(".ckpt") and f != "genA2B.ckpt":
                os.unlink(os.path.join(model, f))
        from core.files import write_json_atomic
        write_json_atomic(os.path.join(model, "model.json"), meta)
        if os.path.exists(args.out):
            shutil.rmtree(args.out)
        shutil.copytree(model, args.out)
        shutil.copy(os.path.join(work, "run", "samples", f"{args.iterations:07d}.png"),
                    os.path.join(args.out, "training_samples.png"))
        print(f"demo generator written to {args.out}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
