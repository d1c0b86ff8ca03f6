"""FID / KID of a generator on the test split while it trains (train.py --eval_freq N).

A family names its evaluation sets (`Family.eval_sets`): for each direction, the test sources at the
training size, the real target images (files, read as pytorch-fid reads them) and how to translate. Every
N iterations (and at the end) the generator, in eval mode, translates every source; the fakes are quantised
to 8 bits as a saved PNG would be, then scored against the reals' statistics (computed once). The scores go
to the log and to RUN/eval.jsonl; the model with the best mean FID so far is exported to RUN/best/ (with
best.json), as photo2cartoon chose its released model. Evaluation changes no training state, so a resumed
run evaluates exactly as an uninterrupted one.
"""
import dataclasses
import json
import os

import numpy as np

from .fid import Accumulator, FeatureExtractor, MetricError, frechet_distance, kernel_inception_distance


@dataclasses.dataclass
class EvalSet:
    name: str                 # e.g. "A2B"
    sources: np.ndarray       # (N, 3, s, s) float32 in [-1, 1]
    real_files: list          # the real target images: paths, or (3, H, W) float32 arrays in [0, 1]
    translate: object         # translate(nets, x Tensor[, condition Tensor]) -> image Tensor in [-1, 1]
    conditions: object = None  # (N, c) float32, one per source (e.g. StarGAN's target labels), or None


class TrainingEvaluator:
    def __init__(self, sets, inception_dir, dims, batch_size=16):
        self.sets, self.batch_size = sets, batch_size
        self.extractor = FeatureExtractor(inception_dir, dims)
        for s in sets:
            if len(s.real_files) <= dims:
                raise MetricError(f"--eval_dims {dims}: the {s.name} reals ({len(s.real_files)} images) give a "
                                  f"singular covariance; use a smaller --eval_dims (64, 192, 768) or more test images")
            if len(s.sources) <= dims:
                raise MetricError(f"--eval_dims {dims}: the {s.name} test sources ({len(s.sources)} images) give a "
                                  f"singular covariance; use a smaller --eval_dims (64, 192, 768) or more test images")
        self.real = {s.name: self.extractor.stats_of(s.real_files, keep_features=True) for s in sets}

    def evaluate(self, nets):
        """{set name: {"fid", "kid_mean", "kid_std"}} for the nets as they are now (eval mode on return to
        the caller's choice: the caller sets the mode)."""
        import mindspore as ms
        out = {}
        for s in self.sets:
            acc = Accumulator(self.extractor.dims, keep=True)
            for i in range(0, len(s.sources), self.batch_size):
                x = ms.Tensor(s.sources[i:i + self.batch_size])
                if s.conditions is None:
                    y = s.translate(nets, x).asnumpy()
                else:
                    y = s.translate(nets, x, ms.Tensor(s.conditions[i:i + self.batch_size])).asnumpy()
                u8 = np.clip((y + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8)       # as a saved PNG
                acc.add(self.extractor.features(u8.astype(np.float32) / 255.0))
            fake, real = acc.stats(), self.real[s.name]
            km, ks = kernel_inception_distance(real.features, fake.features, subsets=20,
                                               subset_size=min(1000, fake.n))
            out[s.name] = {"fid": frechet_distance(real.mu, real.sigma, fake.mu, fake.sigma), "kid_mean": km,
                           "kid_std": ks}
        return out


def best_so_far(run_dir):
    """The best mean FID recorded in RUN/best/best.json, or None."""
    try:
        with open(os.path.join(run_dir, "best", "best.json"), encoding="utf-8") as f:
            return float(json.load(f)["mean_fid"])
    except (OSError, ValueError, KeyError):
        return None
