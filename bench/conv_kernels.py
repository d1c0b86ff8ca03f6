#!/usr/bin/env python
"""Can a hand-written CPU convolution beat MindSpore's own on this machine? Same run, same inputs.

  .venv/bin/python bench/conv_kernels.py [--repeat 7] [--shapes p2c|all]

Three ways to run one stride-1, zero-padded convolution (forward, no bias), each timed as a median of
--repeat runs after two warm-ups:
  pytorch          F.conv2d (oneDNN, AVX-512 on this CPU)
  mindspore        nn.Conv2d in GRAPH_MODE (oneDNN capped at AVX2 by models/runtime.py: its AVX-512 path is
                   a reference loop here, see bench/conv_isa.py)
  direct (Custom)  bench/csrc/conv_direct.cc through ops.Custom(func_type="aot"), compiled here with
                   g++ -O3 -march=native -fopenmp (an experiment, not used by the library; why not, see
                   docs/notes_session4.md)
Both MindSpore columns include copying the output to host (`asnumpy`); the PyTorch column copies its
output too. The shapes are the stride-1 convolutions of the photo2cartoon generator at 256 px (plus a
CycleGAN residual conv with --shapes all). Prints a Markdown table: time, GFLOP/s, ratio to PyTorch,
largest difference from PyTorch.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
from timing import median_time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

# (in, out, kernel, size): photo2cartoon's stride-1 convolutions at 256 px input
P2C_SHAPES = [(3, 32, 7, 256), (32, 16, 3, 256), (16, 8, 3, 256), (8, 8, 3, 256), (32, 16, 3, 64),
              (128, 128, 3, 64), (128, 64, 3, 128), (64, 32, 3, 256), (32, 3, 7, 256)]
EXTRA_SHAPES = [(256, 256, 3, 64)]   # CycleGAN resnet_9blocks residual conv


def timed(fn, repeat):
    return median_time(fn, repeat, warmup=2)


def build_kernel(workdir):
    if shutil.which("g++") is None:
        sys.exit("bench/conv_kernels.py: g++ not found (it compiles bench/csrc/conv_direct.cc)")
    so = os.path.join(workdir, "conv_direct.so")
    subprocess.run(["g++", "-O3", "-march=native", "-fopenmp", "-shared", "-fPIC", "-o", so,
                    os.path.join(ROOT, "bench", "csrc", "conv_direct.cc")], check=True)
    return so


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--shapes", choices=["p2c", "all"], default="all")
    a = ap.parse_args()
    from models import runtime
    runtime.configure("graph", "CPU", threads=2)
    import mindspore as ms
    import torch
    from mindspore import nn, ops
    torch.set_num_threads(2)
    workdir = tempfile.mkdtemp(prefix="conv_kernels_")
    so = build_kernel(workdir)

    def out_shape(xs, ws, cs):
        return (xs[0], ws[0], xs[2] - ws[2] + 1 + 2 * (ws[2] // 2), xs[3] - ws[3] + 1 + 2 * (ws[3] // 2))

    def out_dtype(xt, wt, ct):
        return xt

    direct = ops.Custom(f"{so}:ConvDirect", out_shape=out_shape, out_dtype=out_dtype, func_type="aot")
    shapes = P2C_SHAPES + (EXTRA_SHAPES if a.shapes == "all" else [])
    print(f"stride-1 convolutions, batch 1, 'same' zero padding, median of {a.repeat}; ratio = time / PyTorch")
    print("| in -> out, kernel, size | GFLOP | PyTorch ms | MindSpore ms (ratio) | direct Custom ms (ratio) "
          "| GFLOP/s PT / MS / direct | max diff MS / direct |")
    print("|---|---|---|---|---|---|---|")
    for cin, cout, k, s in shapes:
        rng = np.random.default_rng(0)
        x = rng.standard_normal((1, cin, s, s)).astype(np.float32)
        w = (rng.standard_normal((cout, cin, k, k)) / np.sqrt(cin * k * k)).astype(np.float32)
        p = k // 2
        xt, wt = torch.from_numpy(x), torch.from_numpy(w)

        def t_run():
            with torch.no_grad():
                return torch.nn.functional.conv2d(xt, wt, padding=p).numpy().copy()

        ref = t_run()
        conv = nn.Conv2d(cin, cout, k, pad_mode="pad", padding=p, has_bias=False)
        conv.weight.set_data(ms.Tensor(w))
        xm, wm, cfg = ms.Tensor(x), ms.Tensor(w), ms.Tensor(np.array([1, p, 0], np.int32))
        d_run = ms.jit(lambda_free_direct(direct))
        d_ms = float(np.abs(conv(xm).asnumpy() - ref).max())
        d_direct = float(np.abs(d_run(xm, wm, cfg).asnumpy() - ref).max())
        tt = timed(t_run, a.repeat)
        tm = timed(lambda: conv(xm).asnumpy(), a.repeat)
        td = timed(lambda: d_run(xm, wm, cfg).asnumpy(), a.repeat)
        gflop = 2 * cin * cout * k * k * s * s / 1e9
        print(f"| {cin} -> {cout}, {k}x{k}, {s} px | {gflop:.2f} | {tt * 1e3:.1f} | {tm * 1e3:.1f} ({tm / tt:.2f}) | "
              f"{td * 1e3:.1f} ({td / tt:.2f}) | {gflop / tt:.0f} / {gflop / tm:.0f} / {gflop / td:.0f} | "
              f"{d_ms:.1e} / {d_direct:.1e} |", flush=True)
    shutil.rmtree(workdir, ignore_errors=True)


def lambda_free_direct(op):
    """A named function for ms.jit (GRAPH_MODE cannot parse lambdas, and a Cell holding a Custom op does not
    compile in MindSpore 2.10: see docs/notes_session4.md)."""
    def run(x, w, cfg):
        return op(x, w, cfg)
    return run


if __name__ == "__main__":
    main()
