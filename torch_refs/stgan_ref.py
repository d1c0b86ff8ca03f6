"""PyTorch reference STGAN / AttGAN (written for the tests and benchmarks from the paper's description, with
the parameter names of models/stgan.py)."""
import torch
from torch import nn

MAX_DIM = 1024


def _cat_attr(x, a):
    return torch.cat([x, a.view(a.size(0), a.size(1), 1, 1).expand(-1, -1, x.size(2), x.size(3))], 1)


class ConvBlockRef(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 4, 2, 1, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.act = nn.LeakyReLU(0.2)

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


class DeconvBlockRef(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.deconv = nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(self.bn(self.deconv(x)))


class STURef(nn.Module):
    def __init__(self, feat_dim, state_dim):
        super().__init__()
        self.upsample = nn.ConvTranspose2d(state_dim, feat_dim, 4, 2, 1)
        self.reset_gate = nn.Conv2d(feat_dim * 2, feat_dim, 3, 1, 1)
        self.update_gate = nn.Conv2d(feat_dim * 2, feat_dim, 3, 1, 1)
        self.hidden = nn.Conv2d(feat_dim * 2, feat_dim, 3, 1, 1)

    def forward(self, f, state):
        s_hat = self.upsample(state)
        both = torch.cat([f, s_hat], 1)
        r, z = torch.sigmoid(self.reset_gate(both)), torch.sigmoid(self.update_gate(both))
        s = r * s_hat
        f_hat = torch.tanh(self.hidden(torch.cat([f, s], 1)))
        return (1 - z) * s_hat + z * f_hat, s


class STGANGeneratorRef(nn.Module):
    def __init__(self, n_attrs=13, dim=64, enc_layers=5, dec_layers=5, shortcut_layers=4, inject_layers=4,
                 use_stu=True, img_size=128):
        super().__init__()
        L = enc_layers
        self.L, self.sc, self.inj, self.use_stu = L, shortcut_layers, inject_layers, use_stu
        dims = [min(dim * 2 ** i, MAX_DIM) for i in range(L)]
        self.enc = nn.ModuleList([ConvBlockRef(3 if i == 0 else dims[i - 1], dims[i]) for i in range(L)])
        n_stu = shortcut_layers if use_stu else 0
        # GRU step k transfers skip L - 2 - k; attributes join its state at k == 0 and while inject_layers > k - 1
        self.with_attr = [k == 0 or inject_layers > k - 1 for k in range(n_stu)]
        self.stu = nn.ModuleList([STURef(dims[L - 2 - k], dims[L - 1 - k] + (n_attrs if self.with_attr[k] else 0))
                                  for k in range(n_stu)])
        dec, cin = [], dims[-1] + n_attrs
        for i in range(dec_layers - 1):
            d = min(dim * 2 ** (dec_layers - 1 - i), MAX_DIM)
            dec.append(DeconvBlockRef(cin, d))
            cin = d + (dims[L - 2 - i] if shortcut_layers > i else 0) + (n_attrs if inject_layers > i else 0)
        self.dec = nn.ModuleList(dec)
        self.out = nn.ConvTranspose2d(cin, 3, 4, 2, 1)

    def forward(self, x, a):
        feats = []
        for layer in self.enc:
            x = layer(x)
            feats.append(x)
        skips = list(feats)
        if self.use_stu and self.sc > 0:
            state = feats[-1]
            for k in range(self.sc):
                if self.with_attr[k]:
                    state = _cat_attr(state, a)
                skips[self.L - 2 - k], state = self.stu[k](feats[self.L - 2 - k], state)
        h = _cat_attr(feats[-1], a)
        for i, layer in enumerate(self.dec):
            h = layer(h)
            if self.sc > i:
                h = torch.cat([h, skips[self.L - 2 - i]], 1)
            if self.inj > i:
                h = _cat_attr(h, a)
        return torch.tanh(self.out(h))


class STGANDiscriminatorRef(nn.Module):
    def __init__(self, n_attrs=13, dim=64, n_layers=5, fc_dim=1024, img_size=128):
        super().__init__()
        layers, cin = [], 3
        for i in range(n_layers):
            d = min(dim * 2 ** i, MAX_DIM)
            layers += [nn.Conv2d(cin, d, 4, 2, 1), nn.InstanceNorm2d(d, affine=True), nn.LeakyReLU(0.2)]
            cin = d
        self.conv = nn.Sequential(*layers)
        flat = cin * (img_size // 2 ** n_layers) ** 2
        self.fc_adv = nn.Sequential(nn.Linear(flat, fc_dim), nn.LeakyReLU(0.2), nn.Linear(fc_dim, 1))
        self.fc_att = nn.Sequential(nn.Linear(flat, fc_dim), nn.LeakyReLU(0.2), nn.Linear(fc_dim, n_attrs))

    def forward(self, x):
        h = self.conv(x).flatten(1)
        return self.fc_adv(h), self.fc_att(h)


class AttributeClassifierRef(STGANDiscriminatorRef):
    """The critic's trunk and attribute head alone (models/attr_classifier.py): one logit per attribute."""

    def __init__(self, n_attrs=13, dim=64, n_layers=5, fc_dim=1024, img_size=128):
        super().__init__(n_attrs, dim, n_layers, fc_dim, img_size)
        del self.fc_adv

    def forward(self, x):
        return self.fc_att(self.conv(x).flatten(1))
