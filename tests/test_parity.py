"""Table-driven parity of every registered network with an independent PyTorch reference (torch_refs/).

One row per (registry name, constructor config, input): random non-trivial weights are written into the
reference (rho, w_gamma/w_beta, LIN gamma/beta, spectral-norm u/v, batch-norm statistics), copied into the
MindSpore Cell through the family's strict key table, and every output is compared
- in eval mode, and in training mode over two forwards (the second sees the state the first left: spectral
  norm's u/v after one power iteration, batch norm's running statistics), then that state itself;
- in GRAPH_MODE and PYNATIVE_MODE, with the CPU kernels (kernels.accelerate) and on MindSpore's own ops
  (what GPU and Ascend run); a row may skip a costly combination that another row covers.
A registered network without a row fails `test_every_registered_network_has_a_row`.
"""
import copy
import dataclasses
from typing import Callable

import numpy as np
import pytest
import torch

import mindspore as ms

import kernels
import models
from models.cyclegan import batchnorm_prefixes, torch_key_rules
from tests.helpers import assert_close, assert_close_beyond_rounding, load_into_ms, randomize_torch, torch_state_numpy
from torch_refs import (cgan_ref, cyclegan_ref, dcgan_ref, mobilefacenet_ref, spade_ref, stargan_ref, stgan_ref,
                        ugatit_ref)
from torch_refs.inception_ref import fid_reference


def _ugatit_rules(net):
    return models.ugatit.TORCH_KEY_RULES


def _bn_rules(norm):
    return lambda net: torch_key_rules(norm, batchnorm_prefixes(net))


def _mfn_rules(net):
    return models.mobilefacenet.TORCH_KEY_RULES


def _stargan_rules(net):
    return models.stargan.TORCH_KEY_RULES


def _spade_rules(net):
    return models.spade.TORCH_KEY_RULES


def _vgg_rules(net):
    return models.spade.vgg19_key_rules()


def _stargan_g(cfg):
    return stargan_ref.randomize_running_stats(stargan_ref.StarGANGeneratorRef(**cfg))


@dataclasses.dataclass
class Row:
    id: str
    model: str                  # registry name
    ref: Callable               # config -> torch module
    cfg: dict
    inputs: tuple               # shapes of the inputs (N, ...)
    rules: Callable             # built net -> key rules
    tol: float = 1e-4
    train: bool = True          # compare the training-mode forward too (not with dropout: random)
    beyond_rounding: bool = False   # eval outputs within tol + 2 x PyTorch's own float32 error (see helpers)
    seed: int = 0
    backends: tuple = ("kernels-graph", "kernels-pynative", "portable-graph", "portable-pynative")


def _mfn(cfg):
    return mobilefacenet_ref.randomize_bn(randomize_torch(mobilefacenet_ref.MobileFaceNetRef(cfg["embedding_size"]), 5), 6)


ROWS = [
    # U-GAT-IT / photo2cartoon: image, CAM logits, heatmap
    Row("p2c_light_ngf32_256", "ugatit_p2c_generator", lambda c: ugatit_ref.P2CGeneratorRef(**c),
        dict(ngf=32, img_size=256, light=True), ((1, 3, 256, 256),), _ugatit_rules, beyond_rounding=True,
        backends=("kernels-graph", "kernels-pynative")),   # (MindSpore's own ops: the next row, at a lower cost)
    Row("p2c_full_ngf8_64", "ugatit_p2c_generator", lambda c: ugatit_ref.P2CGeneratorRef(**c),
        dict(ngf=8, img_size=64, light=False), ((2, 3, 64, 64),), _ugatit_rules, beyond_rounding=True,
        backends=("kernels-graph", "kernels-pynative", "portable-pynative")),   # (graph compile of it: 26 s)
    Row("ugatit_light_ngf16_64", "ugatit_generator", lambda c: ugatit_ref.UGATITGeneratorRef(**c),
        dict(ngf=16, n_blocks=4, img_size=64, light=True), ((2, 3, 64, 64),), _ugatit_rules, beyond_rounding=True),
    Row("ugatit_full_ngf8_32", "ugatit_generator", lambda c: ugatit_ref.UGATITGeneratorRef(**c),
        dict(ngf=8, n_blocks=3, img_size=32, light=False), ((2, 3, 32, 32),), _ugatit_rules, beyond_rounding=True),
    Row("ugatit_dis_global_n7", "ugatit_discriminator", lambda c: ugatit_ref.DiscriminatorRef(**c),
        dict(input_nc=3, ndf=16, n_layers=7), ((2, 3, 128, 128),), _ugatit_rules, beyond_rounding=True),
    Row("ugatit_dis_local_n5", "ugatit_discriminator", lambda c: ugatit_ref.DiscriminatorRef(**c),
        dict(input_nc=3, ndf=16, n_layers=5), ((2, 3, 64, 64),), _ugatit_rules, beyond_rounding=True),
    # CycleGAN / Pix2Pix (junyanz's layout)
    Row("resnet_9blocks_instance", "cyclegan_resnet_generator", lambda c: cyclegan_ref.ResnetGeneratorRef(**c),
        dict(ngf=16, norm="instance", n_blocks=9), ((1, 3, 64, 64),), _bn_rules("instance")),
    Row("resnet_6blocks_instance_dropout", "cyclegan_resnet_generator", lambda c: cyclegan_ref.ResnetGeneratorRef(**c),
        dict(ngf=16, norm="instance", n_blocks=6, use_dropout=True), ((2, 3, 48, 48),), _bn_rules("instance"),
        train=False),
    Row("resnet_6blocks_batch", "cyclegan_resnet_generator", lambda c: cyclegan_ref.ResnetGeneratorRef(**c),
        dict(ngf=8, norm="batch", n_blocks=6), ((2, 3, 32, 32),), _bn_rules("batch")),
    Row("unet_256_batch_dropout", "cyclegan_unet_generator", lambda c: cyclegan_ref.UnetGeneratorRef(**c),
        dict(ngf=8, norm="batch", num_downs=8, use_dropout=True), ((2, 3, 256, 256),), _bn_rules("batch"),
        train=False),
    Row("unet_128_instance", "cyclegan_unet_generator", lambda c: cyclegan_ref.UnetGeneratorRef(**c),
        dict(ngf=8, norm="instance", num_downs=7), ((1, 3, 128, 128),), _bn_rules("instance")),
    Row("basic_D_batch", "patchgan_discriminator", lambda c: cyclegan_ref.NLayerDiscriminatorRef(**c),
        dict(input_nc=6, ndf=16, n_layers=3, norm="batch"), ((2, 6, 70, 70),), _bn_rules("batch")),
    Row("n_layers5_D_instance", "patchgan_discriminator", lambda c: cyclegan_ref.NLayerDiscriminatorRef(**c),
        dict(input_nc=3, ndf=8, n_layers=5, norm="instance"), ((1, 3, 128, 128),), _bn_rules("instance")),
    Row("pixel_D_none", "pixel_discriminator", lambda c: cyclegan_ref.PixelDiscriminatorRef(**c),
        dict(input_nc=3, ndf=16, norm="none"), ((2, 3, 32, 32),), _bn_rules("none")),
    # STGAN / AttGAN: (image, attribute vector) -> image; critic -> (adversarial, attribute logits)
    Row("stgan_G_5layers", "stgan_generator", lambda c: stgan_ref.STGANGeneratorRef(**c),
        dict(n_attrs=13, dim=8, enc_layers=5, dec_layers=5, shortcut_layers=4, inject_layers=4, img_size=64),
        ((2, 3, 64, 64), (2, 13)), _bn_rules("batch"), seed=3),
    Row("stgan_G_sc3_inj1", "stgan_generator", lambda c: stgan_ref.STGANGeneratorRef(**c),
        dict(n_attrs=5, dim=8, enc_layers=5, dec_layers=5, shortcut_layers=3, inject_layers=1, img_size=32),
        ((2, 3, 32, 32), (2, 5)), _bn_rules("batch"), seed=3),
    Row("attgan_G", "stgan_generator", lambda c: stgan_ref.STGANGeneratorRef(**c),
        dict(n_attrs=13, dim=8, enc_layers=5, dec_layers=5, shortcut_layers=1, inject_layers=1, use_stu=False,
             img_size=64), ((2, 3, 64, 64), (2, 13)), _bn_rules("batch"), seed=3),
    Row("stgan_D", "stgan_discriminator", lambda c: stgan_ref.STGANDiscriminatorRef(**c),
        dict(n_attrs=13, dim=8, n_layers=5, fc_dim=64, img_size=64), ((2, 3, 64, 64),), _bn_rules("batch"), seed=3),
    Row("attr_classifier", "attr_classifier", lambda c: stgan_ref.AttributeClassifierRef(**c),
        dict(n_attrs=13, dim=8, n_layers=5, fc_dim=64, img_size=64), ((2, 3, 64, 64),), _bn_rules("batch"), seed=3),
    # StarGAN: (image, target labels) -> image, tracked InstanceNorm; critic -> (source map, domain logits)
    Row("stargan_G_rep3", "stargan_generator", _stargan_g, dict(conv_dim=8, c_dim=5, repeat_num=3),
        ((2, 3, 32, 32), (2, 5)), _stargan_rules, seed=4),
    Row("stargan_D_64_rep4", "stargan_discriminator", lambda c: stargan_ref.StarGANDiscriminatorRef(**c),
        dict(image_size=64, conv_dim=8, c_dim=5, repeat_num=4), ((2, 3, 64, 64),), _stargan_rules, seed=4),
    # DCGAN (pytorch/examples' layout) and the conditional GAN
    Row("dcgan_G_64", "dcgan_generator", lambda c: dcgan_ref.DCGANGeneratorRef(**c),
        dict(nz=16, ngf=8, nc=3, img_size=64), ((4, 16, 1, 1),), lambda n: models.dcgan.torch_key_rules(n), seed=5),
    Row("dcgan_G_32_grey", "dcgan_generator", lambda c: dcgan_ref.DCGANGeneratorRef(**c),
        dict(nz=8, ngf=8, nc=1, img_size=32), ((3, 8, 1, 1),), lambda n: models.dcgan.torch_key_rules(n), seed=5,
        backends=("kernels-graph", "portable-pynative")),
    Row("dcgan_D_64", "dcgan_discriminator", lambda c: dcgan_ref.DCGANDiscriminatorRef(**c),
        dict(ndf=8, nc=3, img_size=64), ((4, 3, 64, 64),), lambda n: models.dcgan.torch_key_rules(n), seed=5),
    Row("cgan_G_28", "cgan_generator", lambda c: cgan_ref.CGANGeneratorRef(**c),
        dict(nz=12, n_classes=10, gf_dim=16, img_size=28), ((4, 12), (4, 10)),
        lambda n: models.dcgan.torch_key_rules(n), seed=6),
    Row("cgan_D_28", "cgan_discriminator", lambda c: cgan_ref.CGANDiscriminatorRef(**c),
        dict(n_classes=10, df_dim=8, img_size=28), ((4, 1, 28, 28), (4, 10)),
        lambda n: models.dcgan.torch_key_rules(n), seed=6),
    # SPADE: label map [, z] -> image; multiscale critic -> every feature of every scale; encoder -> (mu, logvar)
    Row("spade_G_syncbatch_normal", "spade_generator", lambda c: spade_ref.SPADEGeneratorRef(**c),
        dict(semantic_nc=6, ngf=4, crop_size=64), ((2, 6, 64, 64),), _spade_rules, beyond_rounding=True, seed=7,
        backends=("kernels-graph", "kernels-pynative", "portable-pynative")),
    Row("spade_G_instance_more_aspect2", "spade_generator", lambda c: spade_ref.SPADEGeneratorRef(**c),
        dict(semantic_nc=5, ngf=4, crop_size=128, aspect_ratio=2.0, num_upsampling_layers="more",
             norm_G="spadeinstance3x3"), ((1, 5, 64, 128),), _spade_rules, beyond_rounding=True, seed=7,
        backends=("kernels-graph", "portable-pynative")),
    Row("spade_G_vae_most", "spade_generator", lambda c: spade_ref.SPADEGeneratorRef(**c),
        dict(semantic_nc=4, ngf=4, crop_size=128, num_upsampling_layers="most", use_vae=True, z_dim=16),
        ((2, 4, 128, 128), (2, 16)), _spade_rules, beyond_rounding=True, seed=7,
        backends=("kernels-graph", "portable-pynative")),
    Row("spade_D_multiscale", "spade_discriminator", lambda c: spade_ref.MultiscaleDiscriminatorRef(**c),
        dict(input_nc=9, ndf=8, n_layers_D=4, num_D=2), ((2, 9, 66, 50),), _spade_rules, seed=7),
    Row("spade_D_3scales_instance", "spade_discriminator", lambda c: spade_ref.MultiscaleDiscriminatorRef(**c),
        dict(input_nc=4, ndf=8, n_layers_D=3, num_D=3, norm_D="instance"), ((1, 4, 64, 64),), _spade_rules, seed=7,
        backends=("kernels-graph", "portable-pynative")),
    Row("spade_patch_D", "spade_patch_discriminator", lambda c: spade_ref.NLayerDiscriminatorRef(**c),
        dict(input_nc=4, ndf=8, n_layers_D=2), ((1, 4, 32, 32),), _spade_rules, seed=7,
        backends=("kernels-graph", "portable-pynative")),
    Row("spade_E_resized", "spade_encoder", lambda c: spade_ref.ConvEncoderRef(**c),
        dict(ngf=4, crop_size=256), ((2, 3, 128, 160),), _spade_rules, seed=7,
        backends=("kernels-graph", "kernels-pynative", "portable-pynative")),
    Row("vgg19_features", "vgg19_features", lambda c: spade_ref.VGG19Ref(), {}, ((1, 3, 48, 48),), _vgg_rules,
        train=False, seed=7, backends=("kernels-graph", "portable-pynative")),
    # the FID Inception network against pytorch-fid's own InceptionV3 (every block; always in eval mode)
    Row("fid_inception_all_blocks", "fid_inception", lambda c: fid_reference(c["output_blocks"]),
        dict(output_blocks=(0, 1, 2, 3)), ((2, 3, 64, 64),), lambda n: models.inception.torch_key_rules(n),
        train=False, backends=("portable-graph", "portable-pynative")),
    # photo2cartoon's face-ID network
    Row("mobilefacenet", "mobilefacenet", _mfn, dict(embedding_size=512), ((2, 3, 112, 112),), _mfn_rules,
        train=False, backends=("portable-graph", "portable-pynative")),
    # (a fixed feature extractor: batch norm always on its moving statistics; grouped convolutions and PReLU,
    # which no kernel takes)
]
MODES = {"graph": ms.GRAPH_MODE, "pynative": ms.PYNATIVE_MODE}
CASES = [(row, b) for row in ROWS for b in row.backends]


def test_every_registered_network_has_a_row():
    assert set(models.list_models()) == {r.model for r in ROWS}


def _pair(row, backend):
    ref = row.ref(row.cfg)
    if row.model != "mobilefacenet":
        ref = randomize_torch(ref, seed=row.seed)
    net = models.create_model(row.model, **row.cfg)
    load_into_ms(net, torch_state_numpy(ref), row.rules(net))
    if backend == "kernels":
        kernels.accelerate(net)
        assert any(kernels.is_native(c) for _, c in net.cells_and_names()), "no layer runs on the kernels"
    rng = np.random.default_rng(row.seed)
    xs = [rng.uniform(-1, 1, shape).astype(np.float32) for shape in row.inputs]
    return ref, net, xs


def _outputs(out):
    return tuple(out) if isinstance(out, (tuple, list)) else (out,)


def _state(net):
    """Spectral-norm u/v and batch-norm running statistics (what a training-mode forward updates)."""
    return {p.name: p.asnumpy() for p in net.get_parameters()
            if p.name.endswith(("weight_u", "weight_v", "moving_mean", "moving_variance"))}


def _torch_state(ref, rules):
    from conversion.core import rename
    return {rename(k, rules): v.detach().numpy() for k, v in ref.state_dict().items()
            if k.endswith(("weight_u", "weight_v", "running_mean", "running_var"))}


@pytest.mark.parametrize("row,case", CASES, ids=[f"{r.id}-{b}" for r, b in CASES])
def test_parity(row, case):
    backend, mode_name = case.split("-")
    ms.set_context(mode=MODES[mode_name])
    ref, net, xs = _pair(row, backend)
    ref.eval()
    net.set_train(False)
    with torch.no_grad():
        outs_t = _outputs(ref(*(torch.from_numpy(x) for x in xs)))
        outs_64 = _outputs(copy.deepcopy(ref).double()(*(torch.from_numpy(x).double() for x in xs))) \
            if row.beyond_rounding else None
    outs_m = _outputs(net(*(ms.Tensor(x) for x in xs)))
    assert len(outs_t) == len(outs_m)
    for k, (t, m) in enumerate(zip(outs_t, outs_m)):
        if row.beyond_rounding:
            assert_close_beyond_rounding(t, m, outs_64[k], row.tol)
        else:
            assert_close(t, m, row.tol)
    if not row.train:
        return
    ref.train()
    net.set_train(True)
    ref64 = copy.deepcopy(ref).double() if row.beyond_rounding else None
    for _ in range(2):   # the second forward starts from the state the first stored
        with torch.no_grad():
            outs_t = _outputs(ref(*(torch.from_numpy(x) for x in xs)))
            outs_64 = _outputs(ref64(*(torch.from_numpy(x).double() for x in xs))) if row.beyond_rounding else None
        outs_m = _outputs(net(*(ms.Tensor(x) for x in xs)))
        for k, (t, m) in enumerate(zip(outs_t, outs_m)):
            if row.beyond_rounding:
                assert_close_beyond_rounding(t, m, outs_64[k], row.tol)
            else:
                assert_close(t, m, row.tol)
    want, got = _torch_state(ref, row.rules(net)), _state(net)
    assert set(want) == set(got)
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-4, atol=1e-5, err_msg=k)


# The parameter counts the original projects print, and equality with the references at published sizes.
PUBLISHED_PARAM_COUNTS = [
    ("ugatit_p2c_generator", dict(ngf=32, img_size=256, light=True), ugatit_ref.P2CGeneratorRef, 3831079),
    ("ugatit_generator", dict(ngf=64, n_blocks=4, img_size=256, light=True), ugatit_ref.UGATITGeneratorRef, 10589888),
    ("cyclegan_resnet_generator", dict(ngf=64, n_blocks=9), cyclegan_ref.ResnetGeneratorRef, 11378179),
    ("patchgan_discriminator", dict(input_nc=3, ndf=64, n_layers=3, norm="instance"),
     cyclegan_ref.NLayerDiscriminatorRef, 2764737),
    ("cyclegan_unet_generator", dict(ngf=64, num_downs=8), cyclegan_ref.UnetGeneratorRef, 54413955),
    ("patchgan_discriminator", dict(input_nc=6, ndf=64, n_layers=3), cyclegan_ref.NLayerDiscriminatorRef, 2768705),
]


@pytest.mark.parametrize("name,cfg,ref_cls,count", PUBLISHED_PARAM_COUNTS,
                         ids=[f"{r[0]}-{r[3]}" for r in PUBLISHED_PARAM_COUNTS])
def test_parameter_counts_match_published(name, cfg, ref_cls, count):
    net = models.create_model(name, **cfg)
    n_ms = sum(int(np.prod(p.shape)) for p in net.trainable_params())
    n_t = sum(p.numel() for p in ref_cls(**cfg).parameters())
    assert n_ms == n_t == count
