"""StarGAN on photos: one column per target domain (test.py --model stargan, or an exported file's through
test.py --onnx). MindSpore is imported only to open a model dir."""
import numpy as np

from families.base import Option, Runner
from families.common import open_model, to_img

from .cartoon import InferenceError


# test.py --model stargan's options (and, but --stats, test.py --onnx's for an exported StarGAN generator)
DOMAIN_OPTIONS = (
    Option("attrs", str, "the photo's attributes now, e.g. \"Black_Hair Male\" (a domain model: its domain)",
           default=""),
    Option("edit", str, "all (a strip: the input, then every target domain) or one domain", default="all"),
    Option("stats", str, "InstanceNorm statistics: instance (each image's own, as the original's test runs) "
                         "or running (PyTorch eval())", ("instance", "running"), default="instance"),
    Option("preprocess", str, "face (the face front end; default) or resize (already aligned faces; "
                              "CelebA's 178x218 images get StarGAN's crop)", ("face", "resize")),
)


def target_labels(present, names, exclusive, domains):
    """StarGAN's test-time targets for one image's labels `present` (0/1, (c,)): one row per domain. Domain
    data: each one-hot domain. Attributes: the attribute toggled, except that an exclusive one (a hair
    colour) is switched on and the rest of its group off."""
    c = len(names)
    if domains:
        return np.eye(c, dtype=np.float32)
    rows = []
    for k, name in enumerate(names):
        t = np.asarray(present, np.float32).copy()
        if name in exclusive:
            for j, other in enumerate(names):
                if other in exclusive:
                    t[j] = 0.0
            t[k] = 1.0
        else:
            t[k] = 1.0 - t[k]
        rows.append(t)
    return np.stack(rows)


class TranslateRunner(Runner):
    """photo -> (aligned face) -> a strip: the input, then one column per target domain (--edit all) or the
    one domain asked for."""
    verb = "translated"

    def __init__(self, checkpoint, args, loaded=None):
        """`loaded`: (meta, run(x, labels) -> images) instead of the model dir (an exported file's, whose
        instance-norm statistics were chosen at export)."""
        if loaded is None:
            from models.stargan import use_instance_stats
            meta, nets = open_model(checkpoint, "stargan", "StarGAN", "convert_weights.py --arch stargan")
            G = nets["G"]
            use_instance_stats(G, args.stats == "instance")
            G.set_train(False)

            def run(x, c):
                import mindspore as ms
                return G(ms.Tensor(x), ms.Tensor(c)).asnumpy()
            stats = args.stats
        else:
            (meta, run), stats = loaded, loaded[0]["stats"]
        self.run = run
        info = meta["domains"]
        self.names, self.exclusive = list(info["names"]), list(info.get("exclusive", []))
        self.domains = info["label_mode"] == "domains"
        self.size = int(info["img_size"])
        given = [t for t in (args.attrs or "").replace(",", " ").split() if t]
        unknown = [t for t in given if t not in self.names]
        if unknown:
            raise InferenceError(f"unknown {'domain' if self.domains else 'attribute'} {', '.join(unknown)}; this "
                                 f"model knows: {' '.join(self.names)}")
        if self.domains and len(given) > 1:
            raise InferenceError("--attrs: a domain model takes the photo's one domain")
        self.present = np.array([1.0 if n in given else 0.0 for n in self.names], np.float32)
        edit = args.edit or "all"
        if edit != "all" and edit not in self.names:
            raise InferenceError(f"--edit {edit}: not a domain of this model ({' '.join(self.names)} or all)")
        self.columns = list(range(len(self.names))) if edit == "all" else [self.names.index(edit)]
        self.with_input = edit == "all"
        self.suffixes = (edit,)
        self.needs_face = (args.preprocess or "face") == "face"
        self.label = f"{meta.get('label', 'stargan')}; InstanceNorm on " \
                     f"{'each image' if stats == 'instance' else 'running'} statistics"

    def __call__(self, image):
        import cv2

        from data.celeba import CELEBA_SIZE, STARGAN_CROP
        if self.needs_face:
            image = image.crop_rgb
        elif image.shape[1::-1] == CELEBA_SIZE:        # CelebA's aligned images: the crop StarGAN trained on
            x, y, side = STARGAN_CROP
            image = image[y:y + side, x:x + side]
        img = cv2.resize(image, (self.size, self.size), interpolation=cv2.INTER_AREA)
        x = (img.astype(np.float32) / 127.5 - 1.0).transpose(2, 0, 1)[None]
        targets = target_labels(self.present, self.names, self.exclusive, self.domains)[self.columns]
        y = self.run(np.repeat(x, len(targets), 0), targets)
        tiles = ([img] if self.with_input else []) + [to_img(t) for t in y]
        return {self.suffixes[0]: np.concatenate(tiles, 1)}
