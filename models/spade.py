"""SPADE (Park et al. 2019, "Semantic Image Synthesis with Spatially-Adaptive Normalization"), in the layout of
NVlabs/SPADE: a label map in (one-hot classes, an optional don't-care channel and instance-edge channel), a
photo-like image out.

- SPADE(x, seg) = param_free_norm(x) * (1 + gamma(seg)) + beta(seg): the norm without parameters (instance,
  batch or synchronised batch, which on one device is batch norm), gamma and beta from a ks x ks conv (128
  hidden, ReLU) on the label map resized (nearest) to x's size. `norm_G` names it as the original does:
  `[spectral]spade<instance|batch|syncbatch><k>x<k>`; `spectral` puts spectral norm on the block's convs.
- SPADEResnetBlock(fin, fout): shortcut (learned: SPADE, 1x1 conv without bias, when fin != fout) plus
  conv_1(lrelu(norm_1(conv_0(lrelu(norm_0(x)))))), the middle width min(fin, fout).
- SPADEGenerator(seg[, z]): the label map resized to the latent size (or, with use_vae, a z of z_dim through a
  linear layer) into a 3x3 conv to 16 ngf, head_0, G_middle_0, G_middle_1, up_0..up_3 (and up_4 with `most`),
  nearest x2 upsampling between them, lrelu, a 3x3 conv to RGB, tanh. The latent width is
  crop_size / 2^(5, 6 or 7 for normal / more / most), its height round(width / aspect_ratio).
- NLayerDiscriminator: a 4x4 stride-2 conv (padding 2) and lrelu, n_layers_D - 1 normed convs (the last stride
  1), a 4x4 conv to one channel; every stage's output is returned (feature matching). Normed convs follow
  `norm_D` (`spectralinstance`: spectral norm, no bias, instance norm).
- MultiscaleDiscriminator: num_D of them (`discriminator_<i>`), the input average-pooled (3x3, stride 2,
  padding 1, the padding left out of the count) between scales. Returns every feature of every scale, flat,
  scale by scale (`n_layers_D + 1` per scale, the prediction last).
- ConvEncoder (use_vae): an image resized to 256 x 256 (bilinear) through five (six when crop_size >= 256)
  3x3 stride-2 normed convs from ngf, lrelu, then two linear layers to mu and logvar (256 each).
- VGG19Features: torchvision's vgg19 `features` up to relu5_1, returning relu1_1 .. relu5_1 (the perceptual
  loss).
Parameter names mirror the originals (`head_0.norm_0.mlp_shared.0.weight`, `conv_0.weight_orig`,
`discriminator_0.model1.0.0.weight_orig`, `layer1.0.weight_u`, `features.28.bias`); batch-norm running
statistics are `moving_mean` / `moving_variance`. Initialisation as the original's (xavier normal, gain 0.02,
zero biases).
"""
import re

import numpy as np
from mindspore import nn, ops, Parameter, Tensor
from mindspore.common.initializer import XavierNormal

from .inception import BilinearResize
from .layers import Conv2d, InstanceNorm2d, LeakyReLU, SNConv2d, UpsampleNearest2x, dense
from .registry import register_model

NUM_UP_LAYERS = {"normal": 5, "more": 6, "most": 7}
INIT_GAIN = 0.02
NHIDDEN = 128

# published key -> toolkit key: batch-norm running statistics renamed, the counter PyTorch keeps dropped
TORCH_KEY_RULES = [(r"^(.*)\.running_mean$", r"\1.moving_mean"), (r"^(.*)\.running_var$", r"\1.moving_variance"),
                   (r"^(.*)\.num_batches_tracked$", None), (r"^(.*)$", r"\1")]
# torchvision's vgg19: the perceptual loss uses `features` up to relu5_1 (conv index 28)
VGG19_CONVS = (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28)
VGG19_WIDTHS = (64, 64, 128, 128, 256, 256, 256, 256, 512, 512, 512, 512, 512)


def vgg19_key_rules():
    """torchvision `vgg19().state_dict()` -> VGG19Features: features.0 .. features.28 kept, the rest of the
    features (conv5_2 .. conv5_4) and the classifier dropped by name."""
    kept = "|".join(str(i) for i in VGG19_CONVS)
    return [(rf"^features\.({kept})\.(weight|bias)$", r"features.\1.\2"), (r"^features\.\d+\.(weight|bias)$", None),
            (r"^classifier\.\d+\.(weight|bias)$", None)]


def latent_size(crop_size, aspect_ratio, num_upsampling_layers):
    """(sw, sh) of the generator's first feature map, as the original computes it."""
    sw = crop_size // (2 ** NUM_UP_LAYERS[num_upsampling_layers])
    return sw, int(round(sw / aspect_ratio))


def output_size(crop_size, aspect_ratio, num_upsampling_layers):
    """(height, width) of the generated image."""
    sw, sh = latent_size(crop_size, aspect_ratio, num_upsampling_layers)
    k = 2 ** NUM_UP_LAYERS[num_upsampling_layers]
    return sh * k, sw * k


def parse_spade_norm(norm_G):
    """'spectralspadesyncbatch3x3' -> (spectral True, 'syncbatch', 3)."""
    m = re.fullmatch(r"(spectral)?spade(instance|syncbatch|batch)(\d)x\d", norm_G)
    if not m:
        raise ValueError(f"norm_G {norm_G!r} is not [spectral]spade<instance|batch|syncbatch><k>x<k>")
    return bool(m.group(1)), m.group(2), int(m.group(3))


def parse_plain_norm(norm):
    """norm_D / norm_E: 'spectralinstance' -> (spectral True, 'instance'); the norm after the conv is
    instance or none."""
    m = re.fullmatch(r"(spectral)?(instance|none|)", norm)
    if not m:
        raise ValueError(f"norm {norm!r} is not supported: [spectral]instance or [spectral]none")
    return bool(m.group(1)), m.group(2) or "none"


def _conv(cin, cout, k, stride=1, padding=0, bias=True, spectral=False):
    init = XavierNormal(gain=INIT_GAIN)
    if spectral:
        return SNConv2d(cin, cout, k, stride, padding, bias, weight_init=init)
    return Conv2d(cin, cout, k, stride=stride, padding=padding, bias=bias, weight_init=init)


def _linear(cin, cout):
    lin = dense(cin, cout)
    lin.weight.set_data(Tensor(_xavier_numpy((cout, cin))))
    lin.bias.set_data(Tensor(np.zeros(cout, np.float32)))
    return lin


def _xavier_numpy(shape):
    from mindspore.common.initializer import initializer
    return initializer(XavierNormal(gain=INIT_GAIN), shape).init_data().asnumpy()


class ParamFreeBatchNorm2d(nn.Cell):
    """`nn.BatchNorm2d(C, affine=False)` (and, on one device, the original's SynchronizedBatchNorm2d): batch
    statistics and a running-statistics update (momentum 0.1, unbiased variance) in training mode, the running
    statistics in eval mode. Parameters `moving_mean`, `moving_variance`."""

    def __init__(self, num_features, eps=1e-5, momentum=0.1):
        super().__init__()
        self.moving_mean = Parameter(Tensor(np.zeros(num_features, np.float32)), name="moving_mean",
                                     requires_grad=False)
        self.moving_variance = Parameter(Tensor(np.ones(num_features, np.float32)), name="moving_variance",
                                         requires_grad=False)
        self.scale = Tensor(np.ones(num_features, np.float32))
        self.offset = Tensor(np.zeros(num_features, np.float32))
        # the primitive's momentum is in PyTorch's sense (weight of the new batch statistic)
        self.bn_train = ops.BatchNorm(is_training=True, epsilon=eps, momentum=momentum)
        self.bn_eval = ops.BatchNorm(is_training=False, epsilon=eps)

    def construct(self, x):
        if self.training:
            return self.bn_train(x, self.scale, self.offset, self.moving_mean, self.moving_variance)[0]
        return self.bn_eval(x, self.scale, self.offset, self.moving_mean, self.moving_variance)[0]


class SyncParamFreeBatchNorm2d(ParamFreeBatchNorm2d):
    """The original's SynchronizedBatchNorm2d over data-parallel workers: in training mode the batch statistics
    are those of the global batch (each worker's sums of x, then of (x - mean)^2, all-reduced), the running
    statistics are updated with them (unbiased variance), and the gradient flows through the all-reduce. Same
    parameters as ParamFreeBatchNorm2d; built in place of it when a data-parallel context with several devices
    is set."""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, devices=2):
        super().__init__(num_features, eps, momentum)
        self.eps, self.momentum, self.devices = eps, momentum, devices
        self.all_reduce = ops.AllReduce()       # its gradient is the all-reduced sum of the workers' gradients

    def construct(self, x):
        if not self.training:
            return self.bn_eval(x, self.scale, self.offset, self.moving_mean, self.moving_variance)[0]
        c = x.shape[1]
        count = x.shape[0] * x.shape[2] * x.shape[3] * self.devices
        # two passes, as a local batch norm computes them (E[x^2] - mean^2 lost about 1e-5 of the variance)
        mean = self.all_reduce(x.sum((0, 2, 3))) / count
        centred = x - mean.reshape(1, c, 1, 1)
        var = self.all_reduce((centred * centred).sum((0, 2, 3))) / count
        m = self.momentum
        new_mean = ops.stop_gradient(self.moving_mean * (1.0 - m) + mean * m)
        new_var = ops.stop_gradient(self.moving_variance * (1.0 - m) + var * (m * count / (count - 1)))
        out = centred / ops.sqrt(var.reshape(1, c, 1, 1) + self.eps)
        out = ops.depend(out, ops.assign(self.moving_mean, new_mean))
        return ops.depend(out, ops.assign(self.moving_variance, new_var))


def _data_parallel_devices():
    """The device count of a data-parallel context (training/distributed.py sets it), else 1."""
    import mindspore as ms
    if ms.get_auto_parallel_context("parallel_mode") != ms.ParallelMode.DATA_PARALLEL:
        return 1
    return int(ms.get_auto_parallel_context("device_num"))


def _param_free_norm(kind, c):
    if kind == "instance":
        return InstanceNorm2d(c)
    devices = _data_parallel_devices() if kind == "syncbatch" else 1
    return SyncParamFreeBatchNorm2d(c, devices=devices) if devices > 1 else ParamFreeBatchNorm2d(c)


def resize_nearest(seg, h, w):
    """`F.interpolate(seg, size=(h, w), mode='nearest')`: a strided slice where the sizes divide."""
    sh, sw = seg.shape[2], seg.shape[3]
    if sh == h and sw == w:
        return seg
    if sh % h == 0 and sw % w == 0:
        return seg[:, :, ::sh // h, ::sw // w]
    return ops.interpolate(seg, size=(h, w), mode="nearest")


class SPADE(nn.Cell):
    def __init__(self, norm_nc, label_nc, param_free="syncbatch", ks=3):
        super().__init__()
        self.param_free_norm = _param_free_norm(param_free, norm_nc)
        pw = ks // 2
        self.mlp_shared = nn.SequentialCell([_conv(label_nc, NHIDDEN, ks, padding=pw), nn.ReLU()])
        self.mlp_gamma = _conv(NHIDDEN, norm_nc, ks, padding=pw)
        self.mlp_beta = _conv(NHIDDEN, norm_nc, ks, padding=pw)

    def construct(self, x, seg):
        normalized = self.param_free_norm(x)
        actv = self.mlp_shared(resize_nearest(seg, x.shape[2], x.shape[3]))
        return normalized * (1.0 + self.mlp_gamma(actv)) + self.mlp_beta(actv)


class SPADEResnetBlock(nn.Cell):
    def __init__(self, fin, fout, semantic_nc, norm_G="spectralspadesyncbatch3x3"):
        super().__init__()
        spectral, kind, ks = parse_spade_norm(norm_G)
        self.learned_shortcut = fin != fout
        fmiddle = min(fin, fout)
        self.conv_0 = _conv(fin, fmiddle, 3, padding=1, spectral=spectral)
        self.conv_1 = _conv(fmiddle, fout, 3, padding=1, spectral=spectral)
        self.norm_0 = SPADE(fin, semantic_nc, kind, ks)
        self.norm_1 = SPADE(fmiddle, semantic_nc, kind, ks)
        if self.learned_shortcut:
            self.conv_s = _conv(fin, fout, 1, bias=False, spectral=spectral)
            self.norm_s = SPADE(fin, semantic_nc, kind, ks)
        self.actvn = LeakyReLU(0.2)

    def construct(self, x, seg):
        if self.learned_shortcut:
            x_s = self.conv_s(self.norm_s(x, seg))
        else:
            x_s = x
        dx = self.conv_0(self.actvn(self.norm_0(x, seg)))
        dx = self.conv_1(self.actvn(self.norm_1(dx, seg)))
        return x_s + dx


@register_model("spade_generator")
class SPADEGenerator(nn.Cell):
    """G(seg) -> image in [-1, 1]; with use_vae, G(seg, z) (z: (N, z_dim), N(0, 1) or the encoder's)."""

    def __init__(self, semantic_nc, ngf=64, crop_size=256, aspect_ratio=1.0, num_upsampling_layers="normal",
                 use_vae=False, z_dim=256, norm_G="spectralspadesyncbatch3x3"):
        super().__init__()
        if num_upsampling_layers not in NUM_UP_LAYERS:
            raise ValueError(f"num_upsampling_layers must be one of {', '.join(NUM_UP_LAYERS)}")
        parse_spade_norm(norm_G)
        nf = ngf
        self.ngf, self.use_vae, self.z_dim = ngf, use_vae, z_dim
        self.sw, self.sh = latent_size(crop_size, aspect_ratio, num_upsampling_layers)
        if self.sw < 1 or self.sh < 1:
            raise ValueError(f"crop_size {crop_size} is too small for {num_upsampling_layers} upsampling "
                             f"(at least {2 ** NUM_UP_LAYERS[num_upsampling_layers]})")
        self.more = num_upsampling_layers in ("more", "most")
        self.most = num_upsampling_layers == "most"
        if use_vae:
            self.fc = _linear(z_dim, 16 * nf * self.sw * self.sh)
        else:
            self.fc = _conv(semantic_nc, 16 * nf, 3, padding=1)
        block = lambda a, b: SPADEResnetBlock(a, b, semantic_nc, norm_G)  # noqa: E731
        self.head_0 = block(16 * nf, 16 * nf)
        self.G_middle_0 = block(16 * nf, 16 * nf)
        self.G_middle_1 = block(16 * nf, 16 * nf)
        self.up_0 = block(16 * nf, 8 * nf)
        self.up_1 = block(8 * nf, 4 * nf)
        self.up_2 = block(4 * nf, 2 * nf)
        self.up_3 = block(2 * nf, nf)
        final_nc = nf
        if self.most:
            self.up_4 = block(nf, nf // 2)
            final_nc = nf // 2
        self.conv_img = _conv(final_nc, 3, 3, padding=1)
        self.up = UpsampleNearest2x()
        self.actvn = LeakyReLU(0.2)

    def construct(self, seg, z=None):
        if self.use_vae:
            x = self.fc(z).reshape(-1, 16 * self.ngf, self.sh, self.sw)
        else:
            x = self.fc(resize_nearest(seg, self.sh, self.sw))
        x = self.head_0(x, seg)
        x = self.up(x)
        x = self.G_middle_0(x, seg)
        if self.more:
            x = self.up(x)
        x = self.G_middle_1(x, seg)
        x = self.up_0(self.up(x), seg)
        x = self.up_1(self.up(x), seg)
        x = self.up_2(self.up(x), seg)
        x = self.up_3(self.up(x), seg)
        if self.most:
            x = self.up_4(self.up(x), seg)
        return ops.tanh(self.conv_img(self.actvn(x)))


def _keep_order(cell, name, children):
    """Keep `children` (already set as named attributes, whose names the parameters carry: `model0`, ...) as a
    tuple for construct to loop over; a tuple outside the Cell tree does not rename their parameters as a
    CellList would. Each child is a container, so the CPU kernels' layer swaps inside it are seen through the
    tuple too."""
    object.__setattr__(cell, name, tuple(children))


def _normed_stage(conv_args, norm, act=True):
    """get_nonspade_norm_layer(norm)(conv) [+ lrelu]: Sequential(conv, norm) with the conv's bias removed when
    a norm follows, spectral norm on the conv when asked."""
    spectral, sub = parse_plain_norm(norm)
    cin, cout, k, stride, padding = conv_args
    conv = _conv(cin, cout, k, stride, padding, bias=sub == "none", spectral=spectral)
    inner = conv if sub == "none" else nn.SequentialCell([conv, InstanceNorm2d(cout)])
    return nn.SequentialCell([inner, LeakyReLU(0.2)]) if act else inner


@register_model("spade_patch_discriminator")
class NLayerDiscriminator(nn.Cell):
    def __init__(self, input_nc, ndf=64, n_layers_D=4, norm_D="spectralinstance"):
        super().__init__()
        parse_plain_norm(norm_D)
        kw, padw = 4, 2
        nf = ndf
        stages = [nn.SequentialCell([_conv(input_nc, nf, kw, 2, padw), LeakyReLU(0.2)])]
        for n in range(1, n_layers_D):
            nf_prev, nf = nf, min(nf * 2, 512)
            stages.append(_normed_stage((nf_prev, nf, kw, 1 if n == n_layers_D - 1 else 2, padw), norm_D))
        stages.append(nn.SequentialCell([_conv(nf, 1, kw, 1, padw)]))
        for i, s in enumerate(stages):
            setattr(self, f"model{i}", s)
        _keep_order(self, "_stages", stages)

    def construct(self, x):
        out = ()
        for s in self._stages:
            x = s(x)
            out = out + (x,)
        return out


class AvgPool3x3ExcludePad(nn.Cell):
    """`F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)`: a sum over the zero-padded input
    divided by the number of real pixels under each window."""

    def __init__(self):
        super().__init__()
        self.pool = ops.AvgPool(kernel_size=3, strides=2, pad_mode="VALID")
        self.pad = nn.Pad(((0, 0), (0, 0), (1, 1), (1, 1)))

    def construct(self, x):
        ones = ops.ones((1, 1, x.shape[2], x.shape[3]), x.dtype)
        return self.pool(self.pad(x)) / self.pool(self.pad(ones))


@register_model("spade_discriminator")
class MultiscaleDiscriminator(nn.Cell):
    """D(concat(label map, image)) -> every stage output of every scale, flat: num_D x (n_layers_D + 1)."""

    def __init__(self, input_nc, ndf=64, n_layers_D=4, num_D=2, norm_D="spectralinstance"):
        super().__init__()
        self.num_D, self.per_scale = num_D, n_layers_D + 1
        ds = [NLayerDiscriminator(input_nc, ndf, n_layers_D, norm_D) for _ in range(num_D)]
        for i, d in enumerate(ds):
            setattr(self, f"discriminator_{i}", d)
        _keep_order(self, "_ds", ds)
        self.downsample = AvgPool3x3ExcludePad()

    def construct(self, x):
        out = ()
        for i, d in enumerate(self._ds):
            out = out + d(x)
            if i < self.num_D - 1:
                x = self.downsample(x)
        return out


@register_model("spade_encoder")
class ConvEncoder(nn.Cell):
    """E(image) -> (mu, logvar), each (N, 256)."""

    def __init__(self, ngf=64, crop_size=256, norm_E="spectralinstance"):
        super().__init__()
        parse_plain_norm(norm_E)
        ndf, kw, pw = ngf, 3, 1
        widths = [(3, ndf), (ndf, ndf * 2), (ndf * 2, ndf * 4), (ndf * 4, ndf * 8), (ndf * 8, ndf * 8)]
        self.six = crop_size >= 256
        if self.six:
            widths.append((ndf * 8, ndf * 8))
        for i, (a, b) in enumerate(widths):
            setattr(self, f"layer{i + 1}", _normed_stage((a, b, kw, 2, pw), norm_E, act=False))
        self.fc_mu = _linear(ndf * 8 * 4 * 4, 256)
        self.fc_var = _linear(ndf * 8 * 4 * 4, 256)
        self.actvn = LeakyReLU(0.2)
        self.resize = BilinearResize((256, 256))

    def construct(self, x):
        if x.shape[2] != 256 or x.shape[3] != 256:
            x = self.resize(x)
        x = self.layer1(x)
        x = self.layer2(self.actvn(x))
        x = self.layer3(self.actvn(x))
        x = self.layer4(self.actvn(x))
        x = self.layer5(self.actvn(x))
        if self.six:
            x = self.layer6(self.actvn(x))
        x = self.actvn(x).reshape(x.shape[0], -1)
        return self.fc_mu(x), self.fc_var(x)


@register_model("vgg19_features")
class VGG19Features(nn.Cell):
    """relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 of torchvision's vgg19 (inputs as given: SPADE's loss feeds
    its [-1, 1] images without ImageNet normalisation)."""
    SLICES = ((0, 2), (2, 7), (7, 12), (12, 21), (21, 30))

    def __init__(self):
        super().__init__()
        widths = dict(zip(VGG19_CONVS, VGG19_WIDTHS))
        layers, cin = [], 3
        for i in range(30):
            if i in widths:
                layers.append(Conv2d(cin, widths[i], 3, padding=1))
                cin = widths[i]
            elif i in (4, 9, 18, 27):
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers.append(nn.ReLU())
        self.features = nn.SequentialCell(layers)

    def construct(self, x):
        out = ()
        for a, b in self.SLICES:
            for i in range(a, b):
                x = self.features[i](x)
            out = out + (x,)
        return out
