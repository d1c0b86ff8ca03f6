"""PyTorch reference networks for the U-GAT-IT family, written from the architecture descriptions.

They reproduce the published state_dict key layouts (photo2cartoon `ResnetGenerator`, U-GAT-IT
`ResnetGenerator`, `Discriminator` with torch's own spectral norm) so that the tests can make checkpoints
in the published formats and compare outputs with the MindSpore Cells.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

SN = nn.utils.spectral_norm


def lin_mix(x, rho, eps):
    """rho * IN(x) + (1 - rho) * LN(x), unbiased variances (torch.var's default)."""
    m_i = x.mean(dim=(2, 3), keepdim=True)
    v_i = x.var(dim=(2, 3), keepdim=True)
    m_l = x.mean(dim=(1, 2, 3), keepdim=True)
    v_l = x.var(dim=(1, 2, 3), keepdim=True)
    return rho * (x - m_i) / torch.sqrt(v_i + eps) + (1 - rho) * (x - m_l) / torch.sqrt(v_l + eps)


class AdaLINRef(nn.Module):
    def __init__(self, c, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.rho = nn.Parameter(torch.full((1, c, 1, 1), 0.9))

    def forward(self, x, gamma, beta):
        return lin_mix(x, self.rho, self.eps) * gamma[:, :, None, None] + beta[:, :, None, None]


class LINRef(nn.Module):
    def __init__(self, c, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.rho = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.gamma = nn.Parameter(torch.ones(1, c, 1, 1))
        self.beta = nn.Parameter(torch.zeros(1, c, 1, 1))

    def forward(self, x):
        return lin_mix(x, self.rho, self.eps) * self.gamma + self.beta


def mlp2(c):
    return nn.Sequential(nn.Linear(c, c), nn.ReLU(), nn.Linear(c, c))


class SoftAdaLINRef(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.norm = AdaLINRef(c)
        self.w_gamma = nn.Parameter(torch.zeros(1, c))
        self.w_beta = nn.Parameter(torch.zeros(1, c))
        self.c_gamma, self.c_beta = mlp2(c), mlp2(c)
        self.s_gamma, self.s_beta = nn.Linear(c, c), nn.Linear(c, c)

    def forward(self, x, content, style):
        g = (1 - self.w_gamma) * self.s_gamma(style) + self.w_gamma * self.c_gamma(content)
        b = (1 - self.w_beta) * self.s_beta(style) + self.w_beta * self.c_beta(content)
        return self.norm(x, g, b)


def pad_conv(cin, cout, k, stride=1, bias=False):
    return [nn.ReflectionPad2d(k // 2), nn.Conv2d(cin, cout, k, stride, 0, bias=bias)]


class ResBlockRef(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv_block = nn.Sequential(*pad_conv(c, c, 3), nn.InstanceNorm2d(c), nn.ReLU(),
                                        *pad_conv(c, c, 3), nn.InstanceNorm2d(c))

    def forward(self, x):
        return x + self.conv_block(x)


class AdaResBlockRef(nn.Module):
    def __init__(self, c, soft):
        super().__init__()
        norm = SoftAdaLINRef if soft else AdaLINRef
        self.pad1, self.conv1, self.norm1, self.relu1 = nn.ReflectionPad2d(1), nn.Conv2d(c, c, 3, bias=False), norm(c), nn.ReLU()
        self.pad2, self.conv2, self.norm2 = nn.ReflectionPad2d(1), nn.Conv2d(c, c, 3, bias=False), norm(c)

    def forward(self, x, a, b):
        y = self.relu1(self.norm1(self.conv1(self.pad1(x)), a, b))
        return x + self.norm2(self.conv2(self.pad2(y)), a, b)


class ConvBlockRef(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.cout = cout

        def unit(a, b, k):
            layers = [nn.InstanceNorm2d(a), nn.ReLU()]
            if k == 3:
                layers.append(nn.ReflectionPad2d(1))
            return nn.Sequential(*layers, nn.Conv2d(a, b, k, bias=False))
        self.ConvBlock1 = unit(cin, cout // 2, 3)
        self.ConvBlock2 = unit(cout // 2, cout // 4, 3)
        self.ConvBlock3 = unit(cout // 4, cout // 4, 3)
        self.ConvBlock4 = unit(cin, cout, 1)

    def forward(self, x):
        a = self.ConvBlock1(x)
        b = self.ConvBlock2(a)
        c = self.ConvBlock3(b)
        res = x if x.shape[1] == self.cout else self.ConvBlock4(x)
        return res + torch.cat([a, b, c], 1)


class HourGlassBlockRef(nn.Module):
    NAMES = ["ConvBlock1_1", "ConvBlock1_2", "ConvBlock2_1", "ConvBlock2_2", "ConvBlock3_1", "ConvBlock3_2",
             "ConvBlock4_1", "ConvBlock4_2", "ConvBlock5", "ConvBlock6", "ConvBlock7", "ConvBlock8", "ConvBlock9"]

    def __init__(self, cin, cout):
        super().__init__()
        for i, n in enumerate(self.NAMES):
            setattr(self, n, ConvBlockRef(cin if i == 0 else cout, cout))

    def forward(self, x):
        skips, cur = [], x
        for lvl in range(1, 5):
            skips.append(getattr(self, f"ConvBlock{lvl}_1")(cur))
            cur = getattr(self, f"ConvBlock{lvl}_2")(F.avg_pool2d(cur, 2))
        cur = self.ConvBlock5(cur)
        for name, skip in zip(["ConvBlock6", "ConvBlock7", "ConvBlock8", "ConvBlock9"], reversed(skips)):
            cur = skip + F.interpolate(getattr(self, name)(cur), scale_factor=2, mode="nearest")
        return cur


class HourGlassRef(nn.Module):
    def __init__(self, cin, cout, use_res=True):
        super().__init__()
        self.use_res = use_res
        self.HG = nn.Sequential(HourGlassBlockRef(cin, cout), ConvBlockRef(cout, cout),
                                nn.Conv2d(cout, cout, 1, bias=False), nn.InstanceNorm2d(cout), nn.ReLU())
        self.Conv1 = nn.Conv2d(cout, 3, 1)
        if use_res:
            self.Conv2 = nn.Conv2d(cout, cout, 1)
            self.Conv3 = nn.Conv2d(3, cout, 1)

    def forward(self, x):
        ll = self.HG(x)
        t = self.Conv1(ll)
        return x + self.Conv2(ll) + self.Conv3(t) if self.use_res else t


def cam(x, gap_fc, gmp_fc):
    """Logits through the fc modules; features scaled by the fc's first *parameter* (weight_orig under SN)."""
    b = x.shape[0]
    gw = next(iter(gap_fc.parameters()))
    mw = next(iter(gmp_fc.parameters()))
    gl = gap_fc(x.mean(dim=(2, 3)).view(b, -1))
    ml = gmp_fc(x.amax(dim=(2, 3)).view(b, -1))
    return torch.cat([x * gw[:, :, None, None], x * mw[:, :, None, None]], 1), torch.cat([gl, ml], 1)


class P2CGeneratorRef(nn.Module):
    """photo2cartoon ResnetGenerator key layout."""

    def __init__(self, ngf=32, img_size=256, light=True):
        super().__init__()
        self.light = light
        self.ConvBlock1 = nn.Sequential(*pad_conv(3, ngf, 7), nn.InstanceNorm2d(ngf), nn.ReLU())
        self.HourGlass1, self.HourGlass2 = HourGlassRef(ngf, ngf), HourGlassRef(ngf, ngf)
        self.DownBlock1 = nn.Sequential(*pad_conv(ngf, ngf * 2, 3, 2), nn.InstanceNorm2d(ngf * 2), nn.ReLU())
        self.DownBlock2 = nn.Sequential(*pad_conv(ngf * 2, ngf * 4, 3, 2), nn.InstanceNorm2d(ngf * 4), nn.ReLU())
        for i in range(1, 5):
            setattr(self, f"EncodeBlock{i}", ResBlockRef(ngf * 4))
        self.gap_fc, self.gmp_fc = nn.Linear(ngf * 4, 1), nn.Linear(ngf * 4, 1)
        self.conv1x1 = nn.Conv2d(ngf * 8, ngf * 4, 1)
        self.relu = nn.ReLU()
        fc_in = ngf * 4 if light else (img_size // 4) ** 2 * ngf * 4
        self.FC = nn.Sequential(nn.Linear(fc_in, ngf * 4), nn.ReLU(), nn.Linear(ngf * 4, ngf * 4), nn.ReLU())
        for i in range(1, 5):
            setattr(self, f"DecodeBlock{i}", AdaResBlockRef(ngf * 4, soft=True))
        self.UpBlock1 = nn.Sequential(nn.Upsample(scale_factor=2), *pad_conv(ngf * 4, ngf * 2, 3), LINRef(ngf * 2), nn.ReLU())
        self.UpBlock2 = nn.Sequential(nn.Upsample(scale_factor=2), *pad_conv(ngf * 2, ngf, 3), LINRef(ngf), nn.ReLU())
        self.HourGlass3, self.HourGlass4 = HourGlassRef(ngf, ngf), HourGlassRef(ngf, ngf, False)
        self.ConvBlock2 = nn.Sequential(*pad_conv(3, 3, 7), nn.Tanh())

    def forward(self, x):
        x = self.HourGlass2(self.HourGlass1(self.ConvBlock1(x)))
        x = self.DownBlock2(self.DownBlock1(x))
        content = []
        for i in range(1, 5):
            x = getattr(self, f"EncodeBlock{i}")(x)
            content.append(x.mean(dim=(2, 3)))
        x, cam_logit = cam(x, self.gap_fc, self.gmp_fc)
        x = self.relu(self.conv1x1(x))
        heatmap = x.sum(dim=1, keepdim=True)
        style = self.FC(x.mean(dim=(2, 3)) if self.light else x.flatten(1))
        for i in range(1, 5):
            x = getattr(self, f"DecodeBlock{i}")(x, content[4 - i], style)
        x = self.HourGlass4(self.HourGlass3(self.UpBlock2(self.UpBlock1(x))))
        return self.ConvBlock2(x), cam_logit, heatmap


class UGATITGeneratorRef(nn.Module):
    """U-GAT-IT ResnetGenerator key layout (DownBlock.N, UpBlock1_i, UpBlock2.N, FC, gamma, beta)."""

    def __init__(self, ngf=64, n_blocks=4, img_size=256, light=True, input_nc=3, output_nc=3):
        super().__init__()
        self.light, self.n_blocks = light, n_blocks
        down = [*pad_conv(input_nc, ngf, 7), nn.InstanceNorm2d(ngf), nn.ReLU()]
        for m in (1, 2):
            down += [*pad_conv(ngf * m, ngf * m * 2, 3, 2), nn.InstanceNorm2d(ngf * m * 2), nn.ReLU()]
        down += [ResBlockRef(ngf * 4) for _ in range(n_blocks)]
        self.DownBlock = nn.Sequential(*down)
        c = ngf * 4
        self.gap_fc, self.gmp_fc = nn.Linear(c, 1, bias=False), nn.Linear(c, 1, bias=False)
        self.conv1x1 = nn.Conv2d(2 * c, c, 1)
        self.relu = nn.ReLU()
        fc_in = c if light else (img_size // 4) ** 2 * c
        self.FC = nn.Sequential(nn.Linear(fc_in, c, bias=False), nn.ReLU(), nn.Linear(c, c, bias=False), nn.ReLU())
        self.gamma, self.beta = nn.Linear(c, c, bias=False), nn.Linear(c, c, bias=False)
        for i in range(n_blocks):
            setattr(self, f"UpBlock1_{i + 1}", AdaResBlockRef(c, soft=False))
        up = []
        for m in (4, 2):
            up += [nn.Upsample(scale_factor=2, mode="nearest"), *pad_conv(ngf * m, ngf * m // 2, 3), LINRef(ngf * m // 2), nn.ReLU()]
        up += [*pad_conv(ngf, output_nc, 7), nn.Tanh()]
        self.UpBlock2 = nn.Sequential(*up)

    def forward(self, x):
        x, cam_logit = cam(self.DownBlock(x), self.gap_fc, self.gmp_fc)
        x = self.relu(self.conv1x1(x))
        heatmap = x.sum(dim=1, keepdim=True)
        h = self.FC(x.mean(dim=(2, 3)) if self.light else x.flatten(1))
        g, b = self.gamma(h), self.beta(h)
        for i in range(self.n_blocks):
            x = getattr(self, f"UpBlock1_{i + 1}")(x, g, b)
        return self.UpBlock2(x), cam_logit, heatmap


class DiscriminatorRef(nn.Module):
    """U-GAT-IT Discriminator key layout (model.N with torch spectral norm, gap_fc, gmp_fc, conv1x1, conv)."""

    def __init__(self, input_nc=3, ndf=64, n_layers=5):
        super().__init__()
        layers = [nn.ReflectionPad2d(1), SN(nn.Conv2d(input_nc, ndf, 4, 2, 0)), nn.LeakyReLU(0.2)]
        ch = ndf
        for _ in range(1, n_layers - 2):
            layers += [nn.ReflectionPad2d(1), SN(nn.Conv2d(ch, ch * 2, 4, 2, 0)), nn.LeakyReLU(0.2)]
            ch *= 2
        layers += [nn.ReflectionPad2d(1), SN(nn.Conv2d(ch, ch * 2, 4, 1, 0)), nn.LeakyReLU(0.2)]
        ch *= 2
        self.gap_fc = SN(nn.Linear(ch, 1, bias=False))
        self.gmp_fc = SN(nn.Linear(ch, 1, bias=False))
        self.conv1x1 = nn.Conv2d(ch * 2, ch, 1)
        self.leaky_relu = nn.LeakyReLU(0.2)
        self.pad = nn.ReflectionPad2d(1)
        self.conv = SN(nn.Conv2d(ch, 1, 4, 1, 0, bias=False))
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        x, cam_logit = cam(self.model(x), self.gap_fc, self.gmp_fc)
        x = self.leaky_relu(self.conv1x1(x))
        return self.conv(self.pad(x)), cam_logit, x.sum(dim=1, keepdim=True)
