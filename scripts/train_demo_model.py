#!/usr/bin/env python
"""Train the demo generator that ships in pretrained_models/demo_cartoon/ (teacher-student, on this CPU).

No published weights can be downloaded here, so `make demo`, `test.py` and the web demo use a generator this
project trains itself. The teacher is a non-learned cartoon filter (data/toon_filter.py: bilateral smoothing,
difference-of-Gaussians outlines, soft lightness bands). The student is Pix2Pix's U-Net (unet_256, ngf 32,
instance norm, no dropout), trained by `train.py --model pix2pix` with Pix2Pix's losses: a conditional GAN and
100 x the L1 distance to the teacher's output of the same crop. (photo2cartoon's generator with U-GAT-IT's
losses and --paired_weight was tried first and learned far too slowly for a CPU budget: docs/families.md.)
The data are random crops of the natural photos that ship inside installed packages (scikit-image's,
scikit-learn's and Gradio's sample images), with scale, rotation, flips, colour and hue jitter and white
margins. None of them is a human face: the bundled face photo (dataset/samples/astronaut.jpg) is held out, and
the script measures the student on it: the L1 distance to the teacher's output of the same aligned face (pixel
values in [0, 1]) beside that of copying the photo, and a sheet photo | teacher | student
(docs/images/demo_model_sheet.png).

  .venv/bin/python scripts/train_demo_model.py [--iterations 10000] [--crops 3000] [--out DIR]

What it is: a clean, flat-shaded stylisation of any face that a 2-core CPU learns in under an hour. What it is
not: photo2cartoon's learned cartoon style (that needs the published weights, convert_weights.py, or a real
photo / cartoon dataset).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import cv2
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
HELD_OUT = os.path.join(ROOT, "dataset", "samples", "astronaut.jpg")


def source_images():
    """The natural photos shipped inside installed packages (none of them a human face), as RGB uint8."""
    import sklearn.datasets
    import skimage.data
    skimage_dir = os.path.dirname(skimage.data.__file__)
    names = [os.path.join(skimage_dir, n) for n in ("chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png",
                                                     "camera.png", "color.png", "coins.png")]
    sklearn_dir = os.path.join(os.path.dirname(sklearn.datasets.__file__), "images")
    names += [os.path.join(sklearn_dir, n) for n in ("china.jpg", "flower.jpg")]
    try:
        import gradio
        media = os.path.join(os.path.dirname(gradio.__file__), "media_assets", "images")
        names += [os.path.join(media, n) for n in ("cheetah.jpg", "lion.jpg", "tower.jpg", "groot.jpeg")]
    except ImportError:
        pass
    images = []
    for path in names:
        img = cv2.imread(path, cv2.IMREAD_COLOR)
        if img is not None:
            images.append(img[:, :, ::-1].copy())
    return images


def random_crop(img, size, rng):
    """A square crop at a random scale, rotation and place, flipped half the time, colour- and hue-jittered;
    a quarter of them shifted so that a white margin comes in (faces are composited on white)."""
    h, w = img.shape[:2]
    side = rng.uniform(0.2, 0.9) * min(h, w)
    cx, cy = rng.uniform(side / 2, w - side / 2), rng.uniform(side / 2, h - side / 2)
    if rng.random() < 0.25:
        cx += rng.choice([-1, 1]) * rng.uniform(0.15, 0.4) * side
    m = cv2.getRotationMatrix2D((cx, cy), rng.uniform(-20, 20), size / side)
    m[:, 2] += (size / 2 - cx, size / 2 - cy)
    out = cv2.warpAffine(img, m, (size, size), flags=cv2.INTER_AREA if side > size else cv2.INTER_LINEAR,
                         borderValue=(255, 255, 255))
    if rng.random() < 0.5:
        out = out[:, ::-1]
    hsv = cv2.cvtColor(np.ascontiguousarray(out), cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[:, :, 0] = (hsv[:, :, 0] + rng.uniform(-12, 12)) % 180
    hsv[:, :, 1] *= rng.uniform(0.6, 1.2)
    hsv[:, :, 2] = hsv[:, :, 2] * rng.uniform(0.8, 1.15) + rng.uniform(-15, 15)
    out = cv2.cvtColor(np.clip(hsv, 0, 255).astype(np.uint8), cv2.COLOR_HSV2RGB)
    return out


def build_dataset(root, n, size, held_out_face, seed=0):
    """trainA/k.png crops and trainB/k.png their teacher outputs, listed in train.txt (A<TAB>B, Pix2Pix's list
    layout); test.txt pairs the held-out face with its teacher output (the sample sheets only)."""
    from data.images import write_image_atomic
    from data.toon_filter import cartoon_filter
    rng = np.random.default_rng(seed)
    images = source_images()
    lines = []
    for k in range(n):
        crop = random_crop(images[k % len(images)], size, rng)
        write_image_atomic(os.path.join(root, "trainA", f"{k:05d}.png"), crop)
        write_image_atomic(os.path.join(root, "trainB", f"{k:05d}.png"), cartoon_filter(crop))
        lines.append(f"trainA/{k:05d}.png\ttrainB/{k:05d}.png\n")
    write_image_atomic(os.path.join(root, "testA", "face.png"), held_out_face)
    write_image_atomic(os.path.join(root, "testB", "face.png"), cartoon_filter(held_out_face))
    with open(os.path.join(root, "train.txt"), "w", encoding="utf-8") as f:
        f.writelines(lines)
    with open(os.path.join(root, "test.txt"), "w", encoding="utf-8") as f:
        f.write("testA/face.png\ttestB/face.png\n")
    return len(images)


def held_out_face():
    """The bundled photo's aligned face (preprocess.pipeline.Face: on white, with its mask)."""
    from data.images import read_rgb
    from preprocess.pipeline import FacePipeline
    return FacePipeline().process(read_rgb(HELD_OUT)).faces[0]


def score_on_face(model_dir, face):
    """The student on an aligned face through the cartoon path test.py runs (generator, composite on white
    with the face's mask) against the teacher's output composited the same way, and the baseline of copying the
    face. Returns (student, teacher, {l1, copy_l1}) with pixels in [0, 1] for the scores."""
    from data.toon_filter import cartoon_filter
    from inference.cartoon import Cartoonizer
    student = Cartoonizer(model_dir).cartoonize_face(face)
    a = face.alpha.astype(np.float32)[:, :, None]
    teacher = np.clip(cartoon_filter(face.image) * a + 255.0 * (1.0 - a) + 0.5, 0, 255).astype(np.uint8)
    l1 = float(np.abs(student / 255.0 - teacher / 255.0).mean())
    return student, teacher, {"l1": l1, "copy_l1": float(np.abs(face.image / 255.0 - teacher / 255.0).mean())}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--iterations", type=int, default=10000)
    ap.add_argument("--img_size", type=int, default=256, help="the generator's size (the aligned face's is 256)")
    ap.add_argument("--ngf", type=int, default=32, help="the U-Net's width (Pix2Pix's published one is 64)")
    ap.add_argument("--crops", type=int, default=3000, help="training crops (and teacher outputs)")
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--out", default=os.path.join(ROOT, "pretrained_models", "demo_cartoon"))
    ap.add_argument("--sheet", default=os.path.join(ROOT, "docs", "images", "demo_model_sheet.png"))
    ap.add_argument("--work", help="keep the dataset and the run here (default: a temporary folder, removed)")
    args = ap.parse_args()
    from core import runtime
    runtime.configure()
    face = held_out_face()
    work = args.work or tempfile.mkdtemp(prefix="demo_cartoon_")
    start = time.time()
    try:
        data = os.path.join(work, "data")
        if not os.path.isfile(os.path.join(data, "train.txt")):
            n_src = build_dataset(data, args.crops, args.img_size + 30, face.image)
            print(f"{args.crops} crops of {n_src} photos and their teacher outputs in {time.time() - start:.0f} s")
        net = "unet_256" if args.img_size >= 256 else "unet_128"
        cmd = [sys.executable, os.path.join(ROOT, "train.py"), "--model", "pix2pix", "--dataset", data,
               "--result_dir", work, "--run_name", "run", "--netG", net, "--img_size", str(args.img_size),
               "--ngf", str(args.ngf), "--ndf", str(args.ngf), "--norm", "instance", "--no_dropout", "true",
               "--iterations", str(args.iterations), "--lr", str(args.lr), "--print_freq", "500",
               "--save_freq", "2000", "--sample_freq", "2000", "--seed", "0"]
        if os.path.isdir(os.path.join(work, "run", "checkpoints")):
            cmd.append("--resume")         # --work kept an interrupted (or finished) run: continue it
        subprocess.run(cmd, check=True)
        model = os.path.join(work, "run", "model")
        with open(os.path.join(model, "model.json"), encoding="utf-8") as f:
            meta = json.load(f)
        meta["networks"] = {"G": meta["networks"]["G"]}     # ship the generator only
        student, teacher, score = score_on_face(model, face)
        from data.images import write_image_atomic
        write_image_atomic(args.sheet, np.concatenate([face.image, teacher, student], 1))
        minutes = (time.time() - start) / 60
        meta["label"] = "demo: a cartoon filter, distilled (README)"
        meta["demo_training"] = {"iterations": args.iterations, "crops": args.crops, "img_size": args.img_size,
                                 "ngf": args.ngf,
                                 "held_out_l1_to_teacher": round(score["l1"], 4),
                                 "held_out_copy_l1_to_teacher": round(score["copy_l1"], 4)}
        out_tmp = args.out.rstrip("/") + ".new"
        shutil.rmtree(out_tmp, ignore_errors=True)
        os.makedirs(out_tmp)
        shutil.copy(os.path.join(model, "G.ckpt"), out_tmp)
        from core.files import write_json_atomic
        write_json_atomic(os.path.join(out_tmp, "model.json"), meta)
        samples = sorted(os.listdir(os.path.join(work, "run", "samples")))
        shutil.copy(os.path.join(work, "run", "samples", samples[-1]), os.path.join(out_tmp, "training_samples.png"))
        if os.path.exists(args.out):
            shutil.rmtree(args.out)
        os.replace(out_tmp, args.out)
        print(f"held-out face: L1 to the teacher {score['l1']:.4f} (copying the photo: "
              f"{score['copy_l1']:.4f}); {minutes:.1f} min in all")
        print(f"demo generator written to {args.out}, sheet to {args.sheet}")
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
