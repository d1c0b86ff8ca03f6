#!/usr/bin/env python
"""Instance norm formulations, MindSpore GRAPH_MODE vs PyTorch, in the same run (forward, forward + backward).

  .venv/bin/python bench/norm_kernels.py --shape 1,256,64,64 --repeat 7 [--mean 0 --std 1]

  handwritten     mean, subtract, square, mean, rsqrt, multiply over axes (2, 3) (the textbook form)
  two-pass 2d     the same maths on x viewed as (N*C, H*W), with sums instead of means
  fused unshifted x viewed as (1, N*C, H, W) straight through the fused BatchNorm kernel (one-pass
                  variance: NaN on large, nearly constant rows, e.g. when fine-tuning on flat images)
  library         models.layers.instance_norm: rows shifted by their (gradient-stopped) mean, then the
                  fused BatchNorm kernel (what InstanceNorm2d, LIN and adaLIN run)
Prints the median time of each and the largest difference of output and input gradient from PyTorch.
--mean 300 --std 0.01 is the ill-conditioned case (large, nearly constant activations).
"""
import argparse
import os
import sys

import numpy as np
from timing import median_time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def timed(fn, repeat):
    return median_time(fn, repeat, warmup=1)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", default="1,256,64,64")
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--mean", type=float, default=0.0)
    ap.add_argument("--std", type=float, default=1.0)
    a = ap.parse_args()
    shape = tuple(int(s) for s in a.shape.split(","))
    from core import runtime
    runtime.configure("graph", "CPU")
    import mindspore as ms
    import torch
    from mindspore import nn, ops
    from models.layers import instance_norm
    torch.set_num_threads(2)

    class Handwritten(nn.Cell):
        def construct(self, x):
            xc = x - x.mean(axis=(2, 3), keep_dims=True)
            return xc * ops.rsqrt((xc * xc).mean(axis=(2, 3), keep_dims=True) + 1e-5)

    class TwoPass2d(nn.Cell):
        def construct(self, x):
            n, c, h, w = x.shape
            x2 = x.reshape(n * c, h * w)
            xc = x2 - x2.sum(axis=1, keepdims=True) * (1.0 / (h * w))
            var = (xc * xc).sum(axis=1, keepdims=True) * (1.0 / (h * w))
            return (xc * ops.rsqrt(var + 1e-5)).reshape(n, c, h, w)

    class FusedUnshifted(nn.Cell):
        def construct(self, x):
            n, c, h, w = x.shape
            k = n * c
            return ops.BatchNorm(is_training=True, epsilon=1e-5)(
                x.reshape(1, k, h, w), ops.ones((k,), ms.float32), ops.zeros((k,), ms.float32),
                ops.fill(ms.float32, (k,), 2.0), ops.fill(ms.float32, (k,), 3.0))[0].reshape(n, c, h, w)

    class Library(nn.Cell):
        def construct(self, x):
            return instance_norm(x, 1e-5)

    rng = np.random.default_rng(0)
    x = (rng.standard_normal(shape) * a.std + a.mean).astype(np.float32)
    w = rng.standard_normal(shape).astype(np.float32)
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w)

    def t_step():
        tx.grad = None
        (torch.nn.functional.instance_norm(tx, eps=1e-5) * tw).sum().backward()
        return tx.grad

    def t_fwd():
        with torch.no_grad():
            return torch.nn.functional.instance_norm(tx, eps=1e-5)

    ref_out, ref_grad = t_fwd().numpy(), t_step().numpy().copy()
    rows = [("pytorch", timed(t_fwd, a.repeat), timed(t_step, a.repeat), 0.0, 0.0)]
    mx, mw = ms.Tensor(x), ms.Tensor(w)

    def make_loss(cell):
        def loss(v):
            return (cell(v) * mw).sum()
        return loss

    for name, cell in (("handwritten", Handwritten()), ("two-pass 2d", TwoPass2d()),
                       ("fused unshifted", FusedUnshifted()), ("library (shifted + fused)", Library())):
        fwd, grad = ms.jit(cell.construct), ms.jit(ms.grad(make_loss(cell)))
        d_out = float(np.abs(fwd(mx).asnumpy() - ref_out).max())
        d_grad = float(np.abs(grad(mx).asnumpy() - ref_grad).max())
        rows.append((f"mindspore {name}", timed(lambda: fwd(mx).asnumpy(), a.repeat),
                     timed(lambda: grad(mx).asnumpy(), a.repeat), d_out, d_grad))
    print(f"instance norm {shape}, input mean {a.mean} std {a.std}, median of {a.repeat} (ratio: to PyTorch)")
    print("| implementation | forward ms | ratio | forward + backward ms | ratio | max out diff | max grad diff |")
    print("|---|---|---|---|---|---|---|")
    for name, f, fb, d_out, d_grad in rows:
        print(f"| {name} | {f * 1e3:.1f} | {f / rows[0][1]:.2f} | {fb * 1e3:.1f} | {fb / rows[0][2]:.2f} | "
              f"{d_out:.1e} | {d_grad:.1e} |")


if __name__ == "__main__":
    main()
