"""Mixed precision for the training steps (`train.py --amp`), meant for GPUs.

- O1: convolutions and dense layers compute in float16 (MindSpore's O1 white list, applied per Cell);
  everything else, normalisations and losses included, stays float32.
- O2: every network computes in float16 except its normalisations (batch / instance / LIN / AdaLIN /
  Soft-AdaLIN / SPADE's parameter-free norms) and spectral norm's power iteration, which stay float32.
A WGAN-GP critic (STGAN, AttGAN, StarGAN) stays float32 at every level: its gradient penalty differentiates a
gradient, and MindSpore 2.10's autodiff of the float16 casts fails there (an AddN of float16 and float32
gradients); its generator still computes in float16.
Parameters, optimiser states and checkpoints stay float32 at every level, so a run's model/ is the same kind of
model whatever the level. Both levels scale each step's loss dynamically (`LossScale`, the policy of PyTorch's
GradScaler), so that small float16 gradients do not flush to zero.

On a CPU, float16 is computed without hardware support (slower than float32); the CPU kernels are float32
only and are not used with --amp. CI runs every level on the CPU to test the graphs and the scaling.
"""
import mindspore as ms
from mindspore import nn, ops

LEVELS = ("O0", "O1", "O2")


def _fp32_cells():
    from models import layers, spade
    return (nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm, layers.InstanceNorm2d,
            layers.TrackedInstanceNorm2d, layers._LINMix, layers.AdaLIN, layers.LIN, layers.SoftAdaLIN,
            layers._SpectralNormed, spade.ParamFreeBatchNorm2d)


def cast_networks(nets, level, float32=()):
    """Set the compute precision of `nets` (name -> Cell) for `level`, in place, before their first call; the
    networks named in `float32` compute in float32 (their float16 inputs are cast)."""
    if level not in LEVELS:
        raise ValueError(f"--amp must be one of {', '.join(LEVELS)}, not {level}")
    if level == "O0":
        return
    keep = _fp32_cells()
    for name, net in nets.items():
        if name in float32:
            net.to_float(ms.float32)
            continue
        # a Cell's flag casts its inputs: under O1 every Cell but the white-listed ones takes float32 (a float16
        # convolution output may meet a float32 weight in a raw primitive such as spectral norm's Conv2D)
        net.to_float(ms.float16 if level == "O2" else ms.float32)
        for _, cell in net.cells_and_names():
            if level == "O1" and isinstance(cell, (nn.Conv2d, nn.Conv2dTranspose, nn.Dense)):
                cell.to_float(ms.float16)
            elif level == "O2" and isinstance(cell, keep):
                cell.to_float(ms.float32)


class LossScale(nn.Cell):
    """Dynamic loss scaling for one training step: the loss is multiplied by `scale` before differentiation and
    the gradients divided by it; a step whose gradients are not all finite is skipped and halves the scale,
    `window` finite steps in a row double it (PyTorch GradScaler's defaults: 2^16, x2, /2, 2000). The scale
    and the count are Parameters named after the step, saved with the checkpoint."""

    def __init__(self, name, init=2.0 ** 16, factor=2.0, window=2000):
        super().__init__(auto_prefix=False)
        self.scale = ms.Parameter(ms.Tensor(init, ms.float32), name=f"{name}.loss_scale", requires_grad=False)
        self.finite_steps = ms.Parameter(ms.Tensor(0, ms.int32), name=f"{name}.finite_steps", requires_grad=False)
        self.factor, self.window = float(factor), int(window)

    def unscale(self, grads):
        inv = 1.0 / self.scale
        return tuple(g * inv.astype(g.dtype) for g in grads)

    def update(self, finite):
        grown = self.finite_steps + 1
        grow = ops.logical_and(finite, grown >= self.window)
        scale = ops.select(finite, ops.select(grow, self.scale * self.factor, self.scale),
                           ops.maximum(self.scale / self.factor, 1.0))
        count = ops.select(ops.logical_and(finite, ops.logical_not(grow)), grown, ops.zeros_like(grown))
        return ops.depend(ops.assign(self.scale, scale), ops.assign(self.finite_steps, count))
