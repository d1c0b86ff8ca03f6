"""Every entry point answers --help quickly (heavy frameworks are imported lazily), and the registry works."""
import time

import pytest

import models
from tests.helpers import run_cli

ENTRY_POINTS = ["convert_weights.py", "data_process.py", "demo.py", "train.py", "test.py"]


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
