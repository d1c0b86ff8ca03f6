"""Building the CPU kernel library (kernels/csrc/*.cc) into a cache directory outside the source tree.

The library is compiled on first use with `-O3 -march=native` (so AVX-512 where the CPU has it, else AVX2),
one object per source file in parallel, then linked. Where: $FACEGAN_KERNEL_CACHE, else
$XDG_CACHE_HOME/facegan/kernels, else ~/.cache/facegan/kernels, else a per-user folder in the temp directory
(the first that is writable). The file name holds a hash of the sources, the flags, the compiler and the CPU,
so a changed source or another machine gets its own build; builds of other sources are removed once a day
old (a running process may still load one by path). A compiler error leaves no library: `library()` is
then None and `why_not()` says why.
"""
import concurrent.futures
import glob
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import time

CSRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "csrc")
FLAGS = ["-O3", "-march=native", "-std=c++17", "-fPIC", "-pthread", "-fvisibility=hidden"]
PREFIX = "facegan-kernels-"
_state = {}


def sources():
    return sorted(glob.glob(os.path.join(CSRC, "*.cc")))


def _headers():
    return sorted(glob.glob(os.path.join(CSRC, "*.h")))


def _cpu_id():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return line
    except OSError:
        pass
    return platform.processor()


def cpu_flags():
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none)."""
    line = _cpu_id()
    return set(line.split(":", 1)[1].split()) if line.startswith("flags") else set()


def cache_dir():
    """The first writable candidate folder for builds, created if needed; None if there is none."""
    cands = []
    if os.environ.get("FACEGAN_KERNEL_CACHE"):
        cands.append(os.environ["FACEGAN_KERNEL_CACHE"])
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    cands += [os.path.join(xdg, "facegan", "kernels"),
              os.path.join(tempfile.gettempdir(), f"facegan-kernels-{os.getuid()}")]
    for d in cands:
        try:
            os.makedirs(d, exist_ok=True)
            if os.access(d, os.W_OK):
                return d
        except OSError:
            continue
    return None


def build_key(cxx, flags=FLAGS, cpu=None):
    h = hashlib.sha256()
    for path in sources() + _headers():
        with open(path, "rb") as f:
            h.update(os.path.basename(path).encode() + b"\0" + f.read())
    h.update(" ".join([cxx] + list(flags)).encode())
    h.update((cpu if cpu is not None else _cpu_id()).encode())
    return h.hexdigest()[:16]


def compile_library(out_path, cxx, flags=FLAGS, jobs=None):
    """Compile every source to an object (in parallel) and link them into `out_path`, atomically. Returns ""
    or the compiler's first error lines."""
    folder = os.path.dirname(out_path)
    tmp = tempfile.mkdtemp(prefix=".build-", dir=folder)
    try:
        def one(src):
            obj = os.path.join(tmp, os.path.basename(src)[:-3] + ".o")
            r = subprocess.run([cxx, *flags, "-c", src, "-o", obj], capture_output=True, text=True)
            return obj, (f"{os.path.basename(src)}: {r.stderr.strip()[:300]}" if r.returncode else "")
        jobs = jobs or max(1, min(len(sources()), os.cpu_count() or 1))
        with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
            done = list(pool.map(one, sources()))
        errors = [e for _, e in done if e]
        if errors:
            return errors[0]
        so = os.path.join(tmp, "lib.so")
        r = subprocess.run([cxx, "-shared", "-pthread", *[o for o, _ in done], "-o", so], capture_output=True,
                           text=True)
        if r.returncode:
            return f"linking failed: {r.stderr.strip()[:300]}"
        os.replace(so, out_path)   # atomic: a concurrent process sees no library or a whole one
        return ""
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def library():
    """Path of the compiled kernel library, building it if needed; None if it cannot be built."""
    if "lib" in _state:
        return _state["lib"]
    _state["lib"], _state["why"] = None, ""
    cxx = os.environ.get("CXX") or shutil.which("g++")
    if not cxx:
        _state["why"] = "no C++ compiler (g++ or $CXX) on PATH"
        return None
    folder = cache_dir()
    if folder is None:
        _state["why"] = "no writable cache directory for the kernel library"
        return None
    so = os.path.join(folder, f"{PREFIX}{build_key(cxx)}.so")
    if not os.path.exists(so):
        err = compile_library(so, cxx)
        if err:
            _state["why"] = f"compiling the kernels failed: {err}"
            return None
        remove_stale_builds(folder, os.path.basename(so))
    _state["lib"] = so
    return so


def why_not():
    return _state.get("why", "")


def remove_stale_builds(out_dir, keep, max_age_s=86400.0, now=None):
    """Delete builds of other sources from `out_dir`, except `keep` and any built less than `max_age_s` ago:
    a process started before the source changed may still load its build by path (MindSpore opens the
    library when an op kind is first launched, not when the process starts). Returns the names removed."""
    now = time.time() if now is None else now
    removed = []
    for name in os.listdir(out_dir):
        if not (name.startswith(PREFIX) and name.endswith(".so")) or name == keep:
            continue
        path = os.path.join(out_dir, name)
        try:
            if now - os.path.getmtime(path) >= max_age_s:
                os.unlink(path)
                removed.append(name)
        except OSError:
            pass
    return removed
