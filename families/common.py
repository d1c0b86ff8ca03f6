"""Pieces several families share: unpaired A/B data, image tiles and grids for the sample sheets."""
import cv2
import numpy as np

from . import TrainingData


def to_img(x):
    """CHW float in [-1, 1] -> HWC uint8 (grey images are repeated to RGB)."""
    img = np.clip((x.transpose(1, 2, 0) + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8)
    return np.repeat(img, 3, axis=2) if img.shape[2] == 1 else img


def grid(rows):
    """rows: list of lists of HWC uint8 tiles of equal size -> one image."""
    return np.concatenate([np.concatenate(r, 1) for r in rows], 0)


def open_model(checkpoint, arch, title, convert_hint, nets=("G",)):
    """A model dir's model.json and networks for a test.py runner: (meta, {name: Cell}). A missing dir, a model
    of another arch or a network that does not load is a one-line InferenceError. `nets`: names to load, each
    expected to be `<arch>_generator` (G), `_discriminator` (D) or `_encoder` (E); absent optional ones are
    skipped when given as (name, False)."""
    import os

    from inference.cartoon import InferenceError
    from models import NetworkLoadError, load_network, read_model_json
    if not os.path.isfile(os.path.join(checkpoint, "model.json")):
        raise InferenceError(f"no {title} model at {checkpoint}: train one with python train.py --model {arch} "
                             f"(it writes RUN/model), or convert one with {convert_hint}")
    kinds = {"G": "generator", "D": "discriminator", "E": "encoder"}
    try:
        meta = read_model_json(checkpoint)
        if meta.get("arch") != arch:
            raise InferenceError(f"{checkpoint} is a {meta.get('arch')} model, not a {title} one")
        loaded = {}
        for spec in nets:
            name, required = spec if isinstance(spec, tuple) else (spec, True)
            if required or name in meta.get("networks", {}):
                loaded[name] = load_network(checkpoint, name, expect_model=f"{arch}_{kinds[name]}")
    except NetworkLoadError as e:
        raise InferenceError(str(e)) from None
    return meta, loaded


def heatmap(cam, size):
    """A CAM heatmap (1, h, w) as a JET-coloured size x size RGB tile, min-max scaled."""
    cam = cam[0]
    cam = cam - cam.min()
    cam = cam / max(float(cam.max()), 1e-12)
    cam = cv2.resize((cam * 255).astype(np.uint8), (size, size))
    return cv2.applyColorMap(cam, cv2.COLORMAP_JET)[:, :, ::-1]


def unpaired_data(cfg, dataset_dir, n_uniform=0):
    """Unpaired A/B data: dataset_dir/{trainA,trainB,testA,testB} folders, or PaddleCV-style list files
    (trainA.txt). Samples come from testA/testB (the training images when absent). `n_uniform` U(0, 1)
    numbers per sample ride along (e.g. WGAN-GP interpolation weights)."""
    from data.folders import domain_files
    from data.pipelines import unpaired_batches
    files_a, bad_a = domain_files(dataset_dir, "trainA")
    files_b, bad_b = domain_files(dataset_dir, "trainB")
    skipped = bad_a + bad_b
    notes = [f"trainA: {len(files_a)} images, trainB: {len(files_b)} images"
             + (f" ({len(skipped)} files skipped)" if skipped else "")]
    samples = _unpaired_samples(cfg, dataset_dir, files_a, files_b)

    def factory(start_iter):
        return unpaired_batches(files_a, files_b, cfg["img_size"], cfg["batch_size"], cfg["seed"], start_iter,
                                cfg["iterations"], cfg.get("workers", 2), n_uniform=n_uniform)
    return TrainingData(factory, samples, notes, max(len(files_a), len(files_b)), skipped)


def _unpaired_samples(cfg, dataset_dir, files_a, files_b):
    """The sample sheets' inputs: up to 4 images of testA and of testB (the training files where a test folder
    is absent)."""
    from data.folders import DataError, domain_files
    from data.pipelines import fixed_batch
    sample_files = []
    for split, fallback in (("testA", files_a), ("testB", files_b)):
        try:
            files, _ = domain_files(dataset_dir, split)
        except DataError:
            files = fallback
        sample_files.append(files)
    k = min(4, len(sample_files[0]), len(sample_files[1]))
    return tuple(fixed_batch(f, cfg["img_size"], k) for f in sample_files)


def same_name_pairs_data(cfg, dataset_dir):
    """trainA/ and trainB/ whose images pair up by file name (extension aside): each A with its B, given the
    same flip and crop (e.g. photos and a teacher's output of each, for --paired_weight). Samples as in
    unpaired_data. A name in one folder without a partner in the other is a DataError naming it."""
    import os

    from data.folders import DataError, domain_files
    from data.pipelines import aligned_batches
    by_name, scanned, skipped = [], [], []
    for split in ("trainA", "trainB"):
        files, bad = domain_files(dataset_dir, split)
        scanned.append(files)
        skipped += bad
        names = {}
        for f in files:
            key = os.path.splitext(os.path.basename(f))[0]
            if key in names:
                raise DataError(f"{split} holds two images named {key} ({names[key]}, {f}): paired training "
                                f"needs one image per name")
            names[key] = f
        by_name.append(names)
    missing = sorted(set(by_name[0]) ^ set(by_name[1]))
    if missing:
        side = "trainB" if missing[0] in by_name[0] else "trainA"
        raise DataError(f"--paired_weight pairs trainA and trainB by file name, and {side} has no image named "
                        f"{missing[0]}" + (f" ({len(missing) - 1} more unpaired names)" if len(missing) > 1 else ""))
    pairs = [(by_name[0][k], by_name[1][k]) for k in sorted(by_name[0])]

    def factory(start_iter):
        return aligned_batches(pairs, cfg["img_size"], cfg["batch_size"], cfg["seed"], start_iter,
                               cfg["iterations"], cfg.get("workers", 2))
    notes = [f"{len(pairs)} trainA / trainB pairs by file name"
             + (f" ({len(skipped)} files skipped)" if skipped else "")]
    return TrainingData(factory, _unpaired_samples(cfg, dataset_dir, *scanned), notes, len(pairs), skipped)


def unpaired_eval_sets(cfg, dataset_dir, a2b, b2a):
    """testA -> B scored against testB, and testB -> A against testA (metrics.during_training); [] without
    both test folders. a2b / b2a: (nets, x) -> translated x."""
    from data.folders import DataError, domain_files
    from data.pipelines import fixed_batch
    from metrics.during_training import EvalSet
    try:
        files_a, _ = domain_files(dataset_dir, "testA")
        files_b, _ = domain_files(dataset_dir, "testB")
    except DataError:
        return []
    return [EvalSet("A2B", fixed_batch(files_a, cfg["img_size"], len(files_a)), files_b, a2b),
            EvalSet("B2A", fixed_batch(files_b, cfg["img_size"], len(files_b)), files_a, b2a)]


def celeba_split(dataset_dir, selected):
    """CelebA's attribute list for `selected` attributes: (all paths, all attrs, training paths, training
    attrs, test indices (the training ones without a test partition), skipped files, a log line)."""
    from data.celeba import read_attribute_list
    paths, attrs, skipped, split = read_attribute_list(dataset_dir, selected)
    train = split["train"] or list(range(len(paths)))
    test = split["test"] or train
    note = (f"{len(train)} training images, attributes: {' '.join(selected)}"
            + (f" ({len(skipped)} listed images missing, skipped)" if skipped else ""))
    return paths, attrs, [paths[i] for i in train], attrs[train], test, skipped, note


def wgan_gp_config_problem(cfg, what):
    """The checks every WGAN-GP family needs: at least one critic step, and GRAPH mode (MindSpore 2.10's
    PyNative second-order gradient gives zero for a critic's dense heads after a convolution and an
    activation: tests/test_losses.py, test_gradient_penalty_on_the_stgan_critic_...). One line, or None."""
    if cfg["n_critic"] < 1:
        return "--n_critic must be at least 1"
    if cfg.get("mode") == "pynative":
        return (f"--mode pynative cannot train {what}: MindSpore 2.10's PyNative second-order gradients drop the "
                f"gradient penalty's terms for the critic's dense layers; use --mode graph (the default)")
    return None
