"""convert_weights.py on self-made checkpoints in every published layout, run as the README shows,
then `models.load_network` and a comparison with the PyTorch reference (round trip)."""
import collections
import json
import pickle

import numpy as np
import pytest
import torch

import mindspore as ms

import models
from tests.helpers import assert_close, randomize_torch, run_cli
from torch_refs.cyclegan_ref import REFS
from torch_refs.ugatit_ref import DiscriminatorRef, P2CGeneratorRef, UGATITGeneratorRef


def _six(gen_cls, gen_cfg, ndf=8):
    nets = {"genA2B": gen_cls(**gen_cfg), "genB2A": gen_cls(**gen_cfg),
            "disGA": DiscriminatorRef(3, ndf, 7), "disGB": DiscriminatorRef(3, ndf, 7),
            "disLA": DiscriminatorRef(3, ndf, 5), "disLB": DiscriminatorRef(3, ndf, 5)}
    for i, n in enumerate(nets.values()):
        randomize_torch(n, seed=i)
    return nets


def _check_round_trip(dst, name, ref, shape):
    ref.eval()
    net = models.load_network(str(dst), name)
    x = np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32)
    with torch.no_grad():
        want = ref(torch.from_numpy(x))
    got = net(ms.Tensor(x))
    for w, g in zip(want, got):
        np.testing.assert_allclose(g.asnumpy(), w.numpy(), atol=1e-4 * max(1.0, float(w.abs().max())), rtol=0)


@pytest.fixture(scope="module")
def p2c_file(tmp_path_factory):
    d = tmp_path_factory.mktemp("p2c")
    nets = _six(P2CGeneratorRef, dict(ngf=8, img_size=256, light=True))
    path = d / "photo2cartoon_weights.pt"
    torch.save({k: v.state_dict() for k, v in nets.items()}, path)
    return path, nets


def test_photo2cartoon_layout(p2c_file, tmp_path):
    path, nets = p2c_file
    dst = tmp_path / "p2c"
    r = run_cli(["convert_weights.py", "--src", str(path), "--dst", str(dst)])
    assert r.returncode == 0, r.stderr
    meta = json.loads((dst / "model.json").read_text())
    assert meta["arch"] == "photo2cartoon"
    assert meta["networks"]["genA2B"] == {"model": "ugatit_p2c_generator",
                                          "config": {"ngf": 8, "img_size": 256, "light": True}}
    assert meta["networks"]["disGA"]["config"] == {"input_nc": 3, "ndf": 8, "n_layers": 7}
    assert meta["networks"]["disLB"]["config"]["n_layers"] == 5
    assert len(meta["source"]["sha256"]) == 64
    assert sorted(p.name for p in dst.iterdir()) == sorted([f"{k}.ckpt" for k in nets] + ["model.json"])
    _check_round_trip(dst, "genB2A", nets["genB2A"], (1, 3, 64, 64))
    _check_round_trip(dst, "disGA", nets["disGA"], (1, 3, 128, 128))
    _check_round_trip(dst, "disLB", nets["disLB"], (1, 3, 64, 64))
    # an existing directory is never replaced silently
    r = run_cli(["convert_weights.py", "--src", str(path), "--dst", str(dst)])
    assert r.returncode != 0 and "--overwrite" in r.stderr
    r = run_cli(["convert_weights.py", "--src", str(path), "--dst", str(dst), "--overwrite"])
    assert r.returncode == 0


def test_ugatit_params_layout_full_model(tmp_path):
    nets = _six(UGATITGeneratorRef, dict(ngf=8, n_blocks=3, img_size=32, light=False))
    path = tmp_path / "selfie2anime_params_0100000.pt"
    torch.save({k: v.state_dict() for k, v in nets.items()}, path)
    dst = tmp_path / "ugatit"
    r = run_cli(["convert_weights.py", "--src", str(path), "--dst", str(dst), "--arch", "ugatit"])
    assert r.returncode == 0, r.stderr
    meta = json.loads((dst / "model.json").read_text())
    assert meta["arch"] == "ugatit"
    assert meta["networks"]["genA2B"]["config"] == {"ngf": 8, "n_blocks": 3, "img_size": 32, "light": False,
                                                    "input_nc": 3, "output_nc": 3}
    _check_round_trip(dst, "genA2B", nets["genA2B"], (2, 3, 32, 32))


def test_bare_generator_state_dict_and_dataparallel_prefix(tmp_path):
    ref = randomize_torch(UGATITGeneratorRef(ngf=8, n_blocks=2, img_size=64, light=True), seed=3)
    sd = collections.OrderedDict(("module." + k, v) for k, v in ref.state_dict().items())
    path = tmp_path / "genA2B.pth"
    torch.save(sd, path)
    dst = tmp_path / "bare"
    r = run_cli(["convert_weights.py", "--src", str(path), "--dst", str(dst)])
    assert r.returncode == 0, r.stderr
    assert list(json.loads((dst / "model.json").read_text())["networks"]) == ["genA2B"]
    _check_round_trip(dst, "genA2B", ref, (1, 3, 64, 64))


def _bad_files(tmp_path, p2c_file):
    path, nets = p2c_file
    full = torch.load(path, weights_only=True)
    cases = {}
    # a state_dict of some other network
    other = torch.nn.Sequential(torch.nn.ReflectionPad2d(3), torch.nn.Conv2d(3, 8, 7), torch.nn.InstanceNorm2d(8))
    torch.save(other.state_dict(), tmp_path / "other.pth")
    cases["other.pth"] = "not of a U-GAT-IT/photo2cartoon network"
    # the first layers of a CycleGAN ResNet generator only (junyanz layout): detected, then refused
    cut = torch.nn.Module()
    cut.model = torch.nn.Sequential(torch.nn.ReflectionPad2d(3), torch.nn.Conv2d(3, 8, 7))
    torch.save(cut.state_dict(), tmp_path / "latest_net_G_A.pth")
    cases["latest_net_G_A.pth"] = "missing its last conv model.17"
    (tmp_path / "truncated.pt").write_bytes(path.read_bytes()[:5000])
    cases["truncated.pt"] = "not a readable PyTorch weights file"
    torch.save([1, 2, 3], tmp_path / "list.pt")
    cases["list.pt"] = "not a U-GAT-IT/photo2cartoon checkpoint"
    with open(tmp_path / "code.pkl", "wb") as f:
        pickle.dump(collections.Counter("abc"), f)
    cases["code.pkl"] = "not a readable PyTorch weights file"
    missing = {k: dict(v) for k, v in full.items()}
    del missing["genA2B"]["HourGlass1.Conv3.bias"]
    torch.save(missing, tmp_path / "missing.pt")
    cases["missing.pt"] = "unfilled parameter HourGlass1.Conv3.bias"
    extra = {k: dict(v) for k, v in full.items()}
    extra["disLA"]["model.1.weight_extra"] = torch.zeros(3)
    torch.save(extra, tmp_path / "extra.pt")
    cases["extra.pt"] = "unused source tensor model.1.weight_extra"
    shape = {k: dict(v) for k, v in full.items()}
    shape["genB2A"]["FC.2.bias"] = torch.zeros(5)
    torch.save(shape, tmp_path / "shape.pt")
    cases["shape.pt"] = "shape of FC.2.bias"
    return cases


def test_bad_files_give_one_line_errors_and_write_nothing(p2c_file, tmp_path):
    for name, message in _bad_files(tmp_path, p2c_file).items():
        dst = tmp_path / ("out_" + name)
        r = run_cli(["convert_weights.py", "--src", str(tmp_path / name), "--dst", str(dst)])
        assert r.returncode != 0, name
        assert "Traceback" not in r.stderr, (name, r.stderr[-1500:])
        assert r.stderr.startswith("error: ") and message in r.stderr, (name, r.stderr)
        assert not dst.exists(), name
        assert not list(tmp_path.glob(".tmp-*")), name
    r = run_cli(["convert_weights.py", "--src", str(p2c_file[0]), "--dst", str(tmp_path / "x"), "--arch", "ugatit"])
    assert r.returncode != 0 and "photo2cartoon generator, not a ugatit" in r.stderr
    r = run_cli(["convert_weights.py", "--src", str(tmp_path / "absent.pt"), "--dst", str(tmp_path / "y")])
    assert r.returncode != 0 and "no such file" in r.stderr


def test_load_network_errors(p2c_file, tmp_path):
    with pytest.raises(models.NetworkLoadError, match="not found"):
        models.load_network(str(tmp_path / "none"), "genA2B")
    (tmp_path / "empty").mkdir()
    with pytest.raises(models.NetworkLoadError, match="convert_weights.py"):
        models.load_network(str(tmp_path / "empty"), "genA2B")
    dst = tmp_path / "p2c"
    assert run_cli(["convert_weights.py", "--src", str(p2c_file[0]), "--dst", str(dst)]).returncode == 0
    with pytest.raises(models.NetworkLoadError, match="no network 'genX'"):
        models.load_network(str(dst), "genX")
    with pytest.raises(models.NetworkLoadError, match="not a 'ugatit_generator'"):
        models.load_network(str(dst), "genA2B", expect_model="ugatit_generator")
    (dst / "genB2A.ckpt").write_bytes((dst / "genB2A.ckpt").read_bytes()[:1000])
    with pytest.raises(models.NetworkLoadError):
        models.load_network(str(dst), "genB2A")
    meta = json.loads((dst / "model.json").read_text())
    meta["networks"]["disGA"]["config"]["ndf"] = 16        # config that does not fit the weights
    (dst / "model.json").write_text(json.dumps(meta))
    with pytest.raises(models.NetworkLoadError, match="shape mismatch"):
        models.load_network(str(dst), "disGA")


# ------------------------------------------------------------------- CycleGAN / pix2pix (junyanz)

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
    # a U-Net file cannot say whether dropout was on: pix2pix trains with it, and the original's test.py
    # (without --eval) keeps it active, so the converted generator has it; --no_dropout says otherwise
    assert meta["networks"]["G"]["config"] == dict(input_nc=3, output_nc=3, num_downs=8, ngf=8, norm="batch",
                                                   use_dropout=True)
    assert meta["networks"]["D"]["config"] == dict(input_nc=6, ndf=8, n_layers=3, norm="batch")
    _outputs_match(dst, "G", g, (1, 3, 256, 256))
    _outputs_match(dst, "D", d, (1, 6, 64, 64))
    # the original's test-time forward (training mode): dropout active, the same masks in every process
    import models
    net = models.load_network(str(dst), "G")
    net.set_train(True)
    x = ms.Tensor(np.random.default_rng(2).uniform(-1, 1, (1, 3, 256, 256)).astype(np.float32))
    first, second = net(x).asnumpy(), net(x).asnumpy()
    assert not np.allclose(first, second)                    # a new mask per call
    again = models.load_network(str(dst), "G")
    again.set_train(True)
    np.testing.assert_array_equal(again(x).asnumpy(), first)   # deterministic from the start
    r = run_cli(["convert_weights.py", "--src", str(tmp_path / "latest_net_G.pth"), "--dst", str(tmp_path / "nd"),
                 "--no_dropout"])
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads((tmp_path / "nd" / "model.json").read_text())["networks"]["G"]["config"]["use_dropout"] is False


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


def test_convert_stargan_folder_carries_running_stats_and_both_forwards(tmp_path):
    """yunjey/stargan's models/ folder (<iteration>-G.ckpt / -D.ckpt, the latest pair taken): config inferred,
    the InstanceNorms' running statistics carried, eval() and train() forwards both within 1e-4, and the
    published CelebA model's domain names; --domains names others."""
    from torch_refs.stargan_ref import StarGANDiscriminatorRef, StarGANGeneratorRef, randomize_running_stats
    folder = tmp_path / "stargan_celeba_128" / "models"
    folder.mkdir(parents=True)
    g = randomize_running_stats(randomize_torch(StarGANGeneratorRef(conv_dim=8, c_dim=5, repeat_num=3), 7))
    d = randomize_torch(StarGANDiscriminatorRef(image_size=64, conv_dim=8, c_dim=5, repeat_num=4), 8)
    torch.save(g.state_dict(), folder / "200000-G.ckpt")
    torch.save(d.state_dict(), folder / "200000-D.ckpt")
    torch.save({"stale": torch.zeros(1)}, folder / "10000-G.ckpt")          # an older iteration: not picked
    dst = tmp_path / "stargan"
    r = run_cli(["convert_weights.py", "--src", str(folder), "--dst", str(dst)])
    assert r.returncode == 0, r.stderr[-2000:]
    meta = json.loads((dst / "model.json").read_text())
    assert meta["arch"] == "stargan"
    assert meta["networks"]["G"] == {"model": "stargan_generator", "config": dict(conv_dim=8, c_dim=5, repeat_num=3)}
    assert meta["networks"]["D"]["config"] == dict(image_size=64, conv_dim=8, c_dim=5, repeat_num=4)
    assert meta["domains"] == {"names": ["Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young"],
                               "exclusive": ["Black_Hair", "Blond_Hair", "Brown_Hair"], "label_mode": "attributes",
                               "img_size": 64}
    rng = np.random.default_rng(3)
    x = rng.uniform(-1, 1, (2, 3, 64, 64)).astype(np.float32)
    c = rng.integers(0, 2, (2, 5)).astype(np.float32)
    net = models.load_network(str(dst), "G")
    for train in (False, True):            # PyTorch's eval() (running statistics), then train() (instance)
        g.train(train)
        net.set_train(train)
        with torch.no_grad():
            want = g(torch.from_numpy(x), torch.from_numpy(c))
        assert_close(want, net(ms.Tensor(x), ms.Tensor(c)), 1e-4)
    d.eval()
    with torch.no_grad():
        want = d(torch.from_numpy(x))
    got = models.load_network(str(dst), "D")(ms.Tensor(x))
    for w, m in zip(want, got):
        assert_close(w, m, 1e-4)
    r = run_cli(["convert_weights.py", "--src", str(folder / "200000-G.ckpt"), "--dst", str(tmp_path / "named"),
                 "--domains", "a", "b", "c", "d", "e", "--label_mode", "domains"])
    assert r.returncode == 0, r.stderr[-2000:]
    named = json.loads((tmp_path / "named" / "model.json").read_text())["domains"]
    assert named["names"] == ["a", "b", "c", "d", "e"] and named["label_mode"] == "domains"
    r = run_cli(["convert_weights.py", "--src", str(folder / "200000-G.ckpt"), "--dst", str(tmp_path / "bad"),
                 "--domains", "a", "b"])
    assert r.returncode != 0 and "names 2 domains; the checkpoint has 5" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "bad").exists()


@pytest.mark.parametrize("img_size,nc", [(64, 3), (32, 1)])
def test_convert_dcgan_files(tmp_path, img_size, nc):
    """pytorch/examples' netG_epoch_N.pth / netD_epoch_N.pth: nz, ngf, ndf, nc and the size inferred, BatchNorm
    statistics carried, outputs within 1e-4 in eval mode; a G and a D of different models are refused."""
    from torch_refs.dcgan_ref import DCGANDiscriminatorRef, DCGANGeneratorRef
    g = randomize_torch(DCGANGeneratorRef(nz=12, ngf=8, nc=nc, img_size=img_size), 1)
    d = randomize_torch(DCGANDiscriminatorRef(ndf=4, nc=nc, img_size=img_size), 2)
    torch.save(g.state_dict(), tmp_path / "netG_epoch_24.pth")
    torch.save(d.state_dict(), tmp_path / "netD_epoch_24.pth")
    torch.save(g.state_dict(), tmp_path / "netG_epoch_3.pth")
    dst = tmp_path / "dcgan"
    r = run_cli(["convert_weights.py", "--src", str(tmp_path), "--dst", str(dst)])
    assert r.returncode == 0, r.stderr[-2000:]
    meta = json.loads((dst / "model.json").read_text())
    assert meta["arch"] == "dcgan" and meta["source"]["files"][0]["file"] == "netG_epoch_24.pth"
    assert meta["networks"]["G"]["config"] == dict(nz=12, ngf=8, nc=nc, img_size=img_size)
    assert meta["networks"]["D"]["config"] == dict(ndf=4, nc=nc, img_size=img_size)
    z = np.random.default_rng(0).standard_normal((3, 12, 1, 1)).astype(np.float32)
    x = np.random.default_rng(1).uniform(-1, 1, (3, nc, img_size, img_size)).astype(np.float32)
    for name, ref, inp in (("G", g, z), ("D", d, x)):
        ref.eval()
        with torch.no_grad():
            want = ref(torch.from_numpy(inp))
        assert_close(want, models.load_network(str(dst), name)(ms.Tensor(inp)), 1e-4)
    other = randomize_torch(DCGANDiscriminatorRef(ndf=4, nc=3 if nc == 1 else 1, img_size=img_size), 3)
    torch.save(other.state_dict(), tmp_path / "other_D.pth")
    r = run_cli(["convert_weights.py", "--src", str(tmp_path / "netG_epoch_24.pth"), str(tmp_path / "other_D.pth"),
                 "--dst", str(tmp_path / "mixed"), "--arch", "dcgan"])
    assert r.returncode != 0 and "not one model" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "mixed").exists()
