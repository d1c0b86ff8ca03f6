#!/usr/bin/env python
"""The convolution five ways on the networks' shapes, same run, same inputs.

  .venv/bin/python bench/conv_kernels.py [--repeat 7] [--shapes p2c|all] [--backward]

One stride-1, zero-padded convolution (no bias), each timed as a median of --repeat runs after two warm-ups:
  pytorch          F.conv2d (oneDNN)
  mindspore        nn.Conv2d in GRAPH_MODE (oneDNN capped at AVX2 by core/runtime.py: its AVX-512 path is
                   a reference loop here, see bench/conv_isa.py)
  direct           models.layers.Conv2d through kernels.accelerate, on the direct kernel (kernels/csrc)
  gemm             the same layer on the kernels' im2col + SGEMM path (NumPy's OpenBLAS)
  winograd         the same layer on Winograd F(4x4, 3x3) (3x3 kernels only; its products on SGEMM)
The networks use the native layer, which picks the path per call (`use_winograd` and `use_gemm` in
kernels/csrc: channels, fan-in, pixels; * marks the one it picks for the forward).
With --backward each run is forward + backward: input and weight gradients of sum(y * y * g) / 2, a loss
that needs y (with a loss linear in y, graph mode drops the forward convolution altogether). Every column
includes copying the result to host. The shapes are the stride-1 convolutions of the photo2cartoon
generator at 256 px, plus (--shapes all) the CycleGAN residual convolution and PatchGAN's two stride-1
layers. Prints a Markdown table: time, GFLOP/s, ratio to PyTorch, largest difference from PyTorch.
"""
import argparse
import os
import sys

import numpy as np
from timing import median_time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

# (in, out, kernel, input size, zero padding): photo2cartoon's stride-1 convolutions at 256 px input
P2C_SHAPES = [(3, 32, 7, 256, 3), (32, 16, 3, 256, 1), (16, 8, 3, 256, 1), (8, 8, 3, 256, 1), (32, 16, 3, 64, 1),
              (128, 128, 3, 64, 1), (128, 64, 3, 128, 1), (64, 32, 3, 256, 1), (32, 3, 7, 256, 3)]
# CycleGAN resnet_9blocks residual conv; PatchGAN (basic) stride-1 layers at 256 px input
EXTRA_SHAPES = [(256, 256, 3, 64, 1), (256, 512, 4, 32, 1), (512, 1, 4, 31, 1)]


def timed(fn, repeat):
    return median_time(fn, repeat, warmup=2)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--shapes", choices=["p2c", "all"], default="all")
    ap.add_argument("--backward", action="store_true", help="time forward + backward")
    a = ap.parse_args()
    from core import runtime
    runtime.configure("graph", "CPU", threads=2)
    import mindspore as ms
    import torch
    from mindspore import nn
    import kernels
    from kernels import ops as kops
    from models.layers import Conv2d
    torch.set_num_threads(2)
    if not kernels.enabled():
        sys.exit(f"bench/conv_kernels.py: the kernels are unavailable: {kernels.why_not()}")
    shapes = P2C_SHAPES + (EXTRA_SHAPES if a.shapes == "all" else [])
    what = "forward + backward" if a.backward else "forward"
    gemm = kops.gemm_enabled()
    print(f"stride-1 convolutions, batch 1, {what}, median of {a.repeat}; ratio = time / PyTorch; "
          f"* = the path the networks take (GEMM: {kops.blas_library() or 'unavailable'})")
    print("| in -> out, kernel, size | GFLOP | PyTorch ms | MindSpore ms (ratio) | direct ms (ratio) "
          "| GEMM ms (ratio) | Winograd ms (ratio) | GFLOP/s PT / MS / direct / GEMM / Winograd "
          "| max diff MS / direct / GEMM / Winograd |")
    print("|---|---|---|---|---|---|---|---|---|")
    for cin, cout, k, s, p in shapes:
        rng = np.random.default_rng(0)
        x = rng.standard_normal((1, cin, s, s)).astype(np.float32)
        w = (rng.standard_normal((cout, cin, k, k)) / np.sqrt(cin * k * k)).astype(np.float32)
        os_ = s + 2 * p - k + 1
        g = rng.standard_normal((1, cout, os_, os_)).astype(np.float32)
        xt, wt, gt = torch.from_numpy(x), torch.from_numpy(w).requires_grad_(a.backward), torch.from_numpy(g)

        def t_run():
            if not a.backward:
                with torch.no_grad():
                    return torch.nn.functional.conv2d(xt, wt, padding=p).numpy().copy()
            xg = xt.clone().requires_grad_(True)
            y = torch.nn.functional.conv2d(xg, wt, padding=p)
            (y * y * gt).sum().mul(0.5).backward()
            out = np.concatenate([xg.grad.numpy().ravel(), wt.grad.numpy().ravel()])
            wt.grad = None
            return out

        ref = t_run()
        plain = nn.Conv2d(cin, cout, k, pad_mode="pad", padding=p, has_bias=False)
        fast = kernels.accelerate(nn.SequentialCell([Conv2d(cin, cout, k, padding=p, bias=False)]))[0]
        assert kernels.is_native(fast)
        for layer in (plain, fast):
            layer.weight.set_data(ms.Tensor(w))
        xm, gm = ms.Tensor(x), ms.Tensor(g)

        def ms_runner(layer, path=None):
            if not a.backward:
                run = lambda: layer(xm).asnumpy()  # noqa: E731
            else:
                class Loss(nn.Cell):
                    def __init__(self):
                        super().__init__()
                        self.layer = layer

                    def construct(self, v, gg):
                        y = self.layer(v)
                        return (y * y * gg).sum() * 0.5
                grad = ms.grad(Loss(), grad_position=0, weights=layer.trainable_params())

                def run():
                    dx, (dw,) = grad(xm, gm)
                    return np.concatenate([dx.asnumpy().ravel(), dw.asnumpy().ravel()])
            if path is None:
                return run

            def forced():   # the C++ side reads these variables at every call
                saved = {n: os.environ.get(n) for n in path}
                os.environ.update(path)
                try:
                    return run()
                finally:
                    for n, v in saved.items():
                        if v is None:
                            os.environ.pop(n)
                        else:
                            os.environ[n] = v
            return forced

        paths = [{"FACEGAN_NATIVE_GEMM": "0", "FACEGAN_NATIVE_WINOGRAD": "0"}]
        if gemm:
            paths.append({"FACEGAN_NATIVE_GEMM": "1", "FACEGAN_NATIVE_WINOGRAD": "0"})
            if k == 3:
                paths.append({"FACEGAN_NATIVE_WINOGRAD": "1"})
        runners = [ms_runner(plain)] + [ms_runner(fast, path) for path in paths]
        diffs = [float(np.abs(r() - ref).max()) for r in runners]
        tt = timed(t_run, a.repeat)
        times = [timed(r, a.repeat) for r in runners]
        gflop = 2 * cin * cout * k * k * os_ * os_ / 1e9 * (3 if a.backward else 1)
        if gemm and kops.picks_winograd(cin, cout, k, out_pixels=os_ * os_):
            picked = 3
        else:
            picked = 2 if gemm and kops.picks_gemm(cin, cout, k, out_pixels=os_ * os_) else 1
        cells = [f"{t * 1e3:.1f} ({t / tt:.2f})" for t in times] + ["-"] * (4 - len(times))
        cells[picked] += " *"
        rates = " / ".join(f"{gflop / t:.0f}" for t in [tt] + times)
        print(f"| {cin} -> {cout}, {k}x{k}, {s} px | {gflop:.2f} | {tt * 1e3:.1f} | {' | '.join(cells)} | {rates} | "
              f"{' / '.join(f'{d:.1e}' for d in diffs)} |", flush=True)


if __name__ == "__main__":
    main()
