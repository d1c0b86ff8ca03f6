"""Pieces every family uses the same way: named networks, the exported inference model dir, image tiles."""
import numpy as np

from models import create_model
from models.store import write_model_dir


def build_named_nets(configs):
    """configs: name -> (registry name, kwargs). Parameter names get the network name as prefix
    (`G_A.model.1.weight`), unique across networks, as the optimisers' state needs."""
    nets = {}
    for name, (model, kw) in configs.items():
        net = create_model(model, **kw)
        for p in net.get_parameters():
            p.name = f"{name}.{p.name}"
        nets[name] = net
    return nets


def export_model_dir(nets, configs, arch, directory, label, net_config, extra=None):
    """An inference model directory (model.json + <net>.ckpt), loadable by models.load_network / test.py.
    `extra`: more top-level model.json entries (e.g. an attribute model's attribute names)."""
    meta = {"format": 1, "arch": arch, "label": label,
            "networks": {n: {"model": m, "config": kw} for n, (m, kw) in configs.items()},
            "source": {"trained": True, "config": net_config}}
    meta.update(extra or {})
    tensors = {name: {p.name[len(name) + 1:]: p.asnumpy() for p in net.get_parameters()} for name, net in nets.items()}
    write_model_dir(directory, meta, tensors, overwrite=True)


def to_img(x):
    """CHW float in [-1, 1] -> HWC uint8 (grey images are repeated to RGB)."""
    img = np.clip((x.transpose(1, 2, 0) + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8)
    return np.repeat(img, 3, axis=2) if img.shape[2] == 1 else img


def grid(rows):
    """rows: list of lists of HWC uint8 tiles of equal size -> one image."""
    return np.concatenate([np.concatenate(r, 1) for r in rows], 0)


def adopt_pretrained(cfg, explicit, found):
    """Take the options `found` in a pretrained model dir; an explicit flag that disagrees is an error
    (returned as a one-line string) rather than silently changed."""
    for k, v in found.items():
        if k in explicit and explicit[k] != v:
            return f"--{k} {explicit[k]} does not match the pretrained model ({k}={v})"
        cfg[k] = v
    return None


def unpaired_data(cfg, dataset_dir, n_uniform=0):
    """(data_factory, sample inputs, notes, number of training samples) for unpaired A/B data:
    dataset_dir/{trainA,trainB,testA,testB} folders, or PaddleCV-style list files (trainA.txt). Samples come
    from testA/testB (the training images when absent)."""
    from training.data import domain_files, fixed_batch, unpaired_batches
    files_a, bad_a = domain_files(dataset_dir, "trainA")
    files_b, bad_b = domain_files(dataset_dir, "trainB")
    notes = [f"trainA: {len(files_a)} images, trainB: {len(files_b)} images"
             + (f" ({bad_a + bad_b} unreadable skipped)" if bad_a + bad_b else "")]
    sample_files = []
    for split, fallback in (("testA", files_a), ("testB", files_b)):
        try:
            files, _ = domain_files(dataset_dir, split)
        except Exception:
            files = fallback
        sample_files.append(files)
    k = min(4, len(sample_files[0]), len(sample_files[1]))
    samples = tuple(fixed_batch(f, cfg["img_size"], k) for f in sample_files)

    def factory(start_iter):
        return unpaired_batches(files_a, files_b, cfg["img_size"], cfg["batch_size"], cfg["seed"], start_iter,
                                cfg["iterations"], cfg.get("workers", 2), n_uniform=n_uniform)
    return factory, samples, notes, max(len(files_a), len(files_b))
