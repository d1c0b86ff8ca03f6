"""How the learning tests judge a trained generator: a score the generator does not control, its baselines
computed in the test, and a margin.

Every judge returns a Verdict: the trained score, the baselines (the untrained network, the identity map, the
best constant image per channel), the bound the score must reach, and whether it does. The bound is the best
baseline improved by a stated margin, so a generator that ignores its input (a constant image) or copies it
(the identity) cannot pass; `tests/test_learning_judges.py` feeds each judge those outputs and the true
mapping to show that it fails the first two and passes the third.
"""
import dataclasses

import numpy as np


@dataclasses.dataclass
class Verdict:
    score: float
    baselines: dict
    bound: float
    lower_is_better: bool = True

    @property
    def passed(self):
        return self.score <= self.bound if self.lower_is_better else self.score >= self.bound

    def __str__(self):
        base = ", ".join(f"{k} {v:.3f}" for k, v in self.baselines.items())
        rel = "<=" if self.lower_is_better else ">="
        return f"score {self.score:.3f} (needs {rel} {self.bound:.3f}; baselines: {base})"


def to_unit(images_uint8):
    """NHWC uint8 -> NCHW float32 in [-1, 1]."""
    return np.ascontiguousarray((images_uint8.astype(np.float32) / 127.5 - 1.0).transpose(0, 3, 1, 2))


def to_uint8(x):
    """NCHW float in [-1, 1] -> NHWC uint8."""
    return np.clip((np.asarray(x).transpose(0, 2, 3, 1) + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8)


def best_constant(truth):
    """The constant image (one value per channel) closest in mean L1 to `truth` (NCHW): the per-channel
    median."""
    return np.broadcast_to(np.median(truth, axis=(0, 2, 3), keepdims=True), truth.shape)


def l1(a, b):
    return float(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)).mean())


def judge_translation(output, inputs, truth, untrained_output, margin=0.25):
    """Image translation with a known true mapping (NCHW, [-1, 1]): mean L1 to the truth must be at most
    (1 - margin) x the best of: the untrained generator, the identity map, the best constant image."""
    baselines = {"untrained": l1(untrained_output, truth), "identity": l1(inputs, truth),
                 "constant": l1(best_constant(truth), truth)}
    return Verdict(l1(output, truth), baselines, (1.0 - margin) * min(baselines.values()))


def judge_attribute(predicted, target, baselines_predicted, margin=0.25, floor=0.75):
    """One attribute of an editing task: the share of edited images an independent classifier reads as the
    target value must exceed every baseline's share by `margin` and be at least `floor`.
    baselines_predicted: name -> the classifier's reading of that baseline's outputs."""
    baselines = {k: float((np.asarray(p) == target).mean()) for k, p in baselines_predicted.items()}
    score = float((np.asarray(predicted) == target).mean())
    return Verdict(score, baselines, max(floor, max(baselines.values()) + margin), lower_is_better=False)
