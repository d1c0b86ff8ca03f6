"""PyTorch reference SPADE networks (written for the tests and benchmarks from the paper and NVlabs/SPADE's
documented architecture, in its checkpoints' key layout), returning flat tuples where the toolkit's Cells do:
the multiscale discriminator's every feature of every scale, the encoder's (mu, logvar)."""
import re

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import spectral_norm

NUM_UP = {"normal": 5, "more": 6, "most": 7}


class SPADERef(nn.Module):
    def __init__(self, norm_nc, label_nc, kind="syncbatch", ks=3):
        super().__init__()
        self.param_free_norm = nn.InstanceNorm2d(norm_nc, affine=False) if kind == "instance" \
            else nn.BatchNorm2d(norm_nc, affine=False)
        self.mlp_shared = nn.Sequential(nn.Conv2d(label_nc, 128, ks, padding=ks // 2), nn.ReLU())
        self.mlp_gamma = nn.Conv2d(128, norm_nc, ks, padding=ks // 2)
        self.mlp_beta = nn.Conv2d(128, norm_nc, ks, padding=ks // 2)

    def forward(self, x, seg):
        seg = F.interpolate(seg, size=x.shape[2:], mode="nearest")
        h = self.mlp_shared(seg)
        return self.param_free_norm(x) * (1 + self.mlp_gamma(h)) + self.mlp_beta(h)


class SPADEResnetBlockRef(nn.Module):
    def __init__(self, fin, fout, semantic_nc, norm_G):
        super().__init__()
        m = re.fullmatch(r"(spectral)?spade(\D+)(\d)x\d", norm_G)
        sn = spectral_norm if m.group(1) else (lambda c: c)
        kind, ks = m.group(2), int(m.group(3))
        self.learned_shortcut = fin != fout
        mid = min(fin, fout)
        self.conv_0 = sn(nn.Conv2d(fin, mid, 3, padding=1))
        self.conv_1 = sn(nn.Conv2d(mid, fout, 3, padding=1))
        if self.learned_shortcut:
            self.conv_s = sn(nn.Conv2d(fin, fout, 1, bias=False))
        self.norm_0 = SPADERef(fin, semantic_nc, kind, ks)
        self.norm_1 = SPADERef(mid, semantic_nc, kind, ks)
        if self.learned_shortcut:
            self.norm_s = SPADERef(fin, semantic_nc, kind, ks)

    def forward(self, x, seg):
        s = self.conv_s(self.norm_s(x, seg)) if self.learned_shortcut else x
        d = self.conv_0(F.leaky_relu(self.norm_0(x, seg), 0.2))
        d = self.conv_1(F.leaky_relu(self.norm_1(d, seg), 0.2))
        return s + d


class SPADEGeneratorRef(nn.Module):
    def __init__(self, semantic_nc, ngf=64, crop_size=256, aspect_ratio=1.0, num_upsampling_layers="normal",
                 use_vae=False, z_dim=256, norm_G="spectralspadesyncbatch3x3"):
        super().__init__()
        nf = ngf
        self.nf, self.use_vae, self.mode = nf, use_vae, num_upsampling_layers
        self.sw = crop_size // 2 ** NUM_UP[num_upsampling_layers]
        self.sh = round(self.sw / aspect_ratio)
        self.fc = (nn.Linear(z_dim, 16 * nf * self.sw * self.sh) if use_vae
                   else nn.Conv2d(semantic_nc, 16 * nf, 3, padding=1))
        blk = lambda a, b: SPADEResnetBlockRef(a, b, semantic_nc, norm_G)  # noqa: E731
        self.head_0 = blk(16 * nf, 16 * nf)
        self.G_middle_0 = blk(16 * nf, 16 * nf)
        self.G_middle_1 = blk(16 * nf, 16 * nf)
        self.up_0, self.up_1 = blk(16 * nf, 8 * nf), blk(8 * nf, 4 * nf)
        self.up_2, self.up_3 = blk(4 * nf, 2 * nf), blk(2 * nf, nf)
        final = nf
        if num_upsampling_layers == "most":
            self.up_4 = blk(nf, nf // 2)
            final = nf // 2
        self.conv_img = nn.Conv2d(final, 3, 3, padding=1)

    def forward(self, seg, z=None):
        up = lambda t: F.interpolate(t, scale_factor=2, mode="nearest")  # noqa: E731
        if self.use_vae:
            x = self.fc(z).view(-1, 16 * self.nf, self.sh, self.sw)
        else:
            x = self.fc(F.interpolate(seg, size=(self.sh, self.sw)))
        x = up(self.head_0(x, seg))
        x = self.G_middle_0(x, seg)
        if self.mode in ("more", "most"):
            x = up(x)
        x = self.G_middle_1(x, seg)
        for b in (self.up_0, self.up_1, self.up_2, self.up_3):
            x = b(up(x), seg)
        if self.mode == "most":
            x = self.up_4(up(x), seg)
        return torch.tanh(self.conv_img(F.leaky_relu(x, 0.2)))


def _normed(conv, norm):
    spectral = norm.startswith("spectral")
    sub = norm[len("spectral"):] if spectral else norm
    if spectral:
        conv = spectral_norm(conv)
    if sub in ("", "none"):
        return conv
    del conv.bias
    conv.register_parameter("bias", None)
    return nn.Sequential(conv, nn.InstanceNorm2d(conv.out_channels, affine=False))


class NLayerDiscriminatorRef(nn.Module):
    def __init__(self, input_nc, ndf=64, n_layers_D=4, norm_D="spectralinstance"):
        super().__init__()
        nf = ndf
        seq = [[nn.Conv2d(input_nc, nf, 4, 2, 2), nn.LeakyReLU(0.2)]]
        for n in range(1, n_layers_D):
            prev, nf = nf, min(nf * 2, 512)
            seq.append([_normed(nn.Conv2d(prev, nf, 4, 1 if n == n_layers_D - 1 else 2, 2), norm_D),
                        nn.LeakyReLU(0.2)])
        seq.append([nn.Conv2d(nf, 1, 4, 1, 2)])
        for i, s in enumerate(seq):
            self.add_module(f"model{i}", nn.Sequential(*s))

    def forward(self, x):
        out = []
        for m in self.children():
            x = m(x)
            out.append(x)
        return out


class MultiscaleDiscriminatorRef(nn.Module):
    def __init__(self, input_nc, ndf=64, n_layers_D=4, num_D=2, norm_D="spectralinstance"):
        super().__init__()
        for i in range(num_D):
            self.add_module(f"discriminator_{i}", NLayerDiscriminatorRef(input_nc, ndf, n_layers_D, norm_D))

    def forward(self, x):
        feats = []
        for d in self.children():
            feats += d(x)
            x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
        return tuple(feats)


class ConvEncoderRef(nn.Module):
    def __init__(self, ngf=64, crop_size=256, norm_E="spectralinstance"):
        super().__init__()
        n = ngf
        widths = [(3, n), (n, 2 * n), (2 * n, 4 * n), (4 * n, 8 * n), (8 * n, 8 * n)]
        if crop_size >= 256:
            widths.append((8 * n, 8 * n))
        for i, (a, b) in enumerate(widths):
            self.add_module(f"layer{i + 1}", _normed(nn.Conv2d(a, b, 3, stride=2, padding=1), norm_E))
        self.n_layers = len(widths)
        self.fc_mu = nn.Linear(8 * n * 16, 256)
        self.fc_var = nn.Linear(8 * n * 16, 256)

    def forward(self, x):
        if x.shape[2] != 256 or x.shape[3] != 256:
            x = F.interpolate(x, size=(256, 256), mode="bilinear", align_corners=False)
        for i in range(self.n_layers):
            x = getattr(self, f"layer{i + 1}")(x if i == 0 else F.leaky_relu(x, 0.2))
        x = F.leaky_relu(x, 0.2).flatten(1)
        return self.fc_mu(x), self.fc_var(x)


class VGG19Ref(nn.Module):
    """torchvision's vgg19 `features` (the same Sequential indices, so its state_dict keys are torchvision's),
    returning relu1_1 .. relu5_1 as SPADE's perceptual loss taps them. The classifier is left out."""
    CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M")

    def __init__(self):
        super().__init__()
        layers, cin = [], 3
        for v in self.CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(cin, v, 3, padding=1), nn.ReLU(inplace=False)]
                cin = v
        self.features = nn.Sequential(*layers)

    def forward(self, x):
        out = []
        for a, b in ((0, 2), (2, 7), (7, 12), (12, 21), (21, 30)):
            for i in range(a, b):
                x = self.features[i](x)
            out.append(x)
        return tuple(out)
