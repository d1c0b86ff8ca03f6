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
from tests.helpers import randomize_torch, run_cli
from tests.torch_refs.ugatit_ref import DiscriminatorRef, P2CGeneratorRef, UGATITGeneratorRef


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
