#!/usr/bin/env python
"""The convolution three ways on the generators' shapes, same run, same inputs.

  .venv/bin/python bench/conv_kernels.py [--repeat 7] [--shapes p2c|all] [--backward]

One stride-1, zero-padded convolution (no bias), each timed as a median of --repeat runs after two warm-ups:
  pytorch          F.conv2d (oneDNN, AVX-512 on this CPU)
  mindspore        nn.Conv2d in GRAPH_MODE (oneDNN capped at AVX2 by models/runtime.py: its AVX-512 path is
                   a reference loop here, see bench/conv_isa.py)
  native           models.layers.Conv2d with the hand-written kernel of models/csrc/conv2d_cpu.cc (what the
                   networks use on CPU)
With --backward each run is forward + backward (input and weight gradients of sum(y * g)). Every column
includes copying the result to host. The shapes are the stride-1 convolutions of the photo2cartoon
generator at 256 px (plus the CycleGAN residual conv with --shapes all). Prints a Markdown table: time,
GFLOP/s, ratio to PyTorch, largest difference from PyTorch.
"""
import argparse
import os
import sys

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


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--shapes", choices=["p2c", "all"], default="all")
    ap.add_argument("--backward", action="store_true", help="time forward + backward")
    a = ap.parse_args()
    from models import runtime
    runtime.configure("graph", "CPU", threads=2)
    import mindspore as ms
    import torch
    from mindspore import nn
    from models import native
    from models.layers import Conv2d
    torch.set_num_threads(2)
    if not native.enabled():
        sys.exit(f"bench/conv_kernels.py: native kernels unavailable: {native.why_not()}")
    shapes = P2C_SHAPES + (EXTRA_SHAPES if a.shapes == "all" else [])
    what = "forward + backward" if a.backward else "forward"
    print(f"stride-1 convolutions, batch 1, 'same' zero padding, {what}, median of {a.repeat}; "
          "ratio = time / PyTorch")
    print("| in -> out, kernel, size | GFLOP | PyTorch ms | MindSpore ms (ratio) | native ms (ratio) "
          "| GFLOP/s PT / MS / native | max diff MS / native |")
    print("|---|---|---|---|---|---|---|")
    for cin, cout, k, s in shapes:
        rng = np.random.default_rng(0)
        x = rng.standard_normal((1, cin, s, s)).astype(np.float32)
        w = (rng.standard_normal((cout, cin, k, k)) / np.sqrt(cin * k * k)).astype(np.float32)
        g = rng.standard_normal((1, cout, s, s)).astype(np.float32)
        p = k // 2
        xt, wt, gt = torch.from_numpy(x), torch.from_numpy(w).requires_grad_(a.backward), torch.from_numpy(g)

        def t_run():
            if not a.backward:
                with torch.no_grad():
                    return torch.nn.functional.conv2d(xt, wt, padding=p).numpy().copy()
            xg = xt.clone().requires_grad_(True)
            (torch.nn.functional.conv2d(xg, wt, padding=p) * gt).sum().backward()
            out = np.concatenate([xg.grad.numpy().ravel(), wt.grad.numpy().ravel()])
            wt.grad = None
            return out

        ref = t_run()
        plain = nn.Conv2d(cin, cout, k, pad_mode="pad", padding=p, has_bias=False)
        fast = Conv2d(cin, cout, k, padding=p, bias=False)
        assert fast.native
        for layer in (plain, fast):
            layer.weight.set_data(ms.Tensor(w))
        xm, gm = ms.Tensor(x), ms.Tensor(g)

        def ms_runner(layer):
            if not a.backward:
                return lambda: layer(xm).asnumpy()

            class Loss(nn.Cell):
                def __init__(self):
                    super().__init__()
                    self.layer = layer

                def construct(self, v, gg):
                    return (self.layer(v) * gg).sum()
            grad = ms.grad(Loss(), grad_position=0, weights=layer.trainable_params())

            def run():
                dx, (dw,) = grad(xm, gm)
                return np.concatenate([dx.asnumpy().ravel(), dw.asnumpy().ravel()])
            return run

        r_ms, r_nat = ms_runner(plain), ms_runner(fast)
        d_ms = float(np.abs(r_ms() - ref).max())
        d_nat = float(np.abs(r_nat() - ref).max())
        tt = timed(t_run, a.repeat)
        tm = timed(r_ms, a.repeat)
        td = timed(r_nat, a.repeat)
        gflop = 2 * cin * cout * k * k * s * s / 1e9 * (3 if a.backward else 1)
        print(f"| {cin} -> {cout}, {k}x{k}, {s} px | {gflop:.2f} | {tt * 1e3:.1f} | {tm * 1e3:.1f} ({tm / tt:.2f}) | "
              f"{td * 1e3:.1f} ({td / tt:.2f}) | {gflop / tt:.0f} / {gflop / tm:.0f} / {gflop / td:.0f} | "
              f"{d_ms:.1e} / {d_nat:.1e} |", flush=True)


if __name__ == "__main__":
    main()
