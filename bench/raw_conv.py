#!/usr/bin/env python
"""The convolution kernels called directly (ctypes, no MindSpore), against PyTorch, same process.

  .venv/bin/python bench/raw_conv.py                       # the networks' shapes, forward + both gradients
  .venv/bin/python bench/raw_conv.py --lib A.so --lib B.so # two builds of kernels/csrc, A/B
  .venv/bin/python bench/raw_conv.py --shape 32,16,3,1,1,256,2 --parts wgrad

Each shape is in,out,kernel,stride,padding,size,batch. Runs alternate between the libraries and PyTorch
(2 threads each), warm-up excluded; medians in ms with min-max, and the largest difference against
PyTorch relative to its largest value. This is where a kernel change is measured first: without
MindSpore's per-call costs, which bench/conv_kernels.py includes.
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from kernels.raw import PARTS, Lib, conv_part, make_case  # noqa: E402

# photo2cartoon's generator (256 px) and discriminators, CycleGAN's residual blocks, STGAN's deep layers
SHAPES = [(3, 32, 7, 1, 3, 256, 1), (32, 16, 3, 1, 1, 256, 2), (16, 8, 3, 1, 1, 256, 2), (8, 8, 3, 1, 1, 256, 2),
          (64, 32, 3, 1, 1, 256, 1), (128, 64, 3, 1, 1, 128, 1), (128, 128, 3, 1, 1, 64, 2),
          (256, 256, 3, 1, 1, 64, 1), (32, 64, 3, 2, 1, 256, 1), (3, 64, 4, 2, 1, 256, 2), (64, 128, 4, 2, 1, 128, 2),
          (256, 512, 4, 1, 1, 32, 1), (32, 3, 7, 1, 3, 256, 1)]
def torch_part(c, part):
    import torch
    x, w, b, dy = (torch.from_numpy(c[k]) for k in ("x", "w", "b", "dy"))
    s, p = c["s"], c["p"]
    box = {}
    if part == "fwd":
        def run():
            box["out"] = torch.nn.functional.conv2d(x, w, b, stride=s, padding=p)
    elif part == "dgrad":
        def run():
            box["out"] = torch.nn.grad.conv2d_input(x.shape, w, dy, stride=s, padding=p)
    else:
        def run():
            box["out"] = torch.nn.grad.conv2d_weight(x, w.shape, dy, stride=s, padding=p)
    return run, box


def timed(fn, repeat):
    fn()
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lib", action="append", help="a compiled kernel library (default: the project's build)")
    ap.add_argument("--shape", action="append", help="in,out,kernel,stride,padding,size,batch")
    ap.add_argument("--parts", default=",".join(PARTS))
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds (each `--repeat` runs per side)")
    a = ap.parse_args()
    from kernels import build, ops
    ops.blas_library()   # sets FACEGAN_BLAS_LIB for the SGEMM path
    import torch
    torch.set_num_threads(int(os.environ.get("FACEGAN_NATIVE_THREADS", "2")))
    libs = [Lib(p) for p in (a.lib or [build.library()])]
    shapes = [tuple(int(v) for v in s.split(",")) for s in a.shape] if a.shape else SHAPES
    parts = a.parts.split(",")
    names = ["torch"] + [os.path.basename(l.path) for l in libs]
    print("| shape (in, out, k, s, p, px, N) | part | " + " | ".join(f"{n} ms" for n in names) + " | max rel diff |")
    print("|---|---|" + "---|" * (len(names) + 1))
    for shape in shapes:
        c = make_case(shape)
        for part in parts:
            runs = [torch_part(c, part)] + [conv_part(l, c, part) for l in libs]
            times = [[] for _ in runs]
            for _ in range(a.rounds):
                for i, (fn, _) in enumerate(runs):
                    times[i] += timed(fn, a.repeat)
            ref = runs[0][1]["out"].numpy()
            scale = float(np.abs(ref).max())
            diffs = [float(np.abs(out - ref).max()) / scale for _, out in runs[1:]]
            cells = [f"{statistics.median(t):.2f} ({min(t):.2f}-{max(t):.2f})" for t in times]
            print(f"| {shape} | {part} | " + " | ".join(cells) + f" | {' / '.join(f'{d:.1e}' for d in diffs)} |",
                  flush=True)


if __name__ == "__main__":
    main()
