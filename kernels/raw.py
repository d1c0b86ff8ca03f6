"""The convolution kernels called directly through ctypes, without MindSpore: for the check of each ISA's
build (tests/test_kernels_isa.py) and the raw-kernel benchmark (bench/raw_conv.py). A library is any build
of kernels/csrc (kernels.build.library(), or one compiled with other flags by kernels.build.compile_library).
"""
import ctypes

import numpy as np

PARTS = ("fwd", "dgrad", "wgrad")
ENTRY = {"fwd": "Conv2dFwd", "dgrad": "Conv2dDgrad", "wgrad": "Conv2dWgrad"}


class Lib:
    def __init__(self, path):
        self.path = path
        self.dll = ctypes.CDLL(path)
        for name in ENTRY.values():
            getattr(self.dll, name).restype = ctypes.c_int

    def call(self, name, arrays):
        n = len(arrays)
        ptrs = (ctypes.c_void_p * n)(*[a.ctypes.data for a in arrays])
        ndims = (ctypes.c_int * n)(*[a.ndim for a in arrays])
        shape_arrays = [np.array(a.shape, np.int64) for a in arrays]
        shapes = (ctypes.POINTER(ctypes.c_int64) * n)(
            *[s.ctypes.data_as(ctypes.POINTER(ctypes.c_int64)) for s in shape_arrays])
        rc = getattr(self.dll, name)(n, ptrs, ndims, shapes, None, None, None)
        if rc != 0:
            raise RuntimeError(f"{name} returned {rc} for shapes {[a.shape for a in arrays]}")


def make_case(shape, seed=0):
    cin, cout, k, s, p, size, n = shape
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, cin, size, size)).astype(np.float32)
    w = (rng.standard_normal((cout, cin, k, k)) / np.sqrt(cin * k * k)).astype(np.float32)
    b = rng.standard_normal(cout).astype(np.float32)
    o = (size + 2 * p - k) // s + 1
    dy = rng.standard_normal((n, cout, o, o)).astype(np.float32)
    return dict(x=x, w=w, b=b, dy=dy, pad=np.zeros(p + 1, np.int32), stride=np.zeros(s, np.int32), s=s, p=p)


def conv_part(lib, c, part):
    """A closure running one part through `lib`, and its output array."""
    if part == "fwd":
        out = np.empty_like(c["dy"])
        args = [c["x"], c["w"], c["b"], c["pad"], c["stride"], out]
    elif part == "dgrad":
        out = np.empty_like(c["x"])
        args = [c["dy"], c["w"], c["x"], c["pad"], c["stride"], out]
    else:
        out = np.empty_like(c["w"])
        args = [c["dy"], c["x"], c["w"], c["pad"], c["stride"], out]
    return (lambda: lib.call(ENTRY[part], args)), out
