"""The one GAN training loop shared by every family.

A family (families/, the contract in families/base.py) supplies its networks, its loss Cells (each returning
`(loss, {term name: scalar})`, the generator's optionally `{name: image}` for the D step), the order of the two
steps, the parameters to clamp to [0, 1] after the generator step, its data and its sample grid. How the D
step gets the generated images: either the generator loss's feeds (the fakes of the G step itself, as CycleGAN
does; `family.feeds_d` names them), optionally through a host-side stage such as an image pool
(`family.d_feed`, whose state is checkpointed), or a forward Cell (`Losses.d_inputs`) run before each D step;
with `family.shares_fake` that forward is the G step's too (one graph per iteration, `_SharedFakeStep`).
cfg["n_critic"] discriminator steps per generator step, each on its own batch (WGAN-GP critics).
The engine owns everything else, once:
- the CPU kernels put into every network (kernels.accelerate; second order for the family's critics);
- the two steps, each a `value_and_grad` over the loss Cell, jitted (`ms.jit`) in GRAPH_MODE, their graphs
  cached across runs of one config (core.runtime.compile_cache_scope);
- mixed precision (cfg["amp"]): the networks' compute precision and each step's dynamic loss scale (amp.py);
- Adam with the family's lr/betas/weight decay, and the lr schedule (constant, then linear decay to 0);
- logging every print_freq (iteration, elapsed, d_loss, g_loss, named terms) and a tqdm bar with ETA;
- sample grids every sample_freq, a loss-curve PNG, the resolved config in the run directory;
- checkpoints every save_freq, written atomically, holding all nets, both optimisers' states (moments,
  step), the iteration and the seed: `--resume` continues exactly; SIGINT/SIGTERM save and exit cleanly.
"""
import contextlib
import json
import math
import os
import signal
import time

import numpy as np

import mindspore as ms
from mindspore import nn, ops

import kernels
from core import runtime

from . import amp, distributed
from .checkpoint import (latest_checkpoint, load_extra_state, load_training_state, save_training_state,
                         save_worker_extra)
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


SCHEDULES = {"linear": lambda lr, decay_start, total: LinearDecayLR(lr, decay_start, total),
             "step": lambda lr, decay_start, total: StepDropLR(lr, decay_start)}


def adam(params, lr, settings):
    """nn.Adam with `settings` (beta1, beta2, weight_decay). beta1 0 (SPADE's TTUR: Adam without momentum) is
    refused by nn.Adam's argument check, though its update takes it (m = g, no bias correction of m): the
    optimiser is built with another beta1 and then given 0."""
    b1 = float(settings["beta1"])
    opt = nn.Adam(params, learning_rate=lr, beta1=b1 if b1 > 0 else 0.5, beta2=settings["beta2"],
                  weight_decay=settings["weight_decay"])
    if b1 == 0:
        opt.beta1 = ms.Tensor(0.0, ms.float32)
    return opt


def make_train_step(loss_cell, optimizer, jit=True, clamp01=(), names=None, loss_scale=None):
    """One optimisation step of `optimizer`'s parameters on `loss_cell`: returns what the loss Cell returns
    (loss, terms[, feeds]), with the parameters updated.

    `loss_scale`: a training.amp.LossScale (mixed precision): the loss is scaled before differentiation, the
    gradients unscaled, and a step with a gradient that is not finite is skipped (the scale adapts).

    `names`: the key tuples of the loss Cell's dicts, in order (default: `(loss_cell.terms,)`); a dict it
    returns beyond them is dropped. `clamp01`: parameters clamped to [0, 1] right after the update, inside the
    same graph. (Parameters must not be changed from Python with `set_data` once a step is compiled: the
    compiled graph keeps using its own buffer, so such a change is silently lost and the host copy goes stale.)
    """
    names = tuple(tuple(n) for n in (names if names is not None else (loss_cell.terms,)))
    step = _TrainStep(loss_cell, optimizer, tuple(clamp01), names, loss_scale)
    run_step = ms.jit(step.construct) if jit else step.construct

    def run(*inputs):
        out = run_step(*inputs)
        return (out[0],) + tuple(dict(zip(keys, values)) for keys, values in zip(names, out[1:]))
    return run


def _values(names, dicts, value_mean):
    """The values of `dicts` in the order of `names` (a tuple of key tuples), the first averaged over the workers."""
    rest = ()
    for k, keys in enumerate(names):
        values = ()
        for key in keys:
            values = values + (dicts[k][key],)
        if value_mean is not None and k == 0:
            values = value_mean(values)
        rest = rest + (values,)
    return rest


class _TrainStep(nn.Cell):
    """The compiled step. A Cell that owns the loss and the optimiser, returning tensors only: so built, its
    graph can be saved in and loaded from MindSpore's compile cache with the parameters bound by name (a
    jitted plain function referring to them was loaded with unbound parameters, and string outputs could not
    be loaded at all)."""

    def __init__(self, loss_cell, optimizer, clamp01, names, loss_scale=None):
        super().__init__(auto_prefix=False)
        self.loss_cell, self.optimizer, self.clamp01, self.names = loss_cell, optimizer, clamp01, names
        self.loss_scale = loss_scale
        # a plain function, not the Cell: lets a loss take gradients itself (WGAN-GP) in GRAPH_MODE (losses.py)
        fn = as_function(loss_cell)
        if loss_scale is not None:
            plain = fn

            def fn(*inputs):
                out = plain(*inputs)
                return (out[0] * loss_scale.scale,) + tuple(out[1:])
        self.grad_fn = ms.value_and_grad(fn, None, optimizer.parameters, has_aux=True)
        # data parallel (training/distributed.py): gradients, the loss and its terms averaged over the workers
        self.grad_mean = distributed.gradient_mean(optimizer.parameters)
        self.value_mean = distributed.value_mean()

    def construct(self, *inputs):
        out, grads = self.grad_fn(*inputs)
        if self.grad_mean is not None:
            grads = self.grad_mean(grads)
        if self.loss_scale is None:
            loss = ops.depend(out[0], self.optimizer(grads))
        else:
            # every worker holds the same averaged gradients here, so all of them skip a step or none
            grads = self.loss_scale.unscale(grads)
            finite = ms.amp.all_finite(grads)
            loss = out[0] / self.loss_scale.scale
            if finite:
                loss = ops.depend(loss, self.optimizer(grads))
            loss = ops.depend(loss, self.loss_scale.update(finite))
        for p in self.clamp01:
            loss = ops.depend(loss, ops.assign(p, ops.clamp(p, 0.0, 1.0)))
        rest = _values(self.names, out[1:], self.value_mean)
        if self.value_mean is not None:
            loss = self.value_mean((loss,))[0]
        return (loss,) + rest


class _SharedFakeStep(nn.Cell):
    """The D step and the G step of one iteration in one graph, for a family whose G step reuses the D step's
    fake (Family.shares_fake): G's forward once, its pullback kept; the D loss on the fake (detached) and D's
    update; then the G loss on the same fake through the updated D, and its gradient pulled back through the
    kept forward. Returns (d_loss, d_terms, g_loss, g_terms, G's gradients): G's update is a graph of its own
    (`_ApplyGradients`; two optimisers in one graph would clash on their step counters' names)."""

    def __init__(self, generate, d_loss, g_on_fake, d_opt, g_params):
        super().__init__(auto_prefix=False)
        self.generate, self.d_loss_cell, self.g_on_fake, self.d_opt = generate, d_loss, g_on_fake, d_opt
        self.g_params = ms.ParameterTuple(g_params)
        self.names = ((d_loss.terms,), (g_on_fake.terms,))
        self.generate_fn = as_function(generate)
        self.d_grad = ms.value_and_grad(as_function(d_loss), None, d_opt.parameters, has_aux=True)
        on_fake = as_function(g_on_fake)

        def g_of_fake(fake, *batch):
            return on_fake(*batch, fake)
        self.g_grad = ms.value_and_grad(g_of_fake, 0, None, has_aux=True)
        self.d_mean = distributed.gradient_mean(d_opt.parameters)
        self.g_mean = distributed.gradient_mean(self.g_params)
        self.value_mean = distributed.value_mean()

    def construct(self, *batch):
        fake, pullback = ms.vjp(self.generate_fn, *batch, weights=self.g_params)
        d_out, d_grads = self.d_grad(*batch, ops.stop_gradient(fake))
        if self.d_mean is not None:
            d_grads = self.d_mean(d_grads)
        d_loss = ops.depend(d_out[0], self.d_opt(d_grads))
        g_out, d_fake = self.g_grad(ops.depend(fake, d_loss), *batch)   # D as updated just now
        g_grads = pullback(d_fake)[1]
        if self.g_mean is not None:
            g_grads = self.g_mean(g_grads)
        g_loss = g_out[0]
        d_values = _values(self.names[0], (d_out[1],), self.value_mean)
        g_values = _values(self.names[1], (g_out[1],), self.value_mean)
        if self.value_mean is not None:
            d_loss, g_loss = self.value_mean((d_loss, g_loss))
        return d_loss, d_values[0], g_loss, g_values[0], g_grads


class _ApplyGradients(nn.Cell):
    """One optimiser step on gradients passed in, one argument each: passed as one tuple, the jitted call was
    specialised again on every new tuple (the DCGAN toy's iteration took 0.18 s instead of 0.05)."""

    def __init__(self, optimizer):
        super().__init__(auto_prefix=False)
        self.optimizer = optimizer

    def construct(self, *grads):
        return self.optimizer(grads)


def make_shared_fake_iteration(generate, d_loss, g_on_fake, d_opt, g_opt, jit=True):
    """One iteration of a Family.shares_fake family (see _SharedFakeStep): run(*batch) -> (d_loss, d_terms,
    g_loss, g_terms), both optimisers stepped."""
    step = _SharedFakeStep(generate, d_loss, g_on_fake, d_opt, g_opt.parameters)
    apply = _ApplyGradients(g_opt)
    run_step = ms.jit(step.construct) if jit else step.construct
    run_apply = ms.jit(apply.construct) if jit else apply.construct
    d_loss_terms, g_terms = tuple(d_loss.terms), tuple(g_on_fake.terms)
    compiled = []

    def run(*batch):
        d_loss, d_values, g_loss, g_values, g_grads = run_step(*batch)
        # G's update graph is compiled outside the compile cache: loaded from it (MindSpore 2.10), the Adam
        # state it updates was not the optimiser's (a resumed run's G moved unlike the uninterrupted run's,
        # tests/test_train_dcgan.py); it is one Adam step, compiled in well under a second
        with runtime.without_compile_cache() if not compiled else contextlib.nullcontext():
            g_loss = ops.depend(g_loss, run_apply(*g_grads))
        compiled[:] = [True]
        return (d_loss, dict(zip(d_loss_terms, d_values)), g_loss, dict(zip(g_terms, g_values)))
    return run


# config keys that no compiled training graph depends on (the rest go into the compile cache's key)
NOT_IN_GRAPHS = ("print_freq", "save_freq", "sample_freq", "eval_freq", "workers", "threads")


class Interrupted(Exception):
    pass


class TrainingStopped(Exception):
    """A run that cannot go on: an output that cannot be written (full disk, read-only folder) or a training
    image that vanished. The message is one line and names the last complete checkpoint."""


def _reason(e):
    if isinstance(e, OSError):
        return e.strerror or str(e).splitlines()[0]
    text = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return text[0] if text else type(e).__name__


class GANTrainer:
    def __init__(self, family, cfg, run_dir, nets, data_factory, sample_inputs=None, log=print, evaluator=None,
                 eval_freq=0, compile_cache=None):
        """
        family: a families.Family; cfg: the resolved config (lr, beta1, beta2, weight_decay, iterations,
        decay_start, n_critic, batch_size, print_freq, save_freq, sample_freq, seed, mode, ...);
        nets: name -> Cell, built by the family (weights loaded if fine-tuning), not yet compiled;
        data_factory(start_iter) -> iterator of input tuples for iterations start_iter.. (n_critic per iteration);
        compile_cache: a list describing whatever else shapes the data's tensors (e.g. the dataset's path): the
        training steps' graphs go into a compile cache folder of this workload (core.runtime), so a rerun or a
        resume of the same config loads them instead of compiling; None: no cache.
        """
        self.family, self.cfg, self.run_dir, self.nets = family, cfg, run_dir, nets
        self.data_factory, self.sample_inputs, self.log = data_factory, sample_inputs, log
        self.evaluator, self.eval_freq = evaluator, int(eval_freq or 0)
        self.iteration = 0
        jit = cfg.get("mode", "graph") == "graph"
        twice = set(family.second_order_nets(cfg))
        level = cfg.get("amp", "O0")
        amp.cast_networks(nets, level, float32=twice)
        for name, net in nets.items():
            if level == "O0":            # the CPU kernels compute in float32 only
                kernels.accelerate(net, second_order=name in twice)
        # a family's optional networks (SPADE's encoder, only with --use_vae) may be absent from `nets`
        g_params = [p for n in family.generators if n in nets for p in nets[n].trainable_params()]
        d_params = [p for n in family.discriminators if n in nets for p in nets[n].trainable_params()]
        self.d_steps = int(cfg["n_critic"])
        schedule = SCHEDULES[cfg.get("lr_schedule", "linear")]
        opt = family.optimizer_settings(cfg)
        # each optimiser's position is its own step count: D takes d_steps steps per iteration
        self.g_opt = adam(g_params, schedule(opt["G"]["lr"], cfg["decay_start"], cfg["iterations"]), opt["G"])
        # a family without a discriminator (a classifier) trains its one optimiser on n_critic = 1 batch
        self.d_opt = adam(d_params, schedule(opt["D"]["lr"], cfg["decay_start"] * self.d_steps,
                                             cfg["iterations"] * self.d_steps), opt["D"]) if d_params else None
        losses = family.losses(nets, cfg)
        self.g_loss, self.d_loss, self.d_inputs = losses.generator, losses.discriminator, losses.d_inputs
        self._d_inputs = ms.jit(self.d_inputs.construct) if (jit and self.d_inputs is not None) else self.d_inputs
        self.feeds_d = tuple(family.feeds_d)
        g_names = (self.g_loss.terms,) + ((self.feeds_d,) if self.feeds_d else ())
        self.scales = {}
        if level != "O0":
            self.scales = {"G_scale": amp.LossScale("G_step")}
            if self.d_opt is not None:
                self.scales["D_scale"] = amp.LossScale("D_step")
        self.g_step = make_train_step(self.g_loss, self.g_opt, jit, family.clamp01_params(nets), g_names,
                                      self.scales.get("G_scale"))
        self.d_step = make_train_step(self.d_loss, self.d_opt, jit, loss_scale=self.scales.get("D_scale")) \
            if self.d_opt is not None else None
        self.d_feed = family.d_feed(cfg)
        # G's forward once per iteration where the family's original does so (not under mixed precision, whose
        # loss scales belong to the separate steps)
        self.shared_fake = None
        if (family.shares_fake and losses.generator_on_fake is not None and self.d_step is not None
                and level == "O0" and self.d_steps == 1 and family.d_first and self.d_inputs is not None
                and self.d_feed is None and not family.clamp01_params(nets)):
            self.shared_fake = make_shared_fake_iteration(self.d_inputs, self.d_loss, losses.generator_on_fake,
                                                          self.d_opt, self.g_opt, jit)
        self.history = []   # (iteration, d_loss, g_loss, {term: value})
        self._stop = False
        self.cache_parts = None
        if compile_cache is not None and jit:
            graph_cfg = {k: v for k, v in cfg.items() if k not in NOT_IN_GRAPHS}
            self.cache_parts = ["training steps", family.name, json.dumps(graph_cfg, sort_keys=True, default=str),
                                kernels.enabled(), distributed.rank(), distributed.size()] + list(compile_cache)

    def discriminator_step(self, inputs, fed=()):
        extra = tuple(fed)
        if not extra and self._d_inputs is not None:
            extra = self._d_inputs(*inputs)
            extra = tuple(extra) if isinstance(extra, (tuple, list)) else (extra,)
        if self.d_feed is not None:
            extra = self.d_feed(self.iteration, extra)
        return self.d_step(*inputs, *extra)

    def generator_step(self, inputs):
        """(loss, named terms, the images it feeds to the D step, in family.feeds_d's order)."""
        out = self.g_step(*inputs)
        fed = tuple(out[2][k] for k in self.feeds_d) if self.feeds_d else ()
        return out[0], out[1], fed

    def iteration_step(self, batches):
        """One iteration: n_critic discriminator steps (each on its own batch) and one generator step.
        `batches`: a list of n_critic input tuples; the generator uses the last."""
        d_loss = d_terms = None
        if self.d_step is None:
            g_loss, g_terms, _ = self.generator_step(batches[-1])
            return None, {}, g_loss, g_terms
        if self.shared_fake is not None:
            return self.shared_fake(*batches[-1])
        if self.family.d_first:
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
        if self.d_opt is not None:
            cells["D_optim"] = self.d_opt
        cells.update(self.scales)
        return cells

    def save(self):
        """A checkpoint of everything (atomic: a failure leaves the previous one whole) and the inference
        model dir; a write that fails is a TrainingStopped. Data parallel: every worker but 0 writes its own
        host-side state (image pool) first; once all have, worker 0 writes the rest."""
        meta = {"iteration": self.iteration, "seed": self.cfg["seed"], "family": self.family.name,
                "config": self.cfg, "history": self.history[-5000:]}
        extra = self.d_feed.state() if self.d_feed is not None else None
        if distributed.active():
            if extra is not None and not distributed.is_main():
                try:
                    save_worker_extra(self.run_dir, self.iteration, distributed.rank(), extra)
                except OSError as e:
                    raise TrainingStopped(f"worker {distributed.rank()}: cannot write its state for iteration "
                                          f"{self.iteration} in {self.run_dir}: {_reason(e)}") from None
            distributed.barrier()
            if not distributed.is_main():
                return None
        try:
            path = save_training_state(self.run_dir, self.state_cells(), meta, extra)
            self.family.export(self.nets, self.cfg, os.path.join(self.run_dir, "model"))
        except (OSError, RuntimeError, ValueError) as e:   # MindSpore reports a failed write as RuntimeError
            raise TrainingStopped(f"cannot write the checkpoint of iteration {self.iteration} in {self.run_dir}: "
                                  f"{_reason(e)}; {self._last_complete()}") from None
        return path

    def _last_complete(self):
        latest = latest_checkpoint(self.run_dir)
        if latest is None:
            return "there is no complete checkpoint yet"
        return f"the last complete checkpoint is {os.path.basename(latest)} (--resume continues from it)"

    def resume(self, path=None):
        path = path or latest_checkpoint(self.run_dir)
        if path is None:
            return False
        meta = load_training_state(path, self.state_cells())
        if self.d_feed is not None:
            self.d_feed.load_state(load_extra_state(path, distributed.rank()))
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
        # data parallel: a stop cannot be agreed on between the workers mid-run, so a signal ends the job at
        # once (the default action) and --resume continues from the last checkpoint of save_freq
        sigs = (signal.SIGINT, signal.SIGTERM) if not distributed.active() else ()
        old = {s: signal.signal(s, self._on_signal) for s in sigs}
        bar = tqdm(total=total, initial=start, desc=self.family.name, unit="it", disable=not progress,
                   dynamic_ncols=True)
        t0 = time.time()
        last_saved = start
        try:
            if start < total:
                for batch in _named_data_failures(batches):
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
                    # the steps compile on the first iteration, always in this order: cached (see __init__)
                    first = self.iteration == start and self.cache_parts
                    with runtime.compile_cache_scope(*self.cache_parts) if first else contextlib.nullcontext():
                        d_loss, d_terms, g_loss, g_terms = self.iteration_step(pending)
                    if self.iteration == start:
                        # MindSpore's threads exist now; its host-side waits spin on this thread
                        runtime.quiet_waiting_thread()
                    pending = []
                    self.iteration += 1
                    it = self.iteration
                    bar.update(1)
                    if it % cfg["print_freq"] == 0 or it == total:
                        terms = {k: float(t.asnumpy()) for k, t in g_terms.items()}
                        terms.update({k: float(t.asnumpy()) for k, t in d_terms.items()})
                        dl = None if d_loss is None else float(d_loss.asnumpy())
                        gl = float(g_loss.asnumpy())
                        if not (math.isfinite(gl) and (dl is None or math.isfinite(dl))):
                            raise FloatingPointError(f"loss is not finite at iteration {it} (d {dl}, g {gl})")
                        self.history.append((it, dl, gl, terms))
                        named = " ".join(f"{k}: {v:.4f}" for k, v in terms.items())
                        losses = f"loss: {gl:.6f}" if dl is None else f"d_loss: {dl:.6f} g_loss: {gl:.6f}"
                        line = f"[{it:6d}/{total}] time: {time.time() - t0:7.1f}s {losses} | {named}"
                        (bar.write if progress else self.log)(line)
                    main = distributed.is_main()
                    if main and self.sample_inputs is not None and (it % cfg["sample_freq"] == 0 or it == total):
                        self.write_samples()
                    if main and self.evaluator is not None and (it % self.eval_freq == 0 or it == total):
                        self.evaluate(bar.write if progress else self.log)
                    if it % cfg["save_freq"] == 0 or it == total:
                        self.save()
                        last_saved = it
                        if main:
                            self.plot_losses()
                    if it >= total:
                        break
                if self.iteration < total:   # the data stream ended early: it was stopped, not finished
                    raise Interrupted()
        except (Interrupted, KeyboardInterrupt):
            if distributed.active():     # the other workers may be anywhere: no collective save
                self.log(f"stopped at iteration {self.iteration}: {self._last_complete()}; rerun with --resume "
                         f"on the same number of workers to continue")
                return False
            if self.iteration > last_saved:
                self.save()
            self.plot_losses()
            bar.close()
            self.log(f"stopped at iteration {self.iteration}: checkpoint saved, rerun with --resume to continue")
            return False
        except _DataFailure as e:
            if self.iteration > last_saved and not distributed.active():
                self.save()
            raise TrainingStopped(f"{e}; stopped at iteration {self.iteration}, {self._last_complete()}") from None
        finally:
            for s, h in old.items():
                signal.signal(s, h)
            bar.close()
        return True

    # ------------------------------------------------------------------ outputs
    def evaluate(self, write):
        """FID / KID on the test split (metrics.during_training), logged and appended to RUN/eval.jsonl; a
        better mean FID than RUN/best/'s exports the model there."""
        from core.files import write_json_atomic, write_text_atomic
        from metrics.during_training import best_so_far
        from metrics.fid import MetricError
        for n in self.nets.values():
            n.set_train(False)
        try:
            scores = self.evaluator.evaluate(self.nets)
        except MetricError as e:
            write(f"[eval {self.iteration}] skipped: {e}")
            return
        finally:
            for n in self.nets.values():
                n.set_train(True)
        write(f"[eval {self.iteration}] " + "  ".join(
            f"{k}: FID {v['fid']:.3f} KID {v['kid_mean']:.5f}" for k, v in scores.items()))
        mean_fid = float(np.mean([v["fid"] for v in scores.values()]))
        path = os.path.join(self.run_dir, "eval.jsonl")
        try:
            old = open(path, encoding="utf-8").read() if os.path.isfile(path) else ""
            write_text_atomic(path, old + json.dumps({"iteration": self.iteration, "mean_fid": mean_fid,
                                                      "scores": scores}) + "\n")
            best = best_so_far(self.run_dir)
            if best is None or mean_fid < best:
                best_dir = os.path.join(self.run_dir, "best")
                self.family.export(self.nets, self.cfg, best_dir,
                                   label=f"trained {self.cfg['arch']}, best FID {mean_fid:.3f} at iteration "
                                         f"{self.iteration}")
                write_json_atomic(os.path.join(best_dir, "best.json"),
                                  {"iteration": self.iteration, "mean_fid": mean_fid, "scores": scores})
                write(f"[eval {self.iteration}] best so far (mean FID {mean_fid:.3f}) -> {best_dir}")
        except OSError as e:
            raise TrainingStopped(f"cannot write the evaluation: {_reason(e)}; {self._last_complete()}") from None

    def _eval_history(self):
        """(iteration, mean FID) of RUN/eval.jsonl, in order; [] without one."""
        path = os.path.join(self.run_dir, "eval.jsonl")
        if not os.path.isfile(path):
            return []
        rows = []
        with open(path, encoding="utf-8") as f:
            for line in f:
                try:
                    r = json.loads(line)
                    rows.append((int(r["iteration"]), float(r["mean_fid"])))
                except (ValueError, KeyError):
                    continue
        return rows

    def write_samples(self):
        from data.images import write_image_atomic
        for n in self.nets.values():
            n.set_train(False)
        grid = self.family.sample_grid(self.nets, self.sample_inputs, self.cfg)
        for n in self.nets.values():
            n.set_train(True)
        path = os.path.join(self.run_dir, "samples", f"{self.iteration:07d}.png")
        try:
            write_image_atomic(path, grid)
        except OSError as e:
            raise TrainingStopped(f"cannot write {path}: {_reason(e)}; {self._last_complete()}") from None

    def plot_losses(self):
        """A dependency-free loss-curve PNG (OpenCV drawing): d_loss and g_loss, each min-max scaled."""
        import cv2
        from data.images import write_image_atomic
        if len(self.history) < 2:
            return
        w, h, pad = 640, 360, 40
        img = np.full((h, w, 3), 255, np.uint8)
        its = np.array([r[0] for r in self.history], np.float64)
        x = pad + (its - its.min()) / max(1e-9, its.max() - its.min()) * (w - 2 * pad)
        for k, color, name in ((1, (200, 30, 30), "d_loss"), (2, (30, 30, 200), "g_loss")):
            if self.history[0][k] is None:      # no discriminator
                continue
            v = np.array([r[k] for r in self.history], np.float64)
            lo, hi = v.min(), v.max()
            y = h - pad - (v - lo) / max(1e-12, hi - lo) * (h - 2 * pad)
            cv2.polylines(img, [np.stack([x, y], 1).astype(np.int32)], False, color, 1, cv2.LINE_AA)
            cv2.putText(img, f"{name} [{lo:.3g}, {hi:.3g}]", (pad, 18 if k == 1 else 34),
                        cv2.FONT_HERSHEY_SIMPLEX, 0.45, color, 1, cv2.LINE_AA)
        evals = self._eval_history()
        if len(evals) >= 2 and its.max() > its.min():      # the mean FID of --eval_freq, on its own scale
            ei = np.array([e[0] for e in evals], np.float64)
            ev = np.array([e[1] for e in evals], np.float64)
            ex = pad + (ei - its.min()) / (its.max() - its.min()) * (w - 2 * pad)
            lo, hi = ev.min(), ev.max()
            ey = h - pad - (ev - lo) / max(1e-12, hi - lo) * (h - 2 * pad)
            cv2.polylines(img, [np.stack([ex, ey], 1).astype(np.int32)], False, (30, 150, 30), 2, cv2.LINE_AA)
            cv2.putText(img, f"mean FID [{lo:.4g}, {hi:.4g}]", (pad, 50), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                        (30, 150, 30), 1, cv2.LINE_AA)
        cv2.putText(img, f"iteration {int(its.min())}..{int(its.max())}", (w - 220, h - 12),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        try:
            write_image_atomic(os.path.join(self.run_dir, "loss_curve.png"), img)
        except OSError as e:
            raise TrainingStopped(f"cannot write the loss curve in {self.run_dir}: {_reason(e)}; "
                                  f"{self._last_complete()}") from None


class _DataFailure(Exception):
    pass


def _named_data_failures(batches):
    """The batches of a training stream; a training image that vanished or broke since the scan (the data
    pipeline raises it inside a RuntimeError of its own) becomes a _DataFailure naming the file."""
    from data.images import READ_FAILURE
    it = iter(batches)
    while True:
        try:
            batch = next(it)
        except StopIteration:
            return
        except RuntimeError as e:
            line = next((ln for ln in str(e).splitlines() if READ_FAILURE in ln), None)
            if line is None:
                raise
            raise _DataFailure(line[line.index(READ_FAILURE):].strip()) from None
        yield batch
