"""Every entry point answers --help quickly (heavy frameworks are imported lazily), and the registry works."""
import time

import pytest

import models
from tests.helpers import run_cli

ENTRY_POINTS = ["app.py", "convert_weights.py", "data_process.py", "demo.py", "eval.py", "export.py", "train.py",
                "test.py"]


@pytest.mark.parametrize("script", ENTRY_POINTS)
def test_help_is_fast_and_complete(script):
    t0 = time.time()
    r = run_cli([script, "--help"], timeout=60)
    elapsed = time.time() - t0
    assert r.returncode == 0, r.stderr
    assert "usage:" in r.stdout and "--" in r.stdout
    assert elapsed < 10, f"{script} --help took {elapsed:.1f}s"


def test_registry():
    names = models.list_models()
    for n in ("ugatit_p2c_generator", "ugatit_generator", "ugatit_discriminator"):
        assert n in names
    net = models.create_model("ugatit_discriminator", ndf=4, n_layers=5)
    assert {p.name for p in net.get_parameters()} >= {"model.1.weight_orig", "conv.weight_u"}
    with pytest.raises(KeyError, match="unknown model"):
        models.create_model("no_such_model")


def test_families_registry_and_their_options():
    """Every family declares what train.py, test.py and the engine need; its flags are its own (no clash with
    the common flags), every train flag has a default in every arch, and `--help` shows them under its name."""
    import train
    from families import Family, get_family, list_families
    common = {f for f, _ in train.COMMON_FLAGS} | set(train.RUNTIME_KEYS)
    assert {"ugatit", "cyclegan", "pix2pix", "stgan", "stargan", "dcgan", "cgan", "attr_classifier"} <= \
        set(list_families())
    for name in list_families():
        fam = get_family(name)
        assert isinstance(fam, Family) and fam.name == name and fam.default_arch in fam.archs
        assert fam.generators and fam.net_keys and fam.data_layout   # no discriminators: a classifier
        flags = [o.name for o in fam.options]
        assert len(flags) == len(set(flags)) and not set(flags) & common, name
        for arch in fam.archs:
            cfg = fam.defaults(arch)
            assert all(f in cfg for f in flags), (name, arch, [f for f in flags if f not in cfg])
            assert all(k in cfg for k in fam.net_keys) and cfg["n_critic"] >= 1
            nets = set(fam.net_configs(cfg))     # optional networks (SPADE's encoder) may be absent
            assert nets <= set(fam.generators) | set(fam.discriminators)
            assert fam.generators[0] in nets and set(fam.discriminators) <= nets
    with pytest.raises(KeyError, match="unknown model family"):
        get_family("no_such_family")


@pytest.mark.parametrize("script", ["train.py", "test.py"])
def test_each_family_shows_its_own_options(script):
    from families import get_family
    r = run_cli([script, "--model", "stgan", "--help"], timeout=60)
    assert r.returncode == 0 and "stgan (STGAN / AttGAN" in r.stdout
    own = get_family("stgan").options if script == "train.py" else get_family("stgan").test_options
    assert all(f"--{o.name}" in r.stdout for o in own)
    option_lines = [ln.split()[0] for ln in r.stdout.splitlines() if ln.startswith("  --")]
    assert "--netG" not in option_lines and "--no_preprocess" not in option_lines   # other families' flags
    r = run_cli([script, "--model", "stgan", "--netG", "unet_256", "--dataset", "x", "--photo_path", "x"], timeout=60)
    assert r.returncode != 0 and "Traceback" not in r.stderr
