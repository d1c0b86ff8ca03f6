"""The one GAN training loop shared by every family.

A family (training/families/*.py) supplies: its networks, a generator loss Cell and a discriminator loss
Cell (each returning `(loss, tuple_of_named_terms)`), the order of the two steps, the parameters to clamp to
[0, 1] after the generator step, a sample-grid function and its default config. How the D step gets the
generated images: either a forward Cell (`make_losses` third item) run before it, or, with `G_FEEDS_D = k`,
the last k outputs of the generator loss (the fakes of the G step itself, as CycleGAN does), optionally
passed through a host-side feed such as an image pool (`make_d_feed`, whose state is checkpointed).
`D_STEPS` (default 1) discriminator steps per generator step, each on its own batch (WGAN-GP critics).
The engine owns everything else, once:
- the two steps, each a `value_and_grad` over the loss Cell, jitted (`ms.jit`) in GRAPH_MODE;
- Adam with the family's lr/betas/weight decay, and the lr schedule (constant, then linear decay to 0);
- logging every print_freq (iteration, elapsed, d_loss, g_loss, named terms) and a tqdm bar with ETA;
- sample grids every sample_freq, a loss-curve PNG, the resolved config in the run directory;
- checkpoints every save_freq, written atomically, holding all nets, both optimisers' states (moments,
  step), the iteration and the seed: `--resume` continues exactly; SIGINT/SIGTERM save and exit cleanly.
"""
import json
import math
import os
import signal
import tempfile
import time

import numpy as np

import mindspore as ms
from mindspore import nn, ops

from models import runtime

from .checkpoint import latest_checkpoint, load_extra_state, load_training_state, save_training_state
from .losses import as_function


class LinearDecayLR(nn.learning_rate_schedule.LearningRateSchedule):
    """`base` until `decay_start`, then linearly to 0 at `total` (photo2cartoon's decay_flag schedule)."""

    def __init__(self, base, decay_start, total):
        super().__init__()
        self.base = float(base)
        self.decay_start = float(decay_start)
        self.span = float(max(1, total - decay_start))

    def construct(self, global_step):
        step = global_step.astype(ms.float32)
        frac = ops.clamp((step - self.decay_start) / self.span, 0.0, 1.0)
        return self.base * (1.0 - frac)


class StepDropLR(nn.learning_rate_schedule.LearningRateSchedule):
    """`base` until `decay_start`, then `base * factor` (STGAN/AttGAN: a tenth halfway)."""

    def __init__(self, base, decay_start, factor=0.1):
        super().__init__()
        self.base, self.decay_start, self.factor = float(base), float(decay_start), float(factor)

    def construct(self, global_step):
        late = (global_step.astype(ms.float32) >= self.decay_start).astype(ms.float32)
        return self.base * (1.0 - late * (1.0 - self.factor))


SCHEDULES = {"linear": lambda cfg: LinearDecayLR(cfg["lr"], cfg["decay_start"], cfg["iterations"]),
             "step": lambda cfg: StepDropLR(cfg["lr"], cfg["decay_start"])}


def make_train_step(loss_cell, optimizer, jit=True, clamp01=()):
    """One optimisation step of `optimizer`'s parameters on `loss_cell`: returns (loss, terms).

    `clamp01`: parameters clamped to [0, 1] right after the update, inside the same graph. (Parameters must
    not be changed from Python with `set_data` once a step is compiled: the compiled graph keeps using its
    own buffer, so such a change is silently lost and the host copy goes stale.)
    """
    # a plain function, not the Cell: lets a loss take gradients itself (WGAN-GP) in GRAPH_MODE (losses.py)
    grad_fn = ms.value_and_grad(as_function(loss_cell), None, optimizer.parameters, has_aux=True)
    clamp01 = tuple(clamp01)

    def train_step(*inputs):
        (loss, terms), grads = grad_fn(*inputs)
        loss = ops.depend(loss, optimizer(grads))
        for p in clamp01:
            loss = ops.depend(loss, ops.assign(p, ops.clamp(p, 0.0, 1.0)))
        return loss, terms

    return ms.jit(train_step) if jit else train_step


class Interrupted(Exception):
    pass


class GANTrainer:
    def __init__(self, family, cfg, run_dir, nets, data_factory, sample_inputs=None, log=print):
        """
        family: the family module/object; cfg: resolved config dict (lr, beta1, beta2, weight_decay,
        iterations, decay_start, batch_size, print_freq, save_freq, sample_freq, seed, mode, ...);
        nets: dict name -> Cell (already built, weights loaded if fine-tuning);
        data_factory(start_iter) -> iterator of input tuples for iterations start_iter..iterations-1 (D_STEPS
        tuples per iteration).
        """
        self.family, self.cfg, self.run_dir, self.nets = family, cfg, run_dir, nets
        self.data_factory, self.sample_inputs, self.log = data_factory, sample_inputs, log
        self.iteration = 0
        jit = cfg.get("mode", "graph") == "graph"
        g_params = [p for n in family.G_NETS for p in nets[n].trainable_params()]
        d_params = [p for n in family.D_NETS for p in nets[n].trainable_params()]
        self.d_steps = int(cfg.get("n_critic", getattr(family, "D_STEPS", 1)))
        schedule = SCHEDULES[cfg.get("lr_schedule", "linear")]
        # each optimiser's position is its own step count: D takes d_steps steps per iteration
        d_cfg = dict(cfg, decay_start=cfg["decay_start"] * self.d_steps, iterations=cfg["iterations"] * self.d_steps)
        self.g_opt = nn.Adam(g_params, learning_rate=schedule(cfg), beta1=cfg["beta1"], beta2=cfg["beta2"],
                             weight_decay=cfg["weight_decay"])
        self.d_opt = nn.Adam(d_params, learning_rate=schedule(d_cfg), beta1=cfg["beta1"], beta2=cfg["beta2"],
                             weight_decay=cfg["weight_decay"])
        # d_inputs: a forward Cell whose outputs are appended to the D step's inputs (e.g. the fakes)
        self.g_loss, self.d_loss, self.d_inputs = family.make_losses(nets, cfg)
        self._d_inputs = ms.jit(self.d_inputs.construct) if (jit and self.d_inputs is not None) else self.d_inputs
        self.g_step = make_train_step(self.g_loss, self.g_opt, jit, family.clamp01_params(nets))
        self.d_step = make_train_step(self.d_loss, self.d_opt, jit)
        self.n_g_terms = len(family.G_TERMS)
        self.feeds_d = getattr(family, "G_FEEDS_D", 0)
        self.d_feed = family.make_d_feed(cfg) if hasattr(family, "make_d_feed") else None
        self.history = []   # (iteration, d_loss, g_loss, {term: value})
        self._stop = False

    def discriminator_step(self, inputs, fed=()):
        extra = tuple(fed)
        if not extra and self._d_inputs is not None:
            extra = self._d_inputs(*inputs)
            extra = tuple(extra) if isinstance(extra, (tuple, list)) else (extra,)
        if self.d_feed is not None:
            extra = self.d_feed(self.iteration, extra)
        return self.d_step(*inputs, *extra)

    def generator_step(self, inputs):
        """(loss, named terms, images fed to the D step)."""
        loss, aux = self.g_step(*inputs)
        return loss, aux[:self.n_g_terms], aux[self.n_g_terms:self.n_g_terms + self.feeds_d]

    def iteration_step(self, batches):
        """One iteration: D_STEPS discriminator steps (each on its own batch) and one generator step.
        `batches`: a list of D_STEPS input tuples; the generator uses the last."""
        d_loss = d_terms = None
        if self.family.D_FIRST:
            for inputs in batches:
                d_loss, d_terms = self.discriminator_step(inputs)
            g_loss, g_terms, _ = self.generator_step(batches[-1])
        else:
            g_loss, g_terms, fed = self.generator_step(batches[-1])
            for inputs in batches:
                d_loss, d_terms = self.discriminator_step(inputs, fed if inputs is batches[-1] else ())
        return d_loss, d_terms, g_loss, g_terms

    # ------------------------------------------------------------------ state
    def state_cells(self):
        cells = dict(self.nets)
        cells["G_optim"] = self.g_opt
        cells["D_optim"] = self.d_opt
        return cells

    def save(self):
        meta = {"iteration": self.iteration, "seed": self.cfg["seed"], "family": self.family.NAME,
                "config": self.cfg, "history": self.history[-5000:]}
        extra = self.d_feed.state() if self.d_feed is not None else None
        path = save_training_state(self.run_dir, self.state_cells(), meta, extra)
        self.family.export(self.nets, self.cfg, os.path.join(self.run_dir, "model"))
        return path

    def resume(self, path=None):
        path = path or latest_checkpoint(self.run_dir)
        if path is None:
            return False
        meta = load_training_state(path, self.state_cells())
        if self.d_feed is not None:
            self.d_feed.load_state(load_extra_state(path))
        self.iteration = int(meta["iteration"])
        self.history = [tuple(h) for h in meta.get("history", [])]
        return True

    # ------------------------------------------------------------------ loop
    def _on_signal(self, signum, frame):
        self._stop = True

    def train(self, progress=True):
        from tqdm import tqdm
        cfg = self.cfg
        os.makedirs(self.run_dir, exist_ok=True)
        for n in self.nets.values():
            n.set_train(True)
        total, start = cfg["iterations"], self.iteration
        batches = self.data_factory(start) if start < total else iter(())
        pending = []
        sigs = (signal.SIGINT, signal.SIGTERM)
        old = {s: signal.signal(s, self._on_signal) for s in sigs}
        bar = tqdm(total=total, initial=start, desc=self.family.NAME, unit="it", disable=not progress,
                   dynamic_ncols=True)
        t0 = time.time()
        last_saved = start
        try:
            if start < total:
                for batch in batches:
                    if self.iteration == start:
                        # mindspore.dataset's pipeline installs a C-level SIGTERM handler (it exits 0) when
                        # it delivers its first batch: take the signals back once it has started
                        for s in sigs:
                            signal.signal(s, self._on_signal)
                    if self._stop:
                        raise Interrupted()
                    pending.append(tuple(ms.Tensor(b) for b in batch))
                    if len(pending) < self.d_steps:
                        continue
                    d_loss, d_terms, g_loss, g_terms = self.iteration_step(pending)
                    if self.iteration == start:
                        # MindSpore's threads exist now; its host-side waits spin on this thread
                        runtime.quiet_waiting_thread()
                    pending = []
                    self.iteration += 1
                    it = self.iteration
                    bar.update(1)
                    if it % cfg["print_freq"] == 0 or it == total:
                        terms = dict(zip(self.family.G_TERMS, (float(t.asnumpy()) for t in g_terms)))
                        terms.update(zip(self.family.D_TERMS, (float(t.asnumpy()) for t in d_terms)))
                        dl, gl = float(d_loss.asnumpy()), float(g_loss.asnumpy())
                        if not (math.isfinite(dl) and math.isfinite(gl)):
                            raise FloatingPointError(f"loss is not finite at iteration {it} (d {dl}, g {gl})")
                        self.history.append((it, dl, gl, terms))
                        named = " ".join(f"{k}: {v:.4f}" for k, v in terms.items())
                        line = (f"[{it:6d}/{total}] time: {time.time() - t0:7.1f}s d_loss: {dl:.6f} "
                                f"g_loss: {gl:.6f} | {named}")
                        (bar.write if progress else self.log)(line)
                    if self.sample_inputs is not None and (it % cfg["sample_freq"] == 0 or it == total):
                        self.write_samples()
                    if it % cfg["save_freq"] == 0 or it == total:
                        self.save()
                        last_saved = it
                        self.plot_losses()
                    if it >= total:
                        break
                if self.iteration < total:   # the data stream ended early: it was stopped, not finished
                    raise Interrupted()
        except (Interrupted, KeyboardInterrupt):
            if self.iteration > last_saved:
                self.save()
            self.plot_losses()
            bar.close()
            self.log(f"stopped at iteration {self.iteration}: checkpoint saved, rerun with --resume to continue")
            return False
        finally:
            for s, h in old.items():
                signal.signal(s, h)
            bar.close()
        return True

    # ------------------------------------------------------------------ outputs
    def write_samples(self):
        from preprocess.imageio import write_image_atomic
        for n in self.nets.values():
            n.set_train(False)
        grid = self.family.sample_grid(self.nets, self.sample_inputs, self.cfg)
        for n in self.nets.values():
            n.set_train(True)
        write_image_atomic(os.path.join(self.run_dir, "samples", f"{self.iteration:07d}.png"), grid)

    def plot_losses(self):
        """A dependency-free loss-curve PNG (OpenCV drawing): d_loss and g_loss, each min-max scaled."""
        import cv2
        from preprocess.imageio import write_image_atomic
        if len(self.history) < 2:
            return
        w, h, pad = 640, 360, 40
        img = np.full((h, w, 3), 255, np.uint8)
        its = np.array([r[0] for r in self.history], np.float64)
        x = pad + (its - its.min()) / max(1e-9, its.max() - its.min()) * (w - 2 * pad)
        for k, color, name in ((1, (200, 30, 30), "d_loss"), (2, (30, 30, 200), "g_loss")):
            v = np.array([r[k] for r in self.history], np.float64)
            lo, hi = v.min(), v.max()
            y = h - pad - (v - lo) / max(1e-12, hi - lo) * (h - 2 * pad)
            cv2.polylines(img, [np.stack([x, y], 1).astype(np.int32)], False, color, 1, cv2.LINE_AA)
            cv2.putText(img, f"{name} [{lo:.3g}, {hi:.3g}]", (pad, 18 if k == 1 else 34),
                        cv2.FONT_HERSHEY_SIMPLEX, 0.45, color, 1, cv2.LINE_AA)
        cv2.putText(img, f"iteration {int(its.min())}..{int(its.max())}", (w - 220, h - 12),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        write_image_atomic(os.path.join(self.run_dir, "loss_curve.png"), img)


def write_json_atomic(path, obj):
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".part-", suffix=".json", dir=folder)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)
