"""Timing helper shared by the bench scripts (run as `python bench/<script>.py`, so this directory is on
sys.path)."""
import time


def median_time(fn, repeat, warmup=1):
    """Median wall time of `repeat` calls of fn, after `warmup` untimed calls (compile, caches)."""
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return sorted(ts)[len(ts) // 2]
