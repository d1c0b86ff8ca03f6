"""Loss pieces shared by the GAN families (pure tensor maths, usable inside compiled steps).

`as_function(cell)`: MindSpore 2.10 in GRAPH_MODE cannot differentiate a Cell object twice: a gradient
taken inside a loss (the WGAN-GP penalty) whose loss is itself differentiated fails to compile with
"The parameters number of the function is 2, but the number of provided arguments is 1" whenever either
target is a Cell. Differentiating a plain function that runs the Cell's `construct` works, in both modes, and
gives the same numbers (tests/test_losses.py checks it against finite differences). The engine and the
gradient penalty therefore differentiate `as_function(cell)`.
"""
import mindspore as ms
from mindspore import nn, ops

GAN_MODES = ("lsgan", "vanilla", "wgangp")


def as_function(cell):
    """A plain function running `cell.construct` (see the module docstring for why)."""
    cls = type(cell)

    def run(*args):
        return cls.construct(cell, *args)
    return run


def mse(x, target):
    return ((x - target) ** 2).mean()


def l1(a, b):
    return ops.abs(a - b).mean()


def bce_logits(x, target):
    """Binary cross-entropy on logits, numerically stable (`nn.BCEWithLogitsLoss` with a constant target)."""
    return (ops.maximum(x, 0.0) - x * target + ops.log(1.0 + ops.exp(-ops.abs(x)))).mean()


def bce(p, target):
    """`nn.BCELoss()` on probabilities p with a constant 0/1 target: -mean(log p) or -mean(log(1 - p)), each
    log clamped at -100 as PyTorch clamps it (a saturated discriminator gives 100, not infinity)."""
    q = p if target == 1.0 else 1.0 - p
    return -ops.maximum(ops.log(q), -100.0).mean()


def gan_loss(pred, target_is_real, mode):
    """The adversarial term of junyanz's GANLoss: lsgan (MSE to 1/0), vanilla (BCE with logits to 1/0),
    wgangp (-mean for real, +mean for fake). `mode` and `target_is_real` are Python constants."""
    if mode == "lsgan":
        return mse(pred, 1.0 if target_is_real else 0.0)
    if mode == "vanilla":
        return bce_logits(pred, 1.0 if target_is_real else 0.0)
    return -pred.mean() if target_is_real else pred.mean()


class FirstOutput(nn.Cell):
    """A critic's first output alone (its adversarial head: what the gradient penalty differentiates) for
    critics that also return class or attribute logits."""

    def __init__(self, critic):
        super().__init__(auto_prefix=False)
        self.critic = critic

    def construct(self, x):
        return self.critic(x)[0]


class GradientPenalty(nn.Cell):
    """WGAN-GP penalty ("mixed" type, constant 1): mean over samples of (||dD(x_hat)/dx_hat||_2 - 1)^2 with
    x_hat = alpha * real + (1 - alpha) * fake, alpha ~ U(0, 1) per sample, given as an input so that the
    training stream stays a pure function of (seed, iteration). The gradient of this penalty with respect to
    D's weights is a second-order gradient; see the module docstring for `as_function`. On CPU, build the
    discriminator with `kernels.accelerate(D, second_order=True)` (the engine does, for the nets a family names
    in `second_order_nets`): the norms' native backward has no gradient of its own."""

    def __init__(self, discriminator):
        super().__init__(auto_prefix=False)
        self.discriminator = discriminator
        self.input_grad = ms.grad(as_function(discriminator), grad_position=0)

    def construct(self, real, fake, alpha):
        alpha = alpha.reshape(-1, 1, 1, 1)
        x_hat = alpha * real + (1.0 - alpha) * fake
        g = self.input_grad(x_hat)
        norm = ops.sqrt((g * g).reshape(g.shape[0], -1).sum(1)) + 1e-16
        return ((norm - 1.0) ** 2).mean()
