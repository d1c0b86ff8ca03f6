#!/usr/bin/env python
"""Compile time and per-iteration time of the U-GAT-IT training step in MindSpore GRAPH_MODE (random data).

  .venv/bin/python bench/train_step.py --arch ugatit --img_size 32 --ngf 8
  .venv/bin/python bench/train_step.py --arch photo2cartoon --img_size 64 --ngf 8
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", default="ugatit", choices=["ugatit", "photo2cartoon"])
    ap.add_argument("--img_size", type=int, default=32)
    ap.add_argument("--ngf", type=int, default=8)
    ap.add_argument("--n_blocks", type=int, default=2)
    ap.add_argument("--n_dis_global", type=int, default=5)
    ap.add_argument("--n_dis_local", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    from core import runtime
    runtime.configure("graph", "CPU")
    import mindspore as ms
    from training.engine import GANTrainer
    from families import get_family
    fam = get_family("ugatit")
    cfg = dict(fam.defaults(a.arch), ngf=a.ngf, n_blocks=a.n_blocks, img_size=a.img_size,
               n_dis_global=a.n_dis_global, n_dis_local=a.n_dis_local, iterations=100, decay_start=50,
               mode="graph", faceid_weights=None)
    nets = fam.build_nets(cfg)
    tr = GANTrainer(fam, cfg, "/tmp/bench_train_step_unused", nets, None)
    for n in nets.values():
        n.set_train(True)
    s = a.img_size
    inp = tuple(ms.Tensor(np.random.default_rng(i).standard_normal((1, 3, s, s)).astype(np.float32)) for i in range(2))
    t = time.time()
    tr.discriminator_step(inp)[0].asnumpy()
    d_c = time.time() - t
    t = time.time()
    tr.g_step(*inp)[0].asnumpy()
    g_c = time.time() - t
    times = []
    for _ in range(a.repeat):
        t = time.time()
        tr.discriminator_step(inp)
        tr.g_step(*inp)[0].asnumpy()
        times.append(time.time() - t)
    print(f"{a.arch} ngf {a.ngf} {s} px: first D step (compile) {d_c:.1f} s, first G step (compile) {g_c:.1f} s, "
          f"iteration median {sorted(times)[len(times) // 2]:.3f} s")


if __name__ == "__main__":
    main()
