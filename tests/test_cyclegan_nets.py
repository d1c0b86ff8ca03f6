"""CycleGAN / Pix2Pix networks: table-driven parity with PyTorch references in the junyanz layout (GRAPH and
PYNATIVE, eval and training-mode forward), and `convert_weights.py` on self-made published-style files."""
import json

import numpy as np
import pytest
import torch

import mindspore as ms

import models
from models.cyclegan import batchnorm_prefixes, torch_key_rules
from tests.helpers import assert_close, load_into_ms, randomize_torch, run_cli, torch_state_numpy
from tests.torch_refs.cyclegan_ref import REFS

# (id, registry name, config, input shape, tolerance)
ROWS = [
    ("resnet_9blocks_instance", "cyclegan_resnet_generator",
     dict(ngf=16, norm="instance", n_blocks=9), (1, 3, 64, 64), 1e-4),
    ("resnet_6blocks_instance_dropout", "cyclegan_resnet_generator",
     dict(ngf=16, norm="instance", n_blocks=6, use_dropout=True), (2, 3, 48, 48), 1e-4),
    ("resnet_6blocks_batch", "cyclegan_resnet_generator",
     dict(ngf=8, norm="batch", n_blocks=6), (2, 3, 32, 32), 1e-4),
    ("unet_256_batch_dropout", "cyclegan_unet_generator",
     dict(ngf=8, norm="batch", num_downs=8, use_dropout=True), (2, 3, 256, 256), 1e-4),
    ("unet_128_instance", "cyclegan_unet_generator",
     dict(ngf=8, norm="instance", num_downs=7), (1, 3, 128, 128), 1e-4),
    ("basic_D_batch", "patchgan_discriminator", dict(input_nc=6, ndf=16, n_layers=3, norm="batch"),
     (2, 6, 70, 70), 1e-4),
    ("n_layers5_D_instance", "patchgan_discriminator", dict(input_nc=3, ndf=8, n_layers=5, norm="instance"),
     (1, 3, 128, 128), 1e-4),
    ("pixel_D_none", "pixel_discriminator", dict(input_nc=3, ndf=16, norm="none"), (2, 3, 32, 32), 1e-4),
]
MODES = {"graph": ms.GRAPH_MODE, "pynative": ms.PYNATIVE_MODE}


def _pair(row, seed=0):
    _, name, cfg, shape, _ = row
    ref = randomize_torch(REFS[name](**cfg), seed=seed)
    net = models.create_model(name, **cfg)
    load_into_ms(net, torch_state_numpy(ref), torch_key_rules(cfg.get("norm"), batchnorm_prefixes(net)))
    x = np.random.default_rng(seed).uniform(-1, 1, shape).astype(np.float32)
    return ref, net, x


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("row", ROWS, ids=[r[0] for r in ROWS])
def test_parity(row, mode):
    ms.set_context(mode=MODES[mode])
    ref, net, x = _pair(row)
    ref.eval()
    net.set_train(False)
    with torch.no_grad():
        assert_close(ref(torch.from_numpy(x)), net(ms.Tensor(x)), row[4])
    if not row[2].get("use_dropout"):
        # training-mode forward: batch statistics for BatchNorm, the same maths for instance norm
        ref.train()
        net.set_train(True)
        with torch.no_grad():
            assert_close(ref(torch.from_numpy(x)), net(ms.Tensor(x)), row[4])


def test_parameter_counts_match_published():
    # the counts the original project prints (in millions, 3 decimals): CycleGAN G resnet_9blocks 11.378,
    # D basic (instance) 2.765; pix2pix G unet_256 (batch) 54.414, D basic (batch, 6 channels) 2.769
    def count(name, **cfg):
        net = models.create_model(name, **cfg)
        return sum(int(np.prod(p.shape)) for p in net.trainable_params())
    assert round(count("cyclegan_resnet_generator", ngf=64, n_blocks=9) / 1e6, 3) == 11.378
    assert round(count("patchgan_discriminator", input_nc=3, ndf=64, n_layers=3, norm="instance") / 1e6, 3) == 2.765
    assert round(count("cyclegan_unet_generator", ngf=64, num_downs=8) / 1e6, 3) == 54.414
    assert round(count("patchgan_discriminator", input_nc=6, ndf=64, n_layers=3) / 1e6, 3) == 2.769
    for name, cfg in (("cyclegan_resnet_generator", dict(ngf=64, n_blocks=9)),
                      ("patchgan_discriminator", dict(input_nc=3, ndf=64, n_layers=3)),
                      ("cyclegan_unet_generator", dict(ngf=64, num_downs=8))):
        ref = REFS[name](**cfg)
        assert count(name, **cfg) == sum(p.numel() for p in ref.parameters()), name


# ----------------------------------------------------------------------------------------- conversion

def _save(module, path, stale_in_stats=False):
    sd = module.state_dict()
    if stale_in_stats:   # what PyTorch < 0.4 wrote for InstanceNorm layers
        for name, m in module.named_modules():
            if isinstance(m, torch.nn.InstanceNorm2d):
                sd[f"{name}.running_mean"] = torch.zeros(m.num_features)
                sd[f"{name}.running_var"] = torch.ones(m.num_features)
    torch.save(sd, path)


def _outputs_match(dst, net_name, ref, shape):
    net = models.load_network(str(dst), net_name)
    x = np.random.default_rng(1).uniform(-1, 1, shape).astype(np.float32)
    ref.eval()
    with torch.no_grad():
        assert_close(ref(torch.from_numpy(x)), net(ms.Tensor(x)), 1e-4)


def test_convert_cyclegan_folder_with_stale_instance_norm_stats(tmp_path):
    ms.set_context(mode=ms.PYNATIVE_MODE)
    ck = tmp_path / "checkpoints" / "makeup_cyclegan"
    ck.mkdir(parents=True)
    refs = {"G_A": randomize_torch(REFS["cyclegan_resnet_generator"](ngf=8, n_blocks=9), 1),
            "G_B": randomize_torch(REFS["cyclegan_resnet_generator"](ngf=8, n_blocks=9), 2),
            "D_A": randomize_torch(REFS["patchgan_discriminator"](ndf=8, norm="instance"), 3),
            "D_B": randomize_torch(REFS["patchgan_discriminator"](ndf=8, norm="instance"), 4)}
    for name, ref in refs.items():
        _save(ref, ck / f"latest_net_{name}.pth", stale_in_stats=True)
    (ck / "5_net_G_A.pth").write_bytes(b"an older epoch: not picked")
    dst = tmp_path / "makeup"
    r = run_cli(["convert_weights.py", "--src", str(ck), "--dst", str(dst)])
    assert r.returncode == 0, r.stderr[-2000:]
    meta = json.loads((dst / "model.json").read_text())
    assert meta["arch"] == "cyclegan"
    assert meta["networks"]["G_A"] == {"model": "cyclegan_resnet_generator", "config": dict(
        input_nc=3, output_nc=3, ngf=8, norm="instance", use_dropout=False, n_blocks=9)}
    assert meta["networks"]["D_B"]["config"] == dict(input_nc=3, ndf=8, n_layers=3, norm="instance")
    assert len(meta["source"]["files"]) == 4
    for name, ref in refs.items():
        _outputs_match(dst, name, ref, (1, 3, 64, 64))


def test_convert_pix2pix_files_and_inferred_configs(tmp_path):
    ms.set_context(mode=ms.PYNATIVE_MODE)
    g = randomize_torch(REFS["cyclegan_unet_generator"](ngf=8, num_downs=8, norm="batch", use_dropout=True), 5)
    d = randomize_torch(REFS["patchgan_discriminator"](input_nc=6, ndf=8, n_layers=3, norm="batch"), 6)
    _save(g, tmp_path / "latest_net_G.pth")
    _save(d, tmp_path / "latest_net_D.pth")
    dst = tmp_path / "facades"
    r = run_cli(["convert_weights.py", "--src", str(tmp_path / "latest_net_G.pth"), str(tmp_path / "latest_net_D.pth"),
                 "--dst", str(dst)])
    assert r.returncode == 0, r.stderr[-2000:]
    meta = json.loads((dst / "model.json").read_text())
    assert meta["arch"] == "pix2pix"
    assert meta["networks"]["G"]["config"] == dict(input_nc=3, output_nc=3, num_downs=8, ngf=8, norm="batch",
                                                   use_dropout=False)
    assert meta["networks"]["D"]["config"] == dict(input_nc=6, ndf=8, n_layers=3, norm="batch")
    _outputs_match(dst, "G", g, (1, 3, 256, 256))
    _outputs_match(dst, "D", d, (1, 6, 64, 64))


@pytest.mark.parametrize("name,cfg,expect", [
    ("cyclegan_resnet_generator", dict(ngf=4, n_blocks=6, norm="batch", use_dropout=True), None),
    ("cyclegan_resnet_generator", dict(ngf=4, n_blocks=3, norm="none", output_nc=1), None),
    ("cyclegan_unet_generator", dict(ngf=4, num_downs=7, norm="instance"), None),
    ("patchgan_discriminator", dict(ndf=4, n_layers=5, norm="batch"), None),
    ("pixel_discriminator", dict(ndf=4, norm="instance"), None),
])
def test_config_inference(name, cfg, expect, tmp_path):
    from conversion.cyclegan import kind_of
    ref = REFS[name](**cfg)
    sd = {k: v.numpy() for k, v in ref.state_dict().items()}
    model_name, infer = kind_of(sd)
    assert model_name == name
    got = infer(sd)
    for k, v in cfg.items():
        if not (k == "use_dropout" and name == "cyclegan_unet_generator"):
            assert got[k] == v, (k, got)


def test_conversion_is_strict(tmp_path):
    ref = REFS["cyclegan_resnet_generator"](ngf=4, n_blocks=2)
    sd = ref.state_dict()
    sd["model.10.conv_block.1.extra"] = torch.zeros(2)
    torch.save(sd, tmp_path / "latest_net_G_A.pth")
    r = run_cli(["convert_weights.py", "--src", str(tmp_path / "latest_net_G_A.pth"), "--dst", str(tmp_path / "x")])
    assert r.returncode != 0 and "unused source tensor model.10.conv_block.1.extra" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "x").exists()
    # a discriminator file named as a generator
    torch.save(REFS["patchgan_discriminator"](ndf=4).state_dict(), tmp_path / "latest_net_G_B.pth")
    r = run_cli(["convert_weights.py", "--src", str(tmp_path / "latest_net_G_B.pth"), "--dst", str(tmp_path / "y"),
                 "--arch", "cyclegan"])
    assert r.returncode != 0 and "holds a discriminator" in r.stderr
