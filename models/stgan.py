"""STGAN and AttGAN: facial attribute editing (Liu et al. 2019; He et al. 2019).

Generator: an encoder of `enc_layers` 4x4 stride-2 convs (dim, 2 dim, ... capped at 1024) with BatchNorm and
LeakyReLU(0.2); a decoder of `dec_layers` 4x4 stride-2 transposed convs (BatchNorm, ReLU; the last one to
3 channels with tanh). The attribute vector is tiled and concatenated to the bottleneck and, for the first
`inject_layers` decoder layers, to their outputs. The first `shortcut_layers` decoder layers also take the
encoder feature of the same size: through a Selective Transfer Unit (STGAN, `use_stu=True`) or as is
(AttGAN). STU, a convolutional GRU run from the deepest skip upwards:
    s_hat = deconv4x4/2([s_prev, attr])     (the state of the deeper layer, upsampled)
    r = sigmoid(conv3x3([f, s_hat]))        z = sigmoid(conv3x3([f, s_hat]))
    s = r * s_hat                           f_hat = tanh(conv3x3([f, s]))
    f_out = (1 - z) * s_hat + z * f_hat     (the transferred skip feature; s is passed to the next layer)
The state starts from the bottleneck feature. STGAN feeds the attribute *difference* (target - source),
AttGAN the target attributes; both are the same network here.

Discriminator: `n_layers` 4x4 stride-2 convs (dim .. 1024) with affine instance norm and LeakyReLU(0.2), then
two heads on the flattened features: adversarial (fc 1024, LeakyReLU, fc 1) and attribute classification
(fc 1024, LeakyReLU, fc n_attrs).
Sizes are constructor arguments: the published models use img_size 128 (5 layers) and 384 (6 layers).
"""
from mindspore import nn, ops
from mindspore.common.initializer import Normal

from .layers import Conv2d, ConvTranspose2d, InstanceNorm2d, LeakyReLU
from .registry import register_model

MAX_DIM = 1024


def _conv(cin, cout, k, stride, padding, bias=True):
    return Conv2d(cin, cout, k, stride=stride, padding=padding, bias=bias, weight_init=Normal(0.02))


def _bn(c):
    return nn.BatchNorm2d(c, eps=1e-5, momentum=0.9, gamma_init=Normal(0.02, 1.0), beta_init="zeros")


def _tile(attr, h, w):
    return ops.broadcast_to(attr.reshape(attr.shape[0], attr.shape[1], 1, 1), (attr.shape[0], attr.shape[1], h, w))


def _cat_attr(x, attr):
    return ops.concat((x, _tile(attr, x.shape[2], x.shape[3])), 1)


class ConvBlock(nn.Cell):
    """conv 4x4 / 2, BatchNorm, LeakyReLU(0.2)."""

    def __init__(self, cin, cout):
        super().__init__()
        self.conv = _conv(cin, cout, 4, 2, 1, bias=False)
        self.bn = _bn(cout)
        self.act = LeakyReLU(0.2)

    def construct(self, x):
        return self.act(self.bn(self.conv(x)))


class DeconvBlock(nn.Cell):
    """transposed conv 4x4 / 2, BatchNorm, ReLU."""

    def __init__(self, cin, cout):
        super().__init__()
        self.deconv = ConvTranspose2d(cin, cout, 4, 2, 1, bias=False)
        self.bn = _bn(cout)
        self.act = nn.ReLU()

    def construct(self, x):
        return self.act(self.bn(self.deconv(x)))


class STU(nn.Cell):
    """Selective Transfer Unit for one skip connection (see the module docstring)."""

    def __init__(self, feat_dim, state_dim):
        super().__init__()
        self.upsample = ConvTranspose2d(state_dim, feat_dim, 4, 2, 1, bias=True)
        self.reset_gate = _conv(feat_dim * 2, feat_dim, 3, 1, 1)
        self.update_gate = _conv(feat_dim * 2, feat_dim, 3, 1, 1)
        self.hidden = _conv(feat_dim * 2, feat_dim, 3, 1, 1)

    def construct(self, feat, state):
        s_hat = self.upsample(state)
        both = ops.concat((feat, s_hat), 1)
        r = ops.sigmoid(self.reset_gate(both))
        z = ops.sigmoid(self.update_gate(both))
        s = r * s_hat
        f_hat = ops.tanh(self.hidden(ops.concat((feat, s), 1)))
        return (1.0 - z) * s_hat + z * f_hat, s


@register_model("stgan_generator")
class STGANGenerator(nn.Cell):
    def __init__(self, n_attrs=13, dim=64, enc_layers=5, dec_layers=5, shortcut_layers=4, inject_layers=4,
                 use_stu=True, img_size=128):
        super().__init__()
        if dec_layers != enc_layers:
            raise ValueError("dec_layers must equal enc_layers (each decoder layer undoes one encoder layer)")
        if not 0 <= shortcut_layers < dec_layers or not 0 <= inject_layers < dec_layers:
            raise ValueError("shortcut_layers and inject_layers must be in [0, dec_layers)")
        if img_size % 2 ** enc_layers:
            raise ValueError(f"img_size must be a multiple of {2 ** enc_layers}")
        self.n_attrs, self.use_stu = n_attrs, use_stu
        self.shortcut_layers, self.inject_layers = shortcut_layers, inject_layers
        enc_dims = [min(dim * 2 ** i, MAX_DIM) for i in range(enc_layers)]
        self.enc = nn.CellList([ConvBlock(3 if i == 0 else enc_dims[i - 1], enc_dims[i]) for i in range(enc_layers)])
        # STUs, shallowest first: stu[j] transfers encoder feature j (j < shortcut_layers); the state of the
        # deepest one comes from the bottleneck (+ attributes), the others from the STU below (+ attributes
        # while inject_layers reaches that decoder layer)
        # GRU step k (k = 0: the deepest skip) transfers encoder feature enc_layers - 2 - k; its state gets the
        # attributes at k = 0 and, after that, while inject_layers > k - 1 (as the decoder injects them)
        n_stu = shortcut_layers if use_stu else 0
        self._stu_attr = tuple(k == 0 or inject_layers > k - 1 for k in range(n_stu))
        self.stu = nn.CellList([STU(enc_dims[enc_layers - 2 - k], enc_dims[enc_layers - 1 - k]
                                    + (n_attrs if self._stu_attr[k] else 0)) for k in range(n_stu)])
        dec, cin = [], enc_dims[-1] + n_attrs
        for i in range(dec_layers - 1):
            d = min(dim * 2 ** (dec_layers - 1 - i), MAX_DIM)
            dec.append(DeconvBlock(cin, d))
            cin = d
            if shortcut_layers > i:
                cin += enc_dims[enc_layers - 2 - i]
            if inject_layers > i:
                cin += n_attrs
        self.dec = nn.CellList(dec)
        self.out = ConvTranspose2d(cin, 3, 4, 2, 1, bias=True)
        self.enc_layers = enc_layers

    def encode(self, x):
        feats = []
        for layer in self.enc:
            x = layer(x)
            feats.append(x)
        return feats

    def construct(self, x, attr):
        feats = self.encode(x)
        skips = feats
        if self.use_stu and self.shortcut_layers > 0:
            skips = list(feats)
            state = feats[self.enc_layers - 1]
            for k in range(self.shortcut_layers):
                if self._stu_attr[k]:
                    state = _cat_attr(state, attr)
                j = self.enc_layers - 2 - k
                skips[j], state = self.stu[k](feats[j], state)
        h = _cat_attr(feats[self.enc_layers - 1], attr)
        for i in range(len(self.dec)):
            h = self.dec[i](h)
            if self.shortcut_layers > i:
                h = ops.concat((h, skips[self.enc_layers - 2 - i]), 1)
            if self.inject_layers > i:
                h = _cat_attr(h, attr)
        return ops.tanh(self.out(h))


@register_model("stgan_discriminator")
class STGANDiscriminator(nn.Cell):
    """Returns (adversarial logit (N, 1), attribute logits (N, n_attrs))."""

    def __init__(self, n_attrs=13, dim=64, n_layers=5, fc_dim=1024, img_size=128):
        super().__init__()
        layers, cin = [], 3
        for i in range(n_layers):
            d = min(dim * 2 ** i, MAX_DIM)
            layers += [_conv(cin, d, 4, 2, 1), InstanceNorm2d(d, affine=True), LeakyReLU(0.2)]
            cin = d
        self.conv = nn.SequentialCell(layers)
        side = img_size // 2 ** n_layers
        if side < 1 or img_size % 2 ** n_layers:
            raise ValueError(f"img_size must be a multiple of {2 ** n_layers}")
        flat = cin * side * side
        self.fc_adv = nn.SequentialCell([nn.Dense(flat, fc_dim, weight_init=Normal(0.02)), LeakyReLU(0.2),
                                         nn.Dense(fc_dim, 1, weight_init=Normal(0.02))])
        self.fc_att = nn.SequentialCell([nn.Dense(flat, fc_dim, weight_init=Normal(0.02)), LeakyReLU(0.2),
                                         nn.Dense(fc_dim, n_attrs, weight_init=Normal(0.02))])

    def construct(self, x):
        h = self.conv(x)
        h = h.reshape(h.shape[0], -1)
        return self.fc_adv(h), self.fc_att(h)
