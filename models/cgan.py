"""Conditional GAN (Mirza & Osindero 2014) in the shape of the seed library's MNIST model, conditioned on
one-hot class labels y (n_classes), which are concatenated at every layer (tiled over the image for convs).

Generator G(z, y): fc to 8 gf_dim (BatchNorm, ReLU); fc to gf_dim x s x s (s = img_size / 4; BatchNorm,
ReLU), reshaped; a 4x4 / 2 transposed conv to gf_dim (BatchNorm, ReLU); a 4x4 / 2 transposed conv to nc
channels, tanh. Discriminator D(x, y) -> probability (N,): 3x3 / 2 conv to df_dim (LeakyReLU 0.2), 3x3 / 2
conv to df_dim (BatchNorm, LeakyReLU), fc to 16 df_dim (BatchNorm, LeakyReLU), fc to 1, sigmoid.
(The seed feeds the label as one number, y_dim 1, and forgets it before its last transposed conv; here it is
one-hot and concatenated before every layer, as the paper describes.)
"""
from mindspore import nn, ops
from mindspore.common.initializer import Normal

from .layers import Conv2d, ConvTranspose2d, LeakyReLU, torch_uniform
from .registry import register_model


def _tile(y, h, w):
    return ops.broadcast_to(y.reshape(y.shape[0], y.shape[1], 1, 1), (y.shape[0], y.shape[1], h, w))


def _fc(cin, cout):
    init = torch_uniform(cin)
    return nn.Dense(cin, cout, weight_init=init, bias_init=init)


def _bn1(c):
    return nn.BatchNorm1d(c, eps=1e-5, momentum=0.9, gamma_init=Normal(0.02, 1.0), beta_init="zeros")


def _bn2(c):
    return nn.BatchNorm2d(c, eps=1e-5, momentum=0.9, gamma_init=Normal(0.02, 1.0), beta_init="zeros")


def _side(img_size):
    if img_size % 4 or img_size < 8:
        raise ValueError(f"img_size {img_size} must be a multiple of 4, at least 8")
    return img_size // 4


@register_model("cgan_generator")
class CGANGenerator(nn.Cell):
    def __init__(self, nz=100, n_classes=10, gf_dim=128, img_size=28, nc=1):
        super().__init__()
        self.s, self.gf_dim = _side(img_size), gf_dim
        s = self.s
        self.fc1, self.bn1 = _fc(nz + n_classes, gf_dim * 8), _bn1(gf_dim * 8)
        self.fc2, self.bn2 = _fc(gf_dim * 8 + n_classes, gf_dim * s * s), _bn1(gf_dim * s * s)
        self.deconv1 = ConvTranspose2d(gf_dim + n_classes, gf_dim, 4, 2, 1)
        self.bn3 = _bn2(gf_dim)
        self.deconv2 = ConvTranspose2d(gf_dim + n_classes, nc, 4, 2, 1)
        self.relu = nn.ReLU()

    def construct(self, z, y):
        h = self.relu(self.bn1(self.fc1(ops.concat((z, y), 1))))
        h = self.relu(self.bn2(self.fc2(ops.concat((h, y), 1))))
        h = h.reshape(h.shape[0], self.gf_dim, self.s, self.s)
        h = self.relu(self.bn3(self.deconv1(ops.concat((h, _tile(y, self.s, self.s)), 1))))
        return ops.tanh(self.deconv2(ops.concat((h, _tile(y, 2 * self.s, 2 * self.s)), 1)))


@register_model("cgan_discriminator")
class CGANDiscriminator(nn.Cell):
    def __init__(self, n_classes=10, df_dim=64, img_size=28, nc=1):
        super().__init__()
        s = _side(img_size)
        self.conv1 = Conv2d(nc + n_classes, df_dim, 3, 2, 1, weight_init=Normal(0.02))
        self.conv2 = Conv2d(df_dim + n_classes, df_dim, 3, 2, 1, weight_init=Normal(0.02))
        self.bn2 = _bn2(df_dim)
        self.fc3, self.bn3 = _fc(df_dim * s * s + n_classes, df_dim * 16), _bn1(df_dim * 16)
        self.fc4 = _fc(df_dim * 16 + n_classes, 1)
        self.act = LeakyReLU(0.2)

    def construct(self, x, y):
        h = self.act(self.conv1(ops.concat((x, _tile(y, x.shape[2], x.shape[3])), 1)))
        h = self.act(self.bn2(self.conv2(ops.concat((h, _tile(y, h.shape[2], h.shape[3])), 1))))
        h = self.act(self.bn3(self.fc3(ops.concat((h.reshape(h.shape[0], -1), y), 1))))
        return ops.sigmoid(self.fc4(ops.concat((h, y), 1))).reshape(-1)
