"""The attribute classifier that scores attribute editing (STGAN's "attribute editing accuracy").

`n_layers` 4x4 stride-2 convs (dim, 2 dim, ... capped at 1024), each with affine instance norm and
LeakyReLU(0.2), then on the flattened features fc `fc_dim`, LeakyReLU(0.2), fc `n_attrs`: the STGAN
discriminator's trunk and attribute head without its adversarial head, so it reads images the way the
editing models' critics learn to. Returns one logit per attribute (N, n_attrs).
"""
from mindspore import nn
from mindspore.common.initializer import Normal

from .layers import Conv2d, InstanceNorm2d, LeakyReLU
from .registry import register_model

MAX_DIM = 1024


@register_model("attr_classifier")
class AttributeClassifier(nn.Cell):
    def __init__(self, n_attrs=13, dim=64, n_layers=5, fc_dim=1024, img_size=128):
        super().__init__()
        if img_size % 2 ** n_layers or img_size < 2 ** n_layers:
            raise ValueError(f"img_size must be a multiple of {2 ** n_layers}")
        layers, cin = [], 3
        for i in range(n_layers):
            d = min(dim * 2 ** i, MAX_DIM)
            layers += [Conv2d(cin, d, 4, stride=2, padding=1, weight_init=Normal(0.02)),
                       InstanceNorm2d(d, affine=True), LeakyReLU(0.2)]
            cin = d
        self.conv = nn.SequentialCell(layers)
        side = img_size // 2 ** n_layers
        self.fc_att = nn.SequentialCell([nn.Dense(cin * side * side, fc_dim, weight_init=Normal(0.02)),
                                         LeakyReLU(0.2), nn.Dense(fc_dim, n_attrs, weight_init=Normal(0.02))])

    def construct(self, x):
        h = self.conv(x)
        return self.fc_att(h.reshape(h.shape[0], -1))
