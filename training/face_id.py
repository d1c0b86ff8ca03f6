"""photo2cartoon's face-ID loss: 1 - cosine similarity of MobileFaceNet embeddings of the real photo and its
translation. Both images (in [-1, 1], as the generators see them) are cropped to the face region the
published code uses and resized to 112x112 (bilinear, align_corners=True) before the embedding."""
from mindspore import nn, ops

from models import load_network


def face_crop_box(h, w):
    top = int(h / 2.1 * (0.8 - 0.33))
    bottom = int(h - (h / 2.1 * 0.3))
    size = bottom - top
    left = int(w / 2 - size / 2)
    return top, bottom, left, left + size


class FaceIDDistance(nn.Cell):
    def __init__(self, weights_dir):
        super().__init__(auto_prefix=False)
        self.facenet = load_network(weights_dir, "mobilefacenet", expect_model="mobilefacenet")
        for p in self.facenet.get_parameters():
            p.requires_grad = False
            p.name = "facenet." + p.name

    def embed(self, x):
        t, b, l, r = face_crop_box(x.shape[2], x.shape[3])
        x = x[:, :, t:b, l:r]
        x = ops.interpolate(x, size=(112, 112), mode="bilinear", align_corners=True)
        return self.facenet(x)

    def distance(self, a, b):
        fa, fb = self.embed(a), self.embed(b)
        cos = (fa * fb).sum(axis=1) / ops.maximum(
            ops.sqrt((fa * fa).sum(axis=1)) * ops.sqrt((fb * fb).sum(axis=1)), 1e-8)
        return (1.0 - cos).mean()

    def construct(self, a, b):
        return self.distance(a, b)
