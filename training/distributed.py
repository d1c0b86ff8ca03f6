"""Data-parallel training under MindSpore's launcher, msrun (CPU, GPU and Ascend; one machine or many).

    msrun --worker_num 2 --local_worker_num 2 train.py --dataset makeup --model cyclegan

msrun starts one process per worker with MS_ROLE=MS_WORKER in its environment; `setup()` sees it (or
`--distributed` forces it), calls `init()` and sets DATA_PARALLEL. Then, per worker:
- the networks start from identical weights (the seed is set before they are built, on every worker);
- each step averages the gradients of every optimiser over the workers inside the compiled step (generator,
  discriminator and every critic step), and the logged losses too, so that N workers x batch b take the step
  one worker takes with batch N x b (batch norm excepted: per worker, or synchronised for SPADE's syncbatch);
- the data is sharded (data/pipelines.py): worker r reads samples r*b .. r*b+b-1 of every global batch of the
  one-worker stream, so each sample stays a pure function of (seed, global index);
- worker 0 alone writes logs, samples, checkpoints and model/; a host-side state that differs per worker (an
  image pool) is written by each worker next to worker 0's checkpoint before it is declared complete.
"""
import os

from core.runtime import set_worker, worker


def launched_by_msrun():
    return os.environ.get("MS_ROLE") == "MS_WORKER"


def is_scheduler():
    """msrun also runs the script in its scheduler process (MS_ROLE=MS_SCHED), which must only serve the
    cluster: see serve_scheduler()."""
    return os.environ.get("MS_ROLE") == "MS_SCHED"


def serve_scheduler():
    """The scheduler process's whole job: init() serves the cluster until the workers are done."""
    from mindspore.communication import init
    init()


def expected_size(force=False):
    """The worker count msrun announced (MS_WORKER_NUM), before init(); 1 when not launched by it."""
    if not (force or launched_by_msrun()):
        return 1
    try:
        return max(1, int(os.environ.get("MS_WORKER_NUM", "1")))
    except ValueError:
        return 1


def setup(force=False):
    """init() when launched by msrun (or forced); returns (rank, size). Call after runtime.configure()."""
    if not (force or launched_by_msrun()):
        return 0, 1
    import mindspore as ms
    from mindspore.communication import get_group_size, get_rank, init
    init()
    rank, size = get_rank(), get_group_size()
    ms.set_auto_parallel_context(parallel_mode=ms.ParallelMode.DATA_PARALLEL, gradients_mean=True,
                                 device_num=size)
    set_worker(rank, size)     # read by the data pipelines (their shard) and by the steps below
    return rank, size


def rank():
    return worker()[0]


def size():
    return worker()[1]


def active():
    """More than one worker: gradients and losses are averaged over them."""
    return size() > 1


def is_main():
    return rank() == 0


class _Mean:
    """The mean over the workers of a tuple of tensors (an all-reduce sum divided by the worker count); the
    identity on one worker."""

    def __init__(self):
        from mindspore import ops
        self.reduce = ops.AllReduce()
        self.n = float(size())

    def __call__(self, tensors):
        return tuple(self.reduce(t) / self.n for t in tensors)


def gradient_mean(parameters):
    """A function grads -> grads averaged over the workers, or None on one worker."""
    if not active():
        return None
    from mindspore import nn
    return nn.DistributedGradReducer(parameters, mean=True, degree=size())


def value_mean():
    """A function (tensors) -> their means over the workers, or None on one worker."""
    return _Mean() if active() else None


_barrier = []


def barrier():
    """Every worker waits here for the others (a one-number all-reduce)."""
    if not active():
        return
    import mindspore as ms
    from mindspore import ops
    if not _barrier:
        reduce = ops.AllReduce()

        def wait(x):
            return reduce(x)
        _barrier.append(ms.jit(wait))
    _barrier[0](ms.Tensor([1.0], ms.float32)).asnumpy()
