"""The CPU backend: hand-written kernels (csrc/) put into a built network by a pass, on CPU only.

    import models, kernels
    net = models.create_model("cyclegan_resnet_generator", ngf=64)
    kernels.accelerate(net)                      # same parameters, same results, faster on CPU
    kernels.accelerate(critic, second_order=True)   # a WGAN-GP critic: only layers whose gradients
                                                    # differentiate again

MindSpore 2.10's own CPU convolutions and norms are 1.5-4x slower than PyTorch's on these networks
(bench/conv_kernels.py); the kernels make every family's training step faster than PyTorch's on the same
machine (docs/performance.md). `accelerate` does nothing (and says why in `why_not()`) when:
- the device target is not CPU (GPU and Ascend run MindSpore's own ops, unchanged);
- FACEGAN_NATIVE=0 (to compare, or to rule the kernels out);
- no C++ compiler could build the library (kernels/build.py);
- second_order is asked in PyNative mode (MindSpore 2.10's PyNative second-order differentiation of a
  Custom op's bprop returned zero weight gradients), where nothing native can stay.
Path settings for experiments: FACEGAN_NATIVE_GEMM=0/1, FACEGAN_NATIVE_WINOGRAD=0/1, FACEGAN_NATIVE_FOLD=0,
FACEGAN_NATIVE_THREADS=N, FACEGAN_BLAS_LIB=PATH (see csrc/conv.cc). Design notes: docs/design/kernels.md.
"""
import os

from . import build

_why = {}


def enabled():
    """True when `accelerate` swaps layers in this process (see the module docstring)."""
    import mindspore as ms
    if os.environ.get("FACEGAN_NATIVE", "1") == "0":
        _why["why"] = "FACEGAN_NATIVE=0"
        return False
    if ms.get_context("device_target") != "CPU":
        _why["why"] = f"device target {ms.get_context('device_target')}: the kernels are CPU-only"
        return False
    from . import ops
    ops.blas_library()   # before the first kernel runs: the C++ side reads FACEGAN_BLAS_LIB once
    if build.library() is None:
        _why["why"] = build.why_not()
        return False
    return True


def why_not():
    """Why the kernels are off, or ""."""
    return _why.get("why", "") or build.why_not()


def accelerate(net, second_order=False):
    """Put the CPU kernels into `net` (in place; returns it). second_order: `net`'s input gradient will be
    differentiated again (a WGAN-GP critic): only layers whose native gradients differentiate again are
    swapped, and in PyNative mode none."""
    if net.compile_cache:
        raise RuntimeError(f"kernels.accelerate({type(net).__name__}): the network already has a compiled graph, "
                           "which would keep running without the kernels; accelerate it before its first call")
    if not enabled():
        return net
    import mindspore as ms
    if second_order and ms.get_context("mode") != ms.GRAPH_MODE:
        return net
    from .passes import apply
    return apply(net, second_order)


def is_native(cell):
    """Whether `cell` is one of the kernels' Cells."""
    from .passes import NATIVE_TYPES
    return isinstance(cell, NATIVE_TYPES)
