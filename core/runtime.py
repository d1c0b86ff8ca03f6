"""Process-wide MindSpore settings: execution mode, device, threads. The entry points call `configure` once;
library code never changes these settings by itself.

Importing this module sets environment defaults that must precede the first MindSpore op (`models/__init__.py`
imports it for that reason). CPU-specific: MindSpore 2.10's oneDNN convolutions fall onto a ~70x slower path on AVX-512 CPUs (measured
here: a 32->32 3x3 conv at 256x256 took 1.8 s, 0.7 GFLOP/s). Capping oneDNN at AVX2 restores about
50 GFLOP/s (`python bench/conv_isa.py` measures both). The cap is read lazily by oneDNN on the first
primitive, so setting it here, before any MindSpore op runs, is enough; a user's own setting wins.
It has no effect on GPU or Ascend.
"""
import contextlib
import os

os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")
os.environ.setdefault("GLOG_v", "3")  # MindSpore's C++ logging: errors only


_SOURCE_DIRS = ("models", "kernels", "inference", "core", "training", "families")

# this process's place among data-parallel workers (training/distributed.py sets it once; the data pipelines
# and the training steps read it): (rank, size), (0, 1) alone
_WORKER = {"rank": 0, "size": 1}


def set_worker(rank, size):
    _WORKER.update(rank=int(rank), size=int(size))


def worker():
    """(rank, size) of this process among the data-parallel workers; (0, 1) when it trains alone."""
    return _WORKER["rank"], _WORKER["size"]


def compile_cache_dir(*parts):
    """A compiled-graph cache folder for one exact workload, or None when FACEGAN_COMPILE_CACHE=0.

    MindSpore's compile cache (experimental in 2.10) keys its files by the order graphs are compiled in, not
    by their content: one folder reused by a different network loaded the wrong graph here (a Reshape size
    error). So each folder serves one workload: its name hashes `parts` (the caller's description of every
    graph it compiles: model configs, input sizes), MindSpore's version, and the source of every module that
    shapes a graph (models/, kernels/ with its C++, inference/, core/, and the training steps' training/ and
    families/). Any change gives a new folder.
    The folders live under FACEGAN_COMPILE_CACHE_DIR (default ~/.cache/facegan/compile); any of them may be
    deleted at any time (the next run of its workload compiles and fills it again)."""
    if os.environ.get("FACEGAN_COMPILE_CACHE", "1") == "0":
        return None
    cache_root = os.environ.get("FACEGAN_COMPILE_CACHE_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "facegan", "compile")
    import hashlib
    import json
    from importlib.metadata import version
    h = hashlib.sha256(json.dumps([list(map(str, parts)), version("mindspore")]).encode())
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for d in _SOURCE_DIRS:
        for folder, dirs, files in sorted(os.walk(os.path.join(root, d))):
            dirs.sort()
            for f in sorted(files):
                if f.endswith((".py", ".cc", ".h", ".cpp")):
                    with open(os.path.join(folder, f), "rb") as fh:
                        h.update(f.encode() + fh.read())
    return os.path.join(cache_root, h.hexdigest()[:24])


def _claim(*parts):
    """compile_cache_dir(device, *parts), created and locked by this process (the lock is held until exit;
    another process on the same folder compiles without the cache), or None."""
    import mindspore as ms
    if ms.get_context("mode") != ms.GRAPH_MODE:
        return None
    path = compile_cache_dir(ms.get_context("device_target"), *parts)
    if path is None:
        return None
    import fcntl
    try:
        os.makedirs(path, exist_ok=True)
        lock = open(path + ".lock", "w")
    except OSError:
        return None
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        lock.close()
        return None
    _held.append(lock)
    return path


def use_compile_cache(*parts):
    """After configure(): save compiled graphs in, and load them from, compile_cache_dir(*parts) (graph mode
    only). A cold test.py on photo2cartoon's generator took 5.8-6.1 s without, 4.1-4.3 s with it. Returns the
    folder, or None (off, PyNative, or not writable: compile as usual)."""
    import mindspore as ms
    path = _claim(*parts)
    if path is not None:
        ms.set_context(enable_compile_cache=True, compile_cache_path=path)
    return path


@contextlib.contextmanager
def without_compile_cache():
    """The graphs compiled inside the block are neither saved in nor loaded from the compile cache, inside a
    compile_cache_scope too (the setting is restored after it)."""
    import mindspore as ms
    was = bool(ms.get_context("enable_compile_cache"))   # None until first set
    ms.set_context(enable_compile_cache=False)
    try:
        yield
    finally:
        ms.set_context(enable_compile_cache=was)


_COMPLETE = "complete"


@contextlib.contextmanager
def compile_cache_scope(*parts):
    """The graphs compiled inside the block are saved in, or loaded from, compile_cache_dir(*parts); none
    after it. For a workload whose graphs are compiled in a fixed order within the block (the training steps
    of one config, on the first iteration), while other graphs (sample grids, evaluation) are compiled later in
    an order that varies. A folder is marked complete when a block ends without an exception; one left
    incomplete (a run killed while compiling) is emptied and filled again. Yields the folder or None."""
    import mindspore as ms
    path = _claim(*parts)
    if path is None:
        yield None
        return
    marker = os.path.join(path, _COMPLETE)
    if not os.path.exists(marker):
        import shutil
        try:
            for name in os.listdir(path):
                full = os.path.join(path, name)
                shutil.rmtree(full) if os.path.isdir(full) else os.remove(full)
        except OSError:         # a folder that cannot be emptied is not used: compile as usual
            yield None
            return
    ms.set_context(enable_compile_cache=True, compile_cache_path=path)
    try:
        yield path
    finally:
        ms.set_context(enable_compile_cache=False)
    if not os.path.exists(marker):
        try:
            open(marker, "w").close()
        except OSError:
            pass


_held = []


def configure(mode="graph", device_target="auto", threads=None):
    """Set MindSpore's execution mode ("graph"/"pynative") and device ("auto", "CPU", "GPU", "Ascend")."""
    import mindspore as ms
    ms.set_context(mode=ms.GRAPH_MODE if mode == "graph" else ms.PYNATIVE_MODE)
    if device_target == "auto":
        device_target = "CPU"
        for cand in ("GPU", "Ascend"):
            try:
                if ms.hal.is_available(cand):
                    device_target = cand
                    break
            except Exception:
                pass
    ms.set_device(device_target)
    if threads:
        ms.set_context(runtime_num_threads=int(threads))
    absorb_numpy_abi_error()
    return device_target


def absorb_numpy_abi_error():
    """Run one throwaway PyNative op.

    MindSpore 2.10's PyNative argument parser initialises NumPy's C API built for NumPy 1.x; under NumPy 2
    (which OpenCV 4.14 and TensorFlow 2.21 require) that initialisation fails once, and the first PyNative
    op of the process raises. Every later op works. Call after `ms.set_device`.
    (NumPy scalars as op arguments keep failing under PyNative: pass Python floats.)
    """
    import contextlib
    import io

    import mindspore as ms
    with contextlib.redirect_stderr(io.StringIO()):   # NumPy prints a long ABI notice; it is harmless here
        try:
            (ms.Tensor([1.0], ms.float32) + 1.0).asnumpy()
        except Exception:
            pass


def quiet_waiting_thread():
    """Make the calling thread run only on otherwise idle cores, on Linux; returns whether it did.

    MindSpore 2.10 waits for a running graph on the host thread by spinning without a pause
    (`Tensor.asnumpy` -> `Pipeline::WaitAll` -> `AsyncRQueue::Wait`, seen with perf and gdb; the jitted
    training steps run asynchronously, so the training loop's main thread spends the whole step there).
    With as many compute threads as cores the spinning thread takes a share of the cores from the kernels.
    The thread goes to the SCHED_IDLE policy: it runs only when no normal thread wants the core, and a
    normal thread that wakes up takes the core from it at once. (Where SCHED_IDLE cannot be set: nice 19,
    which still left it about a quarter of the CPU time in a U-GAT-IT iteration, per `perf`.)
    Measured on a 2-core machine: a CycleGAN iteration took 21.8-26.6 s at normal priority, 14.8-17.3 s
    at nice 19; a U-GAT-IT iteration (photo2cartoon, batch 1) 11.2-13.2 s at nice 19 and 9.7-9.8 s under
    SCHED_IDLE (medians of two alternating runs of five; docs/design/graph_mode.md).
    Call it once MindSpore has started its worker threads (after the first step): a thread started later by
    this one inherits its policy. Not on other systems (there a thread id is no process id).
    FACEGAN_QUIET_WAIT=0 turns it off; FACEGAN_QUIET_WAIT=nice asks for nice 19 only, for a machine shared
    with other busy programs, where a SCHED_IDLE thread gets almost no CPU while they run (and the loop's
    host-side work is on this thread). The policy stays for the thread's life: an unprivileged thread may
    not leave SCHED_IDLE or lower its nice value again.
    """
    import sys
    import threading
    mode = os.environ.get("FACEGAN_QUIET_WAIT", "1")
    if not sys.platform.startswith("linux") or mode == "0":
        return False
    me = threading.get_native_id()
    if mode != "nice":
        try:   # Linux: a thread id names this thread only
            os.sched_setscheduler(me, os.SCHED_IDLE, os.sched_param(0))
            return True
        except (AttributeError, OSError):
            pass
    try:
        os.setpriority(os.PRIO_PROCESS, me, 19)
    except OSError:
        return False
    return True
