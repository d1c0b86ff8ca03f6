"""MobileFaceNet: strict conversion of a self-made `model_mobilefacenet.pth`, embedding parity, and the
face-ID distance (crop, bilinear align_corners resize, 1 - cosine) against a PyTorch computation."""
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import mindspore as ms

import models
from tests.helpers import randomize_torch, run_cli
from torch_refs.mobilefacenet_ref import MobileFaceNetRef, randomize_bn
from training.face_id import FaceIDDistance, face_crop_box


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    d = tmp_path_factory.mktemp("mfn")
    ref = randomize_bn(randomize_torch(MobileFaceNetRef(512), seed=5), seed=6).eval()
    torch.save(ref.state_dict(), d / "model_mobilefacenet.pth")
    dst = d / "mobilefacenet"
    r = run_cli(["convert_weights.py", "--src", str(d / "model_mobilefacenet.pth"), "--dst", str(dst),
                 "--arch", "mobilefacenet"])
    assert r.returncode == 0, r.stderr
    return ref, dst


def test_conversion_and_embedding_parity(converted):
    ref, dst = converted
    meta = json.loads((dst / "model.json").read_text())
    assert meta["networks"] == {"mobilefacenet": {"model": "mobilefacenet", "config": {"embedding_size": 512}}}
    net = models.load_network(str(dst), "mobilefacenet")
    x = np.random.default_rng(0).uniform(-1, 1, (2, 3, 112, 112)).astype(np.float32)
    with torch.no_grad():
        want = ref(torch.from_numpy(x)).numpy()
    got = net(ms.Tensor(x)).asnumpy()
    np.testing.assert_allclose(got, want, atol=1e-4)
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_face_id_distance_matches_torch(converted):
    ref, dst = converted
    fid = FaceIDDistance(str(dst))
    rng = np.random.default_rng(1)
    a = rng.uniform(-1, 1, (2, 3, 128, 128)).astype(np.float32)
    b = np.clip(a + rng.normal(0, 0.5, a.shape), -1, 1).astype(np.float32)
    t, bt, l, r = face_crop_box(128, 128)

    def emb(x):
        x = torch.from_numpy(x)[:, :, t:bt, l:r]
        return ref(F.interpolate(x, size=[112, 112], mode="bilinear", align_corners=True))
    with torch.no_grad():
        want = (1 - F.cosine_similarity(emb(a), emb(b))).mean().item()
    got = float(fid(ms.Tensor(a), ms.Tensor(b)).asnumpy())
    assert abs(got - want) < 1e-4
    assert float(fid(ms.Tensor(a), ms.Tensor(a)).asnumpy()) < 1e-5
    assert all(not p.requires_grad for p in fid.get_parameters())


def test_mobilefacenet_conversion_is_strict(tmp_path):
    ref = MobileFaceNetRef(512)
    sd = ref.state_dict()
    del sd["conv_5.model.1.project.bn.running_var"]
    torch.save(sd, tmp_path / "bad.pth")
    r = run_cli(["convert_weights.py", "--src", str(tmp_path / "bad.pth"), "--dst", str(tmp_path / "o"),
                 "--arch", "mobilefacenet"])
    assert r.returncode != 0 and "conv_5.model.1.project.bn.moving_variance" in r.stderr
    assert not (tmp_path / "o").exists()
