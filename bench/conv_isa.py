#!/usr/bin/env python
"""Why core/runtime.py caps oneDNN at AVX2: time one 3x3 convolution in MindSpore GRAPH_MODE with the cap
and without it (each in its own process, since oneDNN reads the setting once), against PyTorch, same run.

  .venv/bin/python bench/conv_isa.py [--channels 32] [--size 256] [--repeat 5]
"""
import argparse
import json
import os
import subprocess
import sys

CHILD = r"""
import json, os, sys, time
import numpy as np
c, s, n, side = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
x = np.random.default_rng(0).standard_normal((1, c, s, s)).astype(np.float32)
times = []
if side == "torch":
    import torch
    torch.set_num_threads(2)
    conv = torch.nn.Conv2d(c, c, 3, padding=1)
    xt = torch.from_numpy(x)
    with torch.no_grad():
        conv(xt)
        for _ in range(n):
            t = time.perf_counter(); conv(xt); times.append(time.perf_counter() - t)
else:
    import mindspore as ms
    from mindspore import nn
    ms.set_context(mode=ms.GRAPH_MODE); ms.set_device("CPU")
    conv = nn.Conv2d(c, c, 3, pad_mode="pad", padding=1)
    xm = ms.Tensor(x)
    conv(xm).asnumpy()
    for _ in range(n):
        t = time.perf_counter(); conv(xm).asnumpy(); times.append(time.perf_counter() - t)
print(json.dumps(sorted(times)[len(times) // 2]))
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--channels", type=int, default=32)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    gflop = 2 * a.channels * a.channels * 9 * a.size * a.size / 1e9
    rows = []
    for label, side, isa in [("PyTorch 2.13", "torch", None), ("MindSpore, oneDNN default ISA", "ms", "ALL"),
                             ("MindSpore, ONEDNN_MAX_CPU_ISA=AVX2", "ms", "AVX2")]:
        env = dict(os.environ)
        env.pop("ONEDNN_MAX_CPU_ISA", None)
        if isa:
            env["ONEDNN_MAX_CPU_ISA"] = isa
        r = subprocess.run([sys.executable, "-c", CHILD, str(a.channels), str(a.size), str(a.repeat), side],
                           capture_output=True, text=True, env=env)
        t = json.loads(r.stdout.strip().splitlines()[-1])
        rows.append((label, t))
    ref = rows[0][1]
    print(f"3x3 conv {a.channels}->{a.channels} at {a.size}x{a.size} ({gflop:.2f} GFLOP), median of {a.repeat}")
    print("| run | time (s) | GFLOP/s | time / PyTorch |\n|---|---|---|---|")
    for label, t in rows:
        print(f"| {label} | {t:.4f} | {gflop / t:.1f} | {t / ref:.2f} |")


if __name__ == "__main__":
    main()
