"""FID and KID as pytorch-fid (and the KID paper) compute them, on features of models/inception.py.

    feats = FeatureExtractor("pretrained_models/inception", dims=2048)
    stats = feats.stats_of(list_fid_images("fakes/"), keep_features=True)   # streamed, batch by batch
    fid = frechet_distance(real.mu, real.sigma, stats.mu, stats.sigma)
    kid_mean, kid_std = kernel_inception_distance(real.features, stats.features, subsets=100, subset_size=1000)

Images are read as pytorch-fid reads them: PIL, converted to RGB, scaled to [0, 1], no resize before the
network (which resizes to 299 itself). pytorch-fid lists a folder's files with the extensions below, not
recursively, sorted. Statistics accumulate as float64 sums (mean, and the covariance with N - 1, as np.cov),
so a folder of any size streams through in batches; KID keeps the features (float32), which it needs.
"""
import dataclasses
import os

import numpy as np

FID_EXTENSIONS = ("bmp", "jpg", "jpeg", "pgm", "png", "ppm", "tif", "tiff", "webp")
BLOCK_BY_DIMS = {64: 0, 192: 1, 768: 2, 2048: 3}


class MetricError(Exception):
    """A metric that cannot be computed; one line."""


def list_fid_images(folder):
    """The files pytorch-fid would read from `folder`: those with its extensions, not recursive, sorted."""
    if not os.path.isdir(folder):
        raise MetricError(f"not a folder: {folder}")
    names = [f for f in os.listdir(folder) if f.rsplit(".", 1)[-1] in FID_EXTENSIONS
             and os.path.isfile(os.path.join(folder, f))]
    files = sorted(os.path.join(folder, f) for f in names)
    if not files:
        raise MetricError(f"{folder} holds no images ({', '.join(FID_EXTENSIONS)}; subfolders are not searched)")
    return files


def read_fid_image(path):
    """(3, H, W) float32 in [0, 1], as pytorch-fid's ImagePathDataset and ToTensor give it."""
    from PIL import Image
    try:
        with Image.open(path) as im:
            a = np.asarray(im.convert("RGB"), np.float32)
    except (OSError, ValueError) as e:
        raise MetricError(f"cannot read {path}: {e}") from None
    return np.ascontiguousarray(a.transpose(2, 0, 1) / 255.0)


@dataclasses.dataclass
class Stats:
    mu: np.ndarray
    sigma: np.ndarray
    n: int
    features: np.ndarray = None


class Accumulator:
    """Features in, batch by batch; Stats out (float64 sums; the features themselves only with keep)."""

    def __init__(self, dims, keep):
        self.n, self.s1, self.s2 = 0, np.zeros(dims), np.zeros((dims, dims))
        self.kept = [] if keep else None

    def add(self, f):
        f64 = f.astype(np.float64)
        self.n += len(f)
        self.s1 += f64.sum(0)
        self.s2 += f64.T @ f64
        if self.kept is not None:
            self.kept.append(f.astype(np.float32))

    def stats(self):
        mu = self.s1 / self.n
        sigma = (self.s2 - self.n * np.outer(mu, mu)) / max(self.n - 1, 1)
        feats = np.concatenate(self.kept) if self.kept else None
        return Stats(mu, sigma, self.n, feats)


class FeatureExtractor:
    """pytorch-fid's InceptionV3([block of dims]) on MindSpore: features (N, dims) of images in [0, 1]."""

    def __init__(self, inception_dir, dims=2048):
        from models import NetworkLoadError, load_network
        if dims not in BLOCK_BY_DIMS:
            raise MetricError(f"--dims {dims}: choose from {', '.join(map(str, BLOCK_BY_DIMS))}")
        if not os.path.isfile(os.path.join(inception_dir, "model.json")):
            raise MetricError(f"no Inception weights at {inception_dir}: convert pytorch-fid's "
                              f"pt_inception-2015-12-05-6726825d.pth with python convert_weights.py --src FILE "
                              f"--dst {inception_dir}")
        try:
            self.net = load_network(inception_dir, "inception", expect_model="fid_inception",
                                    output_blocks=(BLOCK_BY_DIMS[dims],))
        except NetworkLoadError as e:
            raise MetricError(str(e)) from None
        self.dims = dims

    def features(self, batch):
        import mindspore as ms
        out = self.net(ms.Tensor(batch))[0].asnumpy()
        if out.shape[2:] != (1, 1):          # the smaller blocks: averaged over space, as pytorch-fid does
            out = out.mean(axis=(2, 3), keepdims=True)
        return out.reshape(out.shape[0], -1)

    def stats_of(self, files, batch_size=50, keep_features=False, progress=None):
        """Stats of `files` (paths, or (3, H, W) float32 arrays in [0, 1]), read and run in batches (images of
        one size per batch; sizes may vary)."""
        acc = Accumulator(self.dims, keep_features)
        pending = []
        for path in files:
            img = path if isinstance(path, np.ndarray) else read_fid_image(path)
            if pending and (img.shape != pending[0].shape or len(pending) == batch_size):
                acc.add(self.features(np.stack(pending)))
                pending = []
            pending.append(img)
            if progress is not None:
                progress.update(1)
        if pending:
            acc.add(self.features(np.stack(pending)))
        return acc.stats()


def frechet_distance(mu1, sigma1, mu2, sigma2, eps=1e-6):
    """||mu1 - mu2||^2 + Tr(sigma1 + sigma2 - 2 sqrt(sigma1 sigma2)), with pytorch-fid's safeguards: eps on
    the diagonals when the product's square root is not finite; an imaginary part above 1e-3 is an error."""
    from scipy import linalg
    mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
    sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise MetricError(f"the two sets' statistics differ in size ({mu1.shape[0]} vs {mu2.shape[0]} dims)")
    diff = mu1 - mu2
    covmean, _ = linalg.sqrtm(sigma1.dot(sigma2), disp=False)
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise MetricError(f"the covariance product has an imaginary component {np.max(np.abs(covmean.imag)):.3g}")
        covmean = covmean.real
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def kernel_inception_distance(real, fake, subsets=100, subset_size=1000, seed=0):
    """KID: the unbiased MMD^2 estimate with the cubic polynomial kernel k(x, y) = (x.y / d + 1)^3, averaged
    over `subsets` random subsets of min(subset_size, n_real, n_fake) features of each set (drawn without
    replacement, from `seed`). Returns (mean, std)."""
    n = min(subset_size, len(real), len(fake))
    if n < 2:
        raise MetricError("KID needs at least 2 images in each set")
    d = real.shape[1]
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(subsets):
        x = real[rng.choice(len(real), n, replace=False)].astype(np.float64)
        y = fake[rng.choice(len(fake), n, replace=False)].astype(np.float64)
        kxx = (x @ x.T / d + 1) ** 3
        kyy = (y @ y.T / d + 1) ** 3
        kxy = (x @ y.T / d + 1) ** 3
        mmd = ((kxx.sum() - np.trace(kxx)) + (kyy.sum() - np.trace(kyy))) / (n * (n - 1)) - 2 * kxy.mean()
        values.append(mmd)
    return float(np.mean(values)), float(np.std(values))


def load_stats(path):
    """pytorch-fid's .npz statistics (mu, sigma)."""
    try:
        with np.load(path) as f:
            return Stats(f["mu"][:], f["sigma"][:], int(f["n"]) if "n" in f else 0)
    except (OSError, ValueError, KeyError) as e:
        raise MetricError(f"{path} is not an FID statistics file (an .npz with mu and sigma): {e}") from None
