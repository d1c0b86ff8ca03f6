#!/usr/bin/env python
"""Time to the first training iteration, from a cold process: `train.py --dataset D --iterations 1` with the
photo2cartoon defaults (256 px, batch 1, ngf 32, all six networks), once with an empty compile cache and once
with the cache the first run filled, against PyTorch's own time to its first iteration of the same networks
(torch_refs, bench/run.py's U-GAT-IT iteration). Each time runs from the process launch to the first
iteration's log line (MindSpore) or to the end of the first step (PyTorch); runs alternate.

  .venv/bin/python bench/first_iteration.py --repeat 2
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

TORCH_FIRST = """
import sys, time
sys.path.insert(0, {root!r})
import numpy as np, torch
torch.set_num_threads(2)
from torch_refs.weights import randomize_torch
from torch_refs.ugatit_ref import DiscriminatorRef, P2CGeneratorRef
from bench.run import _torch_train_step
nets = {{"genA2B": P2CGeneratorRef(32, 256, True), "genB2A": P2CGeneratorRef(32, 256, True),
        "disGA": DiscriminatorRef(3, 32, 7), "disGB": DiscriminatorRef(3, 32, 7),
        "disLA": DiscriminatorRef(3, 32, 5), "disLB": DiscriminatorRef(3, 32, 5)}}
for i, n in enumerate(nets.values()):
    randomize_torch(n, i)
rng = np.random.default_rng(0)
a, b = (torch.from_numpy(rng.uniform(-1, 1, (1, 3, 256, 256)).astype(np.float32)) for _ in range(2))
_torch_train_step(nets, a, b)()
print("first iteration done", flush=True)
"""


def _dataset(root):
    """trainA / trainB / testA / testB of crops of the bundled photo (the data only has to be readable)."""
    from PIL import Image
    photo = Image.open(os.path.join(ROOT, "dataset", "samples", "astronaut.jpg")).convert("RGB")
    for split in ("trainA", "trainB", "testA", "testB"):
        os.makedirs(os.path.join(root, split))
        for k in range(4):
            photo.crop((20 * k, 0, 20 * k + 300, 300)).resize((256, 256)).save(os.path.join(root, split, f"{k}.png"))


def _until(cmd, marker, env=None):
    """Seconds from launch until a stdout line contains `marker` (the process is then let finish)."""
    t = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT, env=env)
    seen = None
    for line in p.stdout:
        if seen is None and marker in line:
            seen = time.perf_counter() - t
    p.wait()
    if seen is None:
        raise RuntimeError(f"{cmd[:3]} ended (code {p.returncode}) without printing {marker!r}")
    return seen


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=2)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="facegan-first-iteration-")
    try:
        _dataset(os.path.join(work, "data"))
        times = {"cold": [], "cached": [], "torch": []}
        for r in range(a.repeat):
            env = dict(os.environ, FACEGAN_COMPILE_CACHE_DIR=os.path.join(work, f"cache{r}"))
            for kind in ("cold", "cached"):
                cmd = [sys.executable, "train.py", "--dataset", os.path.join(work, "data"), "--iterations", "1",
                       "--result_dir", os.path.join(work, "runs"), "--run_name", f"{kind}{r}", "--print_freq", "1",
                       "--sample_freq", "1000", "-q"]
                times[kind].append(_until(cmd, "[     1/1]", env))
            times["torch"].append(_until([sys.executable, "-c", TORCH_FIRST.format(root=ROOT)],
                                         "first iteration done"))
            print({k: [round(v, 1) for v in t] for k, t in times.items()}, file=sys.stderr, flush=True)
        pt = statistics.median(times["torch"])
        print(f"Time to the first training iteration, photo2cartoon 256 px batch 1, from the process launch "
              f"(`bench/first_iteration.py --repeat {a.repeat}`):\n")
        print("| | median (min-max) s | / PyTorch |\n|---|---|---|")
        for kind, label in (("cold", "MindSpore, empty compile cache"), ("cached", "MindSpore, cached steps"),
                            ("torch", "PyTorch (torch_refs)")):
            t = times[kind]
            print(f"| {label} | {statistics.median(t):.1f} ({min(t):.1f}-{max(t):.1f}) | "
                  f"{statistics.median(t) / pt:.2f} |")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
