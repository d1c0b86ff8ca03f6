#!/usr/bin/env python
"""The kernels' path policy: which path (direct, SGEMM, Winograd) each part of a convolution takes.

  .venv/bin/python bench/kernel_rules.py

The thresholds in kernels/csrc/conv.cc (use_gemm) and kernels/csrc/winograd.cc (use_winograd) are speed
choices measured with bench/raw_conv.py and bench/conv_kernels.py; this script states them as expectations on
the shapes of the networks and exits non-zero if a rule no longer picks what it was measured to pick (after
a deliberate change, update both). Correctness of every path is the test suite's business
(tests/test_kernels.py runs each convolution row on each path).
"""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from kernels import ops  # noqa: E402


def check_gemm_rule():
    assert ops.picks_gemm(8, 8, 5) and ops.picks_gemm(8, 8, 5, 2)   # no direct 5x5 kernel
    # stride-1 forward: the direct kernel at any fan-in, except large ones over few pixels
    assert not ops.picks_gemm(256, 256, 3) and not ops.picks_gemm(16, 8, 3)
    assert not ops.picks_gemm(256, 512, 4, out_pixels=31 * 31) and not ops.picks_gemm(512, 1, 4)
    assert ops.picks_gemm(1024, 2048, 4, out_pixels=7 * 7) and not ops.picks_gemm(1024, 16, 4, out_pixels=49)
    # stride-1 4x4 input gradient: SGEMM into >= 128 channels at fan-in >= 1024 (PatchGAN's deep layers)
    assert ops.picks_gemm(128, 256, 4, part="input", out_pixels=34 * 34)
    assert ops.picks_gemm(512, 1024, 4, part="input", out_pixels=10 * 10)
    assert not ops.picks_gemm(64, 128, 4, part="input", out_pixels=66 * 66)
    assert not ops.picks_gemm(1024, 1, 4, part="input", out_pixels=9 * 9)   # fan-in 16
    assert not ops.picks_gemm(128, 256, 3, part="input", out_pixels=34 * 34)
    # 1x1: SGEMM (on the input in place at stride 1), whatever the output count
    assert ops.picks_gemm(32, 32, 1) and ops.picks_gemm(32, 3, 1) and ops.picks_gemm(3, 32, 1, part="input")
    assert ops.picks_gemm(32, 3, 1, 2) and ops.picks_gemm(3, 32, 1, part="weight")
    # weight gradient: the direct kernel over many pixels, SGEMM at large fan-in over few
    assert not ops.picks_gemm(256, 256, 3, part="weight") and not ops.picks_gemm(64, 32, 3, part="weight")
    assert ops.picks_gemm(128, 16, 3, part="weight", out_pixels=32 * 32)
    assert not ops.picks_gemm(64, 32, 3, part="weight", out_pixels=32 * 32)   # fan-in under 1024
    # stride 2 (3x3 and 4x4): the forward direct as at stride 1; the input gradient direct (by phases) from
    # 2048 input pixels; the weight gradient direct where the blocked kernel runs (> 8 outputs, >= 2048 pixels)
    assert not ops.picks_gemm(3, 64, 4, 2, out_pixels=128 * 128) and not ops.picks_gemm(64, 128, 3, 2)
    assert ops.picks_gemm(512, 1024, 4, 2, out_pixels=8 * 8)
    assert not ops.picks_gemm(64, 128, 3, 2, part="input", out_pixels=128 * 128)
    assert ops.picks_gemm(128, 256, 4, 2, part="input", out_pixels=34 * 34)
    assert not ops.picks_gemm(32, 64, 4, 2, part="weight", out_pixels=64 * 64)
    assert ops.picks_gemm(128, 256, 4, 2, part="weight", out_pixels=16 * 16)
    assert ops.picks_gemm(3, 8, 4, 2, part="weight", out_pixels=64 * 64)   # 8 outputs
    assert ops.picks_gemm(8, 16, 7, 2, part="weight") and ops.picks_gemm(8, 16, 7, 2, part="input")


def check_winograd_rule():
    os.environ.pop("FACEGAN_NATIVE_WINOGRAD", None)
    # 3x3 stride 1 with enough channels on both sides (CycleGAN's and U-GAT-IT's residual blocks)
    assert ops.picks_winograd(256, 256, 3) and ops.picks_winograd(128, 128, 3)
    assert ops.picks_winograd(64, 32, 3) and ops.picks_winograd(64, 32, 3, part="input")
    assert ops.picks_winograd(256, 256, 3, part="weight")
    # few channels on either side: the transforms cost more than the products save
    assert not ops.picks_winograd(32, 16, 3) and not ops.picks_winograd(16, 8, 3)
    assert not ops.picks_winograd(8, 256, 3, part="input") and not ops.picks_winograd(32, 32, 3)
    # other kernels, strides, and tiny images
    assert not ops.picks_winograd(256, 256, 4) and not ops.picks_winograd(256, 256, 1)
    assert not ops.picks_winograd(256, 256, 3, stride=2)
    assert not ops.picks_winograd(256, 256, 3, out_pixels=16 * 16)
    assert ops.picks_winograd(256, 256, 3, out_pixels=32 * 32)
    # a memory bound: 36 transformed weight matrices are kept per calling thread
    assert ops.picks_winograd(512, 512, 3) and not ops.picks_winograd(1024, 512, 3)
    os.environ["FACEGAN_NATIVE_WINOGRAD"] = "0"
    assert not ops.picks_winograd(256, 256, 3)
    os.environ["FACEGAN_NATIVE_WINOGRAD"] = "1"
    assert ops.picks_winograd(16, 8, 3) and not ops.picks_winograd(16, 8, 4)
    os.environ.pop("FACEGAN_NATIVE_WINOGRAD", None)


def main():
    if not ops.gemm_enabled():
        sys.exit("no BLAS found: only the direct path exists, there is no policy to check")
    os.environ.pop("FACEGAN_NATIVE_GEMM", None)
    check_gemm_rule()
    check_winograd_rule()
    print("path rules: as measured (SGEMM and Winograd picks for the networks' shapes unchanged)")


if __name__ == "__main__":
    main()
