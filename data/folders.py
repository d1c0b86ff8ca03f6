"""Dataset layouts on disk: image folders, list files, paired images. Every scan returns the usable files
and, separately, every skipped file with its reason, for the run to name them (console and run directory).

- unpaired domains (U-GAT-IT, CycleGAN): DIR/trainA/, DIR/trainB/ (testA/, testB/ for samples), searched
  recursively; or PaddleCV-style list files DIR/trainA.txt (one path per line, relative to DIR);
- paired images (Pix2Pix): DIR/train/ of side-by-side A|B images (the original's aligned format), or
  DIR/train.txt with one `A<TAB>B` pair of paths per line.
"""
import os

from .images import IMAGE_EXTS, probe

# training images below this side are rejected (they are resized up to the training size, but a file this
# small is almost always a thumbnail or an icon that got into the folder)
MIN_TRAIN_SIDE = 16


class DataError(Exception):
    """A dataset that cannot be used; one line, reported before any work starts."""


def list_image_files(folder):
    """Image files under `folder` (recursive, sorted, hidden names skipped)."""
    files = []
    for d, dirs, names in os.walk(folder):
        dirs[:] = sorted(x for x in dirs if not x.startswith("."))
        files += [os.path.join(d, n) for n in sorted(names)
                  if n.lower().endswith(IMAGE_EXTS) and not n.startswith(".")]
    return files


def check_files(paths, min_side=MIN_TRAIN_SIDE):
    """(usable paths, [(path, reason)] skipped) by a header check of each file (data.images.probe)."""
    good, skipped = [], []
    for p in paths:
        problem = probe(p, min_side)
        if problem is None:
            good.append(p)
        else:
            skipped.append((p, problem[0]))
    return good, skipped


def scan_folder(folder, what):
    """Usable images in `folder` (recursive, sorted) and the skipped ones with reasons."""
    if not os.path.isdir(folder):
        raise DataError(f"{what} folder not found: {folder}")
    good, skipped = check_files(list_image_files(folder))
    if not good:
        raise DataError(f"{what} folder has no readable images: {folder}"
                        + (f" ({len(skipped)} unreadable)" if skipped else ""))
    return good, skipped


def read_list_file(list_path, root, what):
    """PaddleCV-style list file (`trainA.txt`: one path per line, relative to `root`)."""
    with open(list_path, encoding="utf-8") as f:
        rel = [ln.strip().split()[0] for ln in f if ln.strip()]
    paths = [p if os.path.isabs(p) else os.path.join(root, p) for p in rel]
    good, skipped = check_files(paths)
    if not good:
        raise DataError(f"{what} list {list_path} names no readable image")
    return good, skipped


def domain_files(dataset_dir, split):
    """Files of one domain split (e.g. 'trainA'): the folder, or the list file `<split>.txt` if there is no
    folder. Returns (files, skipped)."""
    folder = os.path.join(dataset_dir, split)
    list_file = os.path.join(dataset_dir, split + ".txt")
    if not os.path.isdir(folder) and os.path.isfile(list_file):
        return read_list_file(list_file, dataset_dir, split)
    return scan_folder(folder, split)


def aligned_pairs(dataset_dir, split):
    """Pix2Pix data of one split: `<split>/` of side-by-side A|B images, or `<split>.txt` with one `A<TAB>B`
    pair of paths per line (relative to dataset_dir). Returns ([(a, b or None)], skipped)."""
    folder = os.path.join(dataset_dir, split)
    list_file = os.path.join(dataset_dir, split + ".txt")
    if not os.path.isdir(folder) and os.path.isfile(list_file):
        pairs, skipped = [], []
        with open(list_file, encoding="utf-8") as f:
            for ln in f:
                parts = ln.rstrip("\n").split("\t") if "\t" in ln else ln.split()
                if not parts or not parts[0].strip():
                    continue
                if len(parts) < 2:
                    raise DataError(f"{list_file}: line '{ln.strip()}' is not 'A<TAB>B'")
                a, b = (p.strip() if os.path.isabs(p.strip()) else os.path.join(dataset_dir, p.strip())
                        for p in parts[:2])
                problem = probe(a, MIN_TRAIN_SIDE) or probe(b, MIN_TRAIN_SIDE)
                if problem is None:
                    pairs.append((a, b))
                else:
                    skipped.append((f"{a}\t{b}", problem[0]))
        if not pairs:
            raise DataError(f"{split} list {list_file} names no readable pair")
        return pairs, skipped
    files, skipped = scan_folder(folder, split)
    return [(f, None) for f in files], skipped


def domain_folders(dataset_dir):
    """RaFD-style multi-domain data: one subfolder of images per domain, under DIR/train/ (DIR/test/ for
    samples, optional) or directly under DIR. Returns (domain names (sorted), train paths, train domain
    indices, test paths, test domain indices, skipped [(path, reason)])."""
    import numpy as np
    root = os.path.join(dataset_dir, "train")
    root = root if os.path.isdir(root) else dataset_dir
    names = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)) and not d.startswith(".")
                   and not (root == dataset_dir and d == "test"))
    if len(names) < 2:
        raise DataError(f"{root} needs one subfolder of images per domain (found {len(names)})")

    def scan(base):
        paths, labels, skipped = [], [], []
        for k, name in enumerate(names):
            folder = os.path.join(base, name)
            if not os.path.isdir(folder):
                continue
            good, bad = check_files(list_image_files(folder))
            paths += good
            labels += [k] * len(good)
            skipped += bad
        return paths, np.asarray(labels, np.int64), skipped
    paths, labels, skipped = scan(root)
    empty = [n for k, n in enumerate(names) if not (labels == k).any()]
    if empty:
        raise DataError(f"domain folder{'s' if len(empty) > 1 else ''} without readable images: "
                        f"{', '.join(os.path.join(root, n) for n in empty)}")
    test_root = os.path.join(dataset_dir, "test")
    t_paths, t_labels, _ = scan(test_root) if os.path.isdir(test_root) else ([], np.zeros(0, np.int64), [])
    return names, paths, labels, t_paths, t_labels, skipped
