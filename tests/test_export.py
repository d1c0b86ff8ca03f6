"""export.py and deploy/: every family's generator (and the FID Inception network, the attribute classifier)
exported to ONNX and MINDIR reproduces the network within 1e-4 (onnxruntime; mindspore.load + GraphCell),
with weights from the parity table's PyTorch references; the portable layers equal the ones they replace;
the command line: dynamic batch, metadata, one-line errors, nothing overwritten."""
import json

import numpy as np
import pytest

from tests.helpers import run_cli
from tests.test_parity import ROWS
from torch_refs.weights import load_into_ms, randomize_torch, torch_state_numpy  # noqa: F401

# parity rows exported: every generator family, norms of every kind (instance, batch, LIN / adaLIN /
# Soft-AdaLIN, tracked instance), SPADE's spectral-norm convolutions in their inference form
EXPORTED = ("p2c_full_ngf8_64", "ugatit_light_ngf16_64", "resnet_6blocks_batch", "unet_128_instance",
            "stgan_G_sc3_inj1", "stargan_G_rep3", "dcgan_G_32_grey", "cgan_G_28", "attr_classifier",
            "spade_G_syncbatch_normal", "spade_G_instance_more_aspect2")
META = {"stgan_generator": {"attributes": {"selected_attrs": [f"a{i}" for i in range(13)], "thres_int": 0.5,
                                           "label": "diff"}},
        "stargan_generator": {"domains": {"names": list("abcde"), "exclusive": [], "label_mode": "attributes",
                                          "img_size": 32}}}


def _model_dir(row, path, cfg=None, net="G"):
    """A model dir holding the row's network with its PyTorch reference's (random) weights."""
    import models
    from core.model_dir import write_model_dir
    cfg = dict(row.cfg if cfg is None else cfg)
    ref = row.ref(row.cfg)
    if row.model not in ("mobilefacenet",):
        ref = randomize_torch(ref, seed=row.seed)
    model = models.create_model(row.model, **cfg)
    load_into_ms(model, torch_state_numpy(ref), row.rules(model))
    if row.model == "spade_generator" and "instance" not in cfg.get("norm_G", ""):
        _measure_running_stats(model, row)
    side = row.inputs[0][-1] if len(row.inputs[0]) == 4 else None
    meta = {"format": 1, "arch": row.model, "label": row.id,
            "networks": {net: {"model": row.model, "config": cfg}},
            "source": {"config": {"img_size": side} if side else {}}}
    meta.update(META.get(row.model, {}))
    write_model_dir(str(path), meta, {net: {p.name: p.asnumpy() for p in model.get_parameters()}})
    return path


def _measure_running_stats(model, row, passes=30):
    """Running batch-norm statistics measured on the row's inputs (training-mode passes, momentum 0.1): the
    initial 0 / 1 ones make SPADE's output saturate at +-1 everywhere, where an export that is wrong could
    still match."""
    import mindspore as ms
    rng = np.random.default_rng(11)
    model.set_train(True)
    for _ in range(passes):
        xs = [rng.integers(0, 2, s).astype(np.float32) if i == 0 else rng.standard_normal(s).astype(np.float32)
              for i, s in enumerate(row.inputs)]
        model(*[ms.Tensor(x) for x in xs])
    model.set_train(False)


@pytest.mark.parametrize("row", [r for r in ROWS if r.id in EXPORTED], ids=lambda r: r.id)
def test_exported_files_reproduce_the_network(row, tmp_path):
    from deploy.exporter import (check_export, example_inputs, export_network, plan, read_onnx_description,
                                 run_exported)
    d = _model_dir(row, tmp_path / "m")
    for fmt, ext in (("ONNX", "onnx"), ("MINDIR", "mindir")):
        info = export_network(str(d), "G", fmt, str(tmp_path / f"g.{ext}"), batch=2)
        diff = check_export(info["path"], str(d), "G", batch=2)
        assert diff <= 1e-4, (row.id, fmt, diff)
    out = run_exported(str(tmp_path / "g.onnx"), example_inputs(plan(str(d), "G", 2)[4], 1))
    if row.model != "attr_classifier":     # an image in [-1, 1], not saturated: a comparison that tells
        assert np.mean(np.abs(out) < 0.99) > 0.5 and out.std() > 1e-2, (row.id, out.std())
    desc = read_onnx_description(str(tmp_path / "g.onnx"))
    assert desc["model"] == row.model and desc["inputs"][0]["shape"][0] == 2
    for key in META.get(row.model, {}):
        assert desc["model_json"][key] == META[row.model][key]


def test_the_fid_network_exports(tmp_path):
    """pytorch-fid's whole network (pool3 features) from 96 px inputs (resized to 299 inside)."""
    from deploy.exporter import check_export, export_network
    row = next(r for r in ROWS if r.model == "fid_inception")
    d = _model_dir(row, tmp_path / "m", dict(output_blocks=(3,)))
    info = export_network(str(d), "G", "ONNX", str(tmp_path / "f.onnx"), img_size=96)
    assert info["inputs"][0]["shape"] == [1, 3, 96, 96]
    assert check_export(info["path"], str(d), "G", img_size=96) <= 1e-4


def test_portable_layers_equal_the_originals():
    """The export forms of reflection pad, instance norm (plain and tracked on each image's statistics) and
    the LIN mix against the layers they replace, on one input with odd sizes."""
    import mindspore as ms
    from deploy import portable
    from models import layers
    rng = np.random.default_rng(0)
    x = ms.Tensor(rng.normal(0.3, 2.0, (2, 5, 9, 7)).astype(np.float32))
    rho = ms.Tensor(rng.uniform(0, 1, (1, 5, 1, 1)).astype(np.float32))
    pairs = [(layers.ReflectionPad2d(3), portable.GatherReflectionPad2d(3)),
             (layers.InstanceNorm2d(5), None), (layers.InstanceNorm2d(5, affine=True), None),
             (layers.TrackedInstanceNorm2d(5), None)]
    for orig, port in pairs:
        if isinstance(orig, layers.TrackedInstanceNorm2d):
            orig.eval_input_stats = True
        for p in orig.get_parameters():
            p.set_data(ms.Tensor(rng.normal(0, 1, p.shape).astype(np.float32)))
        orig.set_train(False)
        port = port or portable.SWAPS[type(orig)](orig)
        port.set_train(False)
        np.testing.assert_allclose(port(x).asnumpy(), orig(x).asnumpy(), rtol=1e-5, atol=1e-5)
    mix = layers._LINMix(1e-5)
    np.testing.assert_allclose(portable.PlainLINMix(mix)(x, rho).asnumpy(), mix(x, rho).asnumpy(), rtol=1e-5,
                               atol=1e-5)


@pytest.fixture(scope="module")
def p2c_onnx(tmp_path_factory):
    """A photo2cartoon model dir (genA2B) and its dynamic-batch ONNX export by export.py."""
    root = tmp_path_factory.mktemp("p2c")
    d = _model_dir(next(r for r in ROWS if r.id == "p2c_full_ngf8_64"), root / "p2c", net="genA2B")
    out = root / "out" / "p2c.onnx"
    r = run_cli(["export.py", "--checkpoint", str(d), "--format", "ONNX", "--output", str(out), "--dynamic_batch"])
    assert r.returncode == 0, r.stderr[-1500:]
    return d, out, r


def test_export_cli_dynamic_batch_metadata_and_errors(p2c_onnx, tmp_path):
    """export.py on a photo2cartoon model dir: a dynamic-batch ONNX file that runs at batch 1 and 3 (checked by
    export.py itself) with named inputs and the model's description; MINDIR at batch 2; existing files are
    kept; wrong nets, formats and batches are one-line errors that leave nothing behind."""
    import onnxruntime as ort
    d, out, r = p2c_onnx
    assert "max |difference|" in r.stdout and out.is_file()
    s = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [(i.name, i.shape) for i in s.get_inputs()] == [("image", ["N", 3, 64, 64])]
    y = s.run(None, {"image": np.zeros((4, 3, 64, 64), np.float32)})[0]
    assert y.shape == (4, 3, 64, 64) and np.abs(y).max() <= 1.0
    desc = json.loads(s.get_modelmeta().custom_metadata_map["facegan"])
    assert desc["network"] == "genA2B" and desc["output"]["name"] == "output_image"
    r = run_cli(["export.py", "--checkpoint", str(d), "--format", "MINDIR", "--batch", "2"])
    assert r.returncode == 0 and (d / "genA2B.mindir").is_file(), r.stderr[-1500:]
    before = out.read_bytes()
    cases = ((["--output", str(out)], "exists (pass --overwrite"),
             (["--net", "D"], "no network D"),
             (["--format", "MINDIR", "--dynamic_batch", "--output", str(tmp_path / "x.mindir")], "for ONNX"),
             (["--batch", "0", "--output", str(tmp_path / "y.onnx")], "at least 1"),
             (["--output", str(tmp_path / "z.mindir")], "must end in .onnx"))
    for args, message in cases:
        r = run_cli(["export.py", "--checkpoint", str(d)] + args)
        assert r.returncode != 0 and message in r.stderr and "Traceback" not in r.stderr, (args, r.stderr[-800:])
    assert out.read_bytes() == before
    assert list(tmp_path.iterdir()) == []
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]
    r = run_cli(["export.py", "--checkpoint", str(tmp_path / "none")])
    assert r.returncode != 0 and "no model dir" in r.stderr


def test_onnx_runs_photos_without_mindspore(p2c_onnx, tmp_path):
    """test.py --onnx with MindSpore made unimportable: a photo2cartoon export gives the cartoon the model dir
    gives (within one grey level of rounding), a CycleGAN export translates; a file of another kind (the
    attribute classifier), an STGAN file without its --edit, a file that is not ONNX and one exported for batch
    4 are one-line errors."""
    from PIL import Image
    from skimage import data as skdata
    photo = tmp_path / "astronaut.jpg"
    Image.fromarray(skdata.astronaut()).save(photo)
    block = tmp_path / "block" / "mindspore"
    block.mkdir(parents=True)
    (block / "__init__.py").write_text("raise ImportError('MindSpore is not installed here')\n")
    no_ms = {"PYTHONPATH": str(tmp_path / "block")}
    p2c, onnx_file, _ = p2c_onnx
    r = run_cli(["test.py", "--onnx", str(onnx_file), "--photo_path", str(photo), "--save_path",
                 str(tmp_path / "onnx.png")], env_extra=no_ms)
    assert r.returncode == 0, r.stderr[-1500:]
    assert r.stderr.strip() == "", r.stderr[-1500:]            # no TensorFlow / absl start-up chatter
    r = run_cli(["test.py", "--checkpoint", str(p2c), "--photo_path", str(photo), "--save_path",
                 str(tmp_path / "ms.png")])
    assert r.returncode == 0, r.stderr[-1500:]
    a = np.asarray(Image.open(tmp_path / "onnx.png"), np.int16)
    b = np.asarray(Image.open(tmp_path / "ms.png"), np.int16)
    assert a.shape == b.shape == (256, 256, 3) and np.abs(a - b).max() <= 1, np.abs(a - b).max()

    cyc = _model_dir(next(r for r in ROWS if r.id == "resnet_6blocks_batch"), tmp_path / "cyc", net="G_A")
    for extra, name in (([], "cyc.onnx"), (["--batch", "4"], "b4.onnx")):
        r = run_cli(["export.py", "--checkpoint", str(cyc), "--output", str(tmp_path / name), "--no_check"] + extra)
        assert r.returncode == 0, r.stderr[-1500:]
    r = run_cli(["test.py", "--onnx", str(tmp_path / "cyc.onnx"), "--photo_path", str(photo), "--save_path",
                 str(tmp_path / "cyc.png")], env_extra=no_ms)
    assert r.returncode == 0 and Image.open(tmp_path / "cyc.png").size == (512, 512), r.stderr[-1500:]
    for row_id, name in (("stgan_G_sc3_inj1", "st"), ("attr_classifier", "clf")):
        d = _model_dir(next(r for r in ROWS if r.id == row_id), tmp_path / name)
        r = run_cli(["export.py", "--checkpoint", str(d), "--output", str(tmp_path / f"{name}.onnx"), "--no_check"])
        assert r.returncode == 0, r.stderr[-1500:]
    (tmp_path / "text.onnx").write_text("not a model")
    for f, message in (("clf.onnx", "runs generators"), ("st.onnx", "model needs --edit"),
                       ("text.onnx", "not a readable ONNX file"),
                       ("b4.onnx", "exported for batch 4"), ("none.onnx", "--onnx not found")):
        r = run_cli(["test.py", "--onnx", str(tmp_path / f), "--photo_path", str(photo), "--save_path",
                     str(tmp_path / "x.png")], env_extra=no_ms)
        assert r.returncode != 0 and message in r.stderr and "Traceback" not in r.stderr, (f, r.stderr[-800:])


FAMILY_EXPORTS = [   # (parity row, family, model.json extras, test.py options)
    ("stgan_G_sc3_inj1", "stgan",
     {"attributes": {"selected_attrs": ["a0", "a1", "a2", "a3", "a4"], "thres_int": 0.5, "label": "diff"}},
     ["--attrs", "a0 a3", "--edit", "a1", "--slide", "-1:1:3", "--preprocess", "resize"]),
    ("stargan_G_rep3", "stargan", META["stargan_generator"], ["--attrs", "a c", "--preprocess", "resize"]),
    ("dcgan_G_32_grey", "dcgan", {}, ["--num", "5", "--seed", "3", "--steps", "4"]),
    ("cgan_G_28", "cgan", {}, ["--num", "3", "--seed", "1"]),
    ("spade_G_vae_most", "spade", {"labels": {"label_nc": 4, "contain_dontcare_label": False, "no_instance": True}},
     ["--label_map", "LABEL_MAP", "--seed", "3"]),
]


@pytest.mark.parametrize("row_id, family, extras, options", FAMILY_EXPORTS, ids=[f[1] for f in FAMILY_EXPORTS])
def test_onnx_runs_every_family_runner_without_mindspore(row_id, family, extras, options, tmp_path):
    """test.py --onnx with an exported STGAN, StarGAN, DCGAN, CGAN or SPADE (with its VAE's z) generator (batch
    1: a bigger batch runs chunk by chunk) and MindSpore unimportable: the family's own options, the same output
    files as test.py on the model dir (within one grey level; the norms on the statistics fixed at export:
    StarGAN each image's, DCGAN / CGAN / SPADE the running ones); the family's --help lists them."""
    from PIL import Image
    from skimage import data as skdata
    row = next(r for r in ROWS if r.id == row_id)
    d = _model_dir(row, tmp_path / "m")
    meta = json.loads((d / "model.json").read_text())
    meta.update(extras, arch=family)
    (d / "model.json").write_text(json.dumps(meta))
    r = run_cli(["export.py", "--checkpoint", str(d), "--format", "ONNX", "--output", str(tmp_path / "g.onnx")])
    assert r.returncode == 0, r.stderr[-1500:]
    block = tmp_path / "block" / "mindspore"
    block.mkdir(parents=True)
    (block / "__init__.py").write_text("raise ImportError('MindSpore is not installed here')\n")
    photo = []
    if family in ("stgan", "stargan"):
        Image.fromarray(skdata.astronaut()[::8, ::8]).save(tmp_path / "face.png")
        photo = ["--photo_path", str(tmp_path / "face.png")]
    if family == "spade":       # a label map of the model's 4 classes at its 128 x 128
        ids = np.arange(128)[:, None] // 32 + np.arange(128)[None] // 64
        Image.fromarray((ids % 4).astype(np.uint8), "L").save(tmp_path / "labels.png")
        options = [str(tmp_path / "labels.png") if o == "LABEL_MAP" else o for o in options]
    stats = {"dcgan": ["--bn_stats", "running"], "cgan": ["--bn_stats", "running"]}.get(family, [])
    runs = {"onnx": ["--onnx", str(tmp_path / "g.onnx")], "ms": ["--model", family, "--checkpoint", str(d)] + stats}
    for side, head in runs.items():
        env = {"PYTHONPATH": str(tmp_path / "block")} if side == "onnx" else None
        r = run_cli(["test.py"] + head + photo + options + ["--save_path", str(tmp_path / side)], env_extra=env)
        assert r.returncode == 0, (side, r.stderr[-1500:])
    names = sorted(p.name for p in (tmp_path / "ms").iterdir())
    assert names and names == sorted(p.name for p in (tmp_path / "onnx").iterdir())
    for n in names:
        a = np.asarray(Image.open(tmp_path / "onnx" / n), np.int16)
        b = np.asarray(Image.open(tmp_path / "ms" / n), np.int16)
        assert a.shape == b.shape and np.abs(a - b).max() <= 1, (n, np.abs(a - b).max())
    h = run_cli(["test.py", "--onnx", str(tmp_path / "g.onnx"), "--help"],
                env_extra={"PYTHONPATH": str(tmp_path / "block")})
    assert h.returncode == 0 and f"--{options[0].lstrip('-')}" in h.stdout and "--stats" not in h.stdout
    assert "--style STYLE" not in h.stdout          # SPADE's encoder is not exported
