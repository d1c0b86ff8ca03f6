"""The contract of a GAN family: one registered object that train.py, test.py and the training engine use.

A family is a subclass of `Family` in its own file in this package, registered with `@register_family`.
It declares (see docs/adding_a_family.md for a worked example):
- its architectures and their published defaults (`archs`, `default_arch`); one config dict per run holds
  everything, including `n_critic`, the one number of discriminator steps per generator step;
- its command-line options for train.py (`options`) and test.py (`test_options`), shown under its name in
  `--help`; a flag another family owns is refused;
- its networks (`net_configs`: name -> (registry name, constructor config)), which of them the generator and
  the discriminator optimisers own, which are differentiated twice (`second_order_nets`: the kernels keep
  MindSpore's norms there);
- its losses (`losses`): Cells whose `construct` returns `(loss, {term name: scalar})`; a generator loss may
  return a third item, `{name: tensor}`, the images it hands to the discriminator step (`feeds_d` names
  them, in the order the discriminator loss takes them after the batch);
- its data layout (`data`: the training stream, sample inputs, what was skipped), its sample grid, its
  export as an inference model directory, and its inference runner for test.py (`runner`).
The engine (training/engine.py) owns the rest once: the compiled steps, the optimisers, the schedule,
logging, samples, checkpoints and exact resume.
"""
import argparse
import dataclasses
import math
import os
from typing import Callable, Optional


def parse_bool(s):
    if str(s).lower() in ("1", "true", "yes", "on"):
        return True
    if str(s).lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, not {s!r}")


@dataclasses.dataclass(frozen=True)
class Option:
    """One command-line flag of a family: --name, parsed by `type` (int, float, str, parse_bool), `nargs`
    ("+" for lists), `choices`. Its default is the arch's config value (train.py) or `default` (test.py)."""
    name: str
    type: Callable = str
    help: str = ""
    choices: Optional[tuple] = None
    nargs: Optional[str] = None
    default: object = None
    flag: bool = False          # a store_true switch (test.py options)


@dataclasses.dataclass
class TrainingData:
    """What a family's `data` returns. factory(start_iter) -> an iterator of input tuples for iterations
    start_iter.. (n_critic tuples per iteration), each tuple what the loss Cells take; samples: fixed inputs
    for the sample grids; notes: lines for the log; n_train: training samples (an epoch); skipped: every
    file left out, as (path, reason)."""
    factory: Callable
    samples: object
    notes: list
    n_train: int
    skipped: list = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Losses:
    """A family's loss Cells. generator(*batch) -> (loss, terms[, feeds]); discriminator(*batch, *fed) ->
    (loss, terms), fed being the G step's feeds (through `Family.d_feed`) or d_inputs(*batch)'s outputs, a
    forward run before each D step outside its gradient (for families whose D step regenerates its fakes).
    A family without discriminators (a classifier) gives `discriminator=None`: its one loss is the generator's.
    Each loss Cell names its terms, in order, in a `terms` tuple (the compiled step returns their values only:
    names as graph outputs would keep its graph out of the compile cache); the generator's feeds are named by
    `Family.feeds_d`.
    `generator_on_fake(*batch, fake) -> (loss, terms)`, with `Family.shares_fake`: the generator loss given the
    fake that d_inputs made; the engine then runs G's forward once per iteration for both steps, as
    pytorch/examples' DCGAN does (the fake detached for the D step, then through the updated D for the G step,
    whose gradient goes back through that same forward)."""
    generator: object
    discriminator: object
    d_inputs: object = None
    generator_on_fake: object = None


class Runner:
    """What test.py runs for a family. With `takes_photos`, `__call__(image)` gets an RGB uint8 photo (or,
    with `needs_face`, a preprocess.pipeline.Face of the aligned face) and returns {suffix: image}; the
    outputs are written as <photo name>_<suffix>.png, in the order of `suffixes`. Without photos,
    `generate()` returns {name: image}."""
    takes_photos = True
    needs_face = False
    suffixes = ()
    label = ""
    verb = "processed"        # "N of M photos <verb>"

    def __call__(self, image):
        raise NotImplementedError

    def generate(self):
        raise NotImplementedError


class Family:
    name = ""                 # the --model value
    summary = ""              # one line for --help
    archs = {}                # arch name -> published default config
    default_arch = ""
    generators = ()           # networks the generator optimiser owns
    discriminators = ()       # networks the discriminator optimiser owns (none: one optimiser, no D step)
    d_first = True            # each iteration: the D steps, then the G step (else the G step first)
    feeds_d = ()              # names of the generator loss's feeds, in the D loss's argument order
    shares_fake = False       # the G step reuses the D step's fake and its forward (Losses.generator_on_fake)
    net_keys = ()             # config keys that shape the networks: a resume or fine-tune must agree on them
    options = ()              # train.py flags (Option)
    test_options = ()         # test.py flags (Option)
    data_layout = ""          # what --dataset must hold, for the "not found" message
    output_folder = None      # test.py's default output folder under out/ (default: the family name)
    builtin_datasets = ()     # --dataset names that need no folder (e.g. "digits": scikit-learn's, offline)
    takes_photos = True       # test.py: photos in (--photo_path); else the runner's generate()

    # ---------------------------------------------------------------- configuration
    def defaults(self, arch):
        cfg = dict(self.archs[arch])
        cfg.setdefault("n_critic", 1)
        cfg.setdefault("lr_schedule", "linear")
        cfg["arch"] = arch
        return cfg

    def adapt_config(self, cfg, explicit, dataset_dir):
        """Settle what depends on the dataset (e.g. its layout's published options) for every key not in
        `explicit`, before check_config; a one-line problem, or None."""
        return None

    def check_config(self, cfg):
        """A one-line problem with the resolved config, or None."""
        return None

    def finalize_schedule(self, cfg, n_train):
        """Fill cfg["iterations"] (if the family counts epochs) and cfg["decay_start"], given the number of
        training samples. Default: decay over the second half."""
        if cfg.get("iterations") is None:
            cfg["iterations"] = max(1, math.ceil(n_train / cfg["batch_size"]))
        cfg["decay_start"] = cfg["iterations"] // 2

    def notes(self, cfg):
        """Lines for the training log about the resolved config (e.g. a loss that is off and why)."""
        return []

    def optimizer_settings(self, cfg):
        """Adam's settings per optimiser ("G", "D"): lr, beta1, beta2, weight_decay."""
        common = {k: cfg[k] for k in ("lr", "beta1", "beta2", "weight_decay")}
        return {"G": dict(common), "D": dict(common)}

    def config_from_pretrained(self, cfg, explicit, meta):
        """Adopt the network options of a converted or trained model dir (for fine-tuning); a conflicting
        explicit flag is a one-line error (returned), never silently changed."""
        return None

    # ---------------------------------------------------------------- networks
    def net_configs(self, cfg):
        raise NotImplementedError

    def second_order_nets(self, cfg):
        """Networks whose input gradient is differentiated again (a WGAN-GP critic)."""
        return ()

    def build_nets(self, cfg):
        """The named networks, their parameter names prefixed by the network's name (`G_A.model.1.weight`),
        unique across networks as the optimisers' state needs. MindSpore's own ops; the engine puts the CPU
        kernels in."""
        from models import create_model
        nets = {}
        for name, (model, kw) in self.net_configs(cfg).items():
            net = create_model(model, **kw)
            for p in net.get_parameters():
                p.name = f"{name}.{p.name}"
            nets[name] = net
        return nets

    def clamp01_params(self, nets):
        """Parameters clamped to [0, 1] right after each generator step (inside the compiled step)."""
        return []

    # ---------------------------------------------------------------- training
    def losses(self, nets, cfg):
        raise NotImplementedError

    def d_feed(self, cfg):
        """A host-side stage between the G step's feeds and the D step (e.g. an image pool, whose state() is
        checkpointed), or None."""
        return None

    def data(self, cfg, dataset_dir):
        raise NotImplementedError

    def sample_grid(self, nets, samples, cfg):
        raise NotImplementedError

    def eval_sets(self, cfg, dataset_dir):
        """What train.py --eval_freq scores (metrics.during_training.EvalSet per direction: the test sources,
        the real targets, how to translate); [] when the family or the dataset has none."""
        return []

    # ---------------------------------------------------------------- outputs
    def model_json_extra(self, cfg):
        """More top-level model.json entries for an exported model (e.g. attribute names)."""
        return {}

    def export(self, nets, cfg, directory, label=None):
        """An inference model directory (model.json + <net>.ckpt), loadable by models.load_network and
        test.py --checkpoint."""
        from core.model_dir import write_model_dir
        meta = {"format": 1, "arch": cfg["arch"], "label": label or f"trained {cfg['arch']}",
                "networks": {n: {"model": m, "config": kw} for n, (m, kw) in self.net_configs(cfg).items()},
                "source": {"trained": True, "config": {k: cfg[k] for k in ("arch",) + tuple(self.net_keys)
                                                        if k in cfg}}}
        meta.update(self.model_json_extra(cfg))
        tensors = {name: {p.name[len(name) + 1:]: p.asnumpy() for p in net.get_parameters()}
                   for name, net in nets.items()}
        write_model_dir(directory, meta, tensors, overwrite=True)

    # ---------------------------------------------------------------- inference
    def default_checkpoint(self, root):
        """Where test.py looks when no --checkpoint is given."""
        return os.path.join(root, "pretrained_models", self.name)

    def runner(self, args, checkpoint):
        """The test.py runner for parsed `args` (common and this family's test options)."""
        raise NotImplementedError

    def compile_cache_parts(self, args, checkpoint):
        """What determines every graph test.py compiles for these `args` (model configs, sizes, modes), for a
        compiled-graph cache of its own (core.runtime.compile_cache_dir); None: no cache. Only a family whose
        graph set is fixed by these parts may return them."""
        return None


def adopt_pretrained(cfg, explicit, found):
    """Take the options `found` in a pretrained model dir; an explicit flag that disagrees is an error
    (returned as a one-line string) rather than silently changed."""
    for k, v in found.items():
        if k in explicit and explicit[k] != v:
            return f"--{k} {explicit[k]} does not match the pretrained model ({k}={v})"
        cfg[k] = v
    return None
