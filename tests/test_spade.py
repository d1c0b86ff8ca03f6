"""SPADE's pieces against their definitions: the loss terms and their gradients against a PyTorch computation of
pix2pix_model's losses, the label encoding and instance edges against the original's formulas, the data
layouts, and the conversion of NVlabs/SPADE checkpoint folders (strict, config inferred, outputs equal)."""
import json
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import mindspore as ms

import models
from tests.helpers import load_into_ms, make_semantic_dataset, randomize_torch, run_cli, torch_state_numpy
from torch_refs import spade_ref


def _pair(model, ref, cfg, seed):
    ref = randomize_torch(ref(**cfg), seed)
    net = models.create_model(model, **cfg)
    load_into_ms(net, torch_state_numpy(ref), models.spade.TORCH_KEY_RULES if model != "vgg19_features"
                 else models.spade.vgg19_key_rules())
    return ref, net


def _torch_losses(G, D, E, vgg, seg, real, eps_g, eps_d, num_D):
    """pix2pix_model's generator and discriminator losses (hinge, feature matching 10, VGG 10, KLD 0.05)."""
    mu, logvar = E(real)
    fake = G(seg, eps_g * torch.exp(0.5 * logvar) + mu)
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp()) * 0.05
    feats = D(torch.cat([torch.cat([seg, fake], 1), torch.cat([seg, real], 1)], 0))
    per = len(feats) // num_D
    n = seg.shape[0]
    scales = [feats[i * per:(i + 1) * per] for i in range(num_D)]
    gan = sum(-s[-1][:n].mean() for s in scales) / num_D
    fm = sum(F.l1_loss(f[:n], f[n:].detach()) * 10.0 / num_D for s in scales for f in s[:-1])
    vf, vr = vgg(fake), vgg(real)
    vl = sum(w * F.l1_loss(a, b.detach()) for w, a, b in zip((1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0), vf, vr)) * 10.0
    g_terms = {"G_GAN": gan, "G_GAN_Feat": fm, "G_VGG": vl, "G_KLD": kld}
    with torch.no_grad():
        mu2, logvar2 = E(real)
        fake2 = G(seg, eps_d * torch.exp(0.5 * logvar2) + mu2)
    feats = D(torch.cat([torch.cat([seg, fake2], 1), torch.cat([seg, real], 1)], 0))
    scales = [feats[i * per:(i + 1) * per] for i in range(num_D)]
    d_fake = sum(F.relu(1 + s[-1][:n]).mean() for s in scales) / num_D
    d_real = sum(F.relu(1 - s[-1][n:]).mean() for s in scales) / num_D
    return g_terms, {"D_Fake": d_fake, "D_real": d_real}, fake2


def test_losses_and_gradients_match_pytorch():
    """The VAE generator, the multiscale critic, the encoder and VGG19 with random weights, in training mode:
    every loss term of both steps, the regenerated fake, and the generator loss's gradient for every
    generator and encoder weight equal a PyTorch computation of the original's losses."""
    from families.spade import DiscriminatorLoss, GeneratorLoss, RegenerateFake
    from training.losses import as_function
    ms.set_context(mode=ms.PYNATIVE_MODE)
    nc, n = 4, 2
    g_cfg = dict(semantic_nc=nc, ngf=4, crop_size=32, use_vae=True, z_dim=256)
    G_t, G = _pair("spade_generator", spade_ref.SPADEGeneratorRef, g_cfg, 11)
    D_t, D = _pair("spade_discriminator", spade_ref.MultiscaleDiscriminatorRef,
                   dict(input_nc=nc + 3, ndf=4, n_layers_D=3, num_D=2), 12)
    E_t, E = _pair("spade_encoder", spade_ref.ConvEncoderRef, dict(ngf=2, crop_size=256), 13)
    V_t, V = _pair("vgg19_features", lambda: spade_ref.VGG19Ref(), {}, 15)
    for name, net in (("G", G), ("D", D), ("E", E)):
        for p in net.get_parameters():
            p.name = f"{name}.{p.name}"
    for p in V.get_parameters():
        p.requires_grad = False
    for m in (G_t, D_t, E_t, V_t):
        m.train()
    V_t.eval()
    for m in (G, D, E):
        m.set_train(True)
    V.set_train(False)
    rng = np.random.default_rng(3)
    label = rng.integers(0, nc, (n, 32, 32))
    seg = (label[:, None] == np.arange(nc)[None, :, None, None]).astype(np.float32)
    real = rng.uniform(-1, 1, (n, 3, 32, 32)).astype(np.float32)
    eps_g, eps_d = (rng.standard_normal((n, 256)).astype(np.float32) for _ in range(2))

    g_terms_t, d_terms_t, fake2_t = _torch_losses(G_t, D_t, E_t, V_t, *(torch.from_numpy(a) for a in
                                                                         (seg, real, eps_g, eps_d)), num_D=2)
    cfg = dict(use_vae=True, gan_mode="hinge", num_D=2, n_layers_D=3, no_ganFeat_loss=False, lambda_feat=10.0,
               lambda_vgg=10.0, lambda_kld=0.05)
    nets = {"G": G, "D": D, "E": E}
    g_loss = GeneratorLoss(nets, cfg, V)
    g_params = G.trainable_params() + E.trainable_params()
    grad_fn = ms.value_and_grad(as_function(g_loss), None, g_params, has_aux=True)
    batch = [ms.Tensor(a) for a in (seg, real, eps_g, eps_d)]
    (loss, terms), grads = grad_fn(*batch)
    total_t = sum(g_terms_t.values())
    total_t.backward()
    assert set(terms) == set(g_terms_t)
    for k in terms:
        np.testing.assert_allclose(float(terms[k].asnumpy()), float(g_terms_t[k]), rtol=2e-4, atol=1e-5, err_msg=k)
    torch_grads = dict(G_t.named_parameters(prefix="G"))
    torch_grads.update(dict(E_t.named_parameters(prefix="E")))
    rules = models.spade.TORCH_KEY_RULES
    from conversion.core import rename
    by_name = {rename(k, rules): v.grad.numpy() for k, v in torch_grads.items()}
    # relative to each tensor's gradient, plus a floor for gradients that are cancellation noise (fc.bias: its
    # path through the batch norm cancels exactly, in theory)
    floor = 5e-3 * max(float(np.abs(v).max()) for v in by_name.values())
    for p, g in zip(g_params, grads):
        want = by_name[p.name]
        err = float(np.abs(g.asnumpy() - want).max())
        assert err <= 2e-3 * float(np.abs(want).max()) + floor, (p.name, err, float(np.abs(want).max()))
    fake2 = RegenerateFake(nets, cfg)(*batch)
    np.testing.assert_allclose(fake2.asnumpy(), fake2_t.detach().numpy(), atol=2e-4)
    d_loss, d_terms = DiscriminatorLoss(nets, cfg)(*batch, fake2)
    for k in d_terms:
        np.testing.assert_allclose(float(d_terms[k].asnumpy()), float(d_terms_t[k]), rtol=2e-4, atol=1e-5, err_msg=k)


def test_label_encoding_and_instance_edges_follow_the_original():
    from data.semantic import encode_labels, instance_edges
    rng = np.random.default_rng(0)
    inst = rng.integers(0, 3, (9, 11))
    t = torch.from_numpy(inst)[None, None]
    edge = torch.zeros_like(t, dtype=torch.bool)          # the original's get_edges
    edge[:, :, :, 1:] |= t[:, :, :, 1:] != t[:, :, :, :-1]
    edge[:, :, :, :-1] |= t[:, :, :, 1:] != t[:, :, :, :-1]
    edge[:, :, 1:, :] |= t[:, :, 1:, :] != t[:, :, :-1, :]
    edge[:, :, :-1, :] |= t[:, :, 1:, :] != t[:, :, :-1, :]
    np.testing.assert_array_equal(instance_edges(inst), edge[0, 0].float().numpy())
    label = rng.integers(0, 4, (9, 11))
    label[0, 0] = 255
    opts = dict(label_nc=4, contain_dontcare_label=True, no_instance=False)
    x = encode_labels(label, opts, inst)
    assert x.shape == (6, 9, 11)
    assert x[4, 0, 0] == 1 and x[:4, 0, 0].sum() == 0                       # 255 -> the don't-care class
    np.testing.assert_array_equal(x[:5].argmax(0)[1:], label[1:])
    np.testing.assert_array_equal(x[5], instance_edges(inst))
    with pytest.raises(ValueError, match="contain_dontcare_label"):
        encode_labels(label, dict(opts, contain_dontcare_label=False, no_instance=True))
    label[1, 1] = 7
    with pytest.raises(ValueError, match="class id 7"):
        encode_labels(label, dict(opts, no_instance=True))


def _png(path, arr, mode=None):
    from PIL import Image
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(arr, mode).save(path)


def test_cityscapes_ade20k_and_custom_layouts(tmp_path):
    """Each layout is found as the original finds it, with its dataset options; samples decode to the crop."""
    from data.semantic import PRESETS, detect_mode, find_samples, load_sample
    rng = np.random.default_rng(1)
    city = tmp_path / "city"
    for split in ("train", "val"):
        for k in range(2):
            stem = f"aachen_{k:06d}_000019"
            lab = rng.integers(0, 34, (32, 64)).astype(np.uint8)
            _png(str(city / "gtFine" / split / "aachen" / f"{stem}_gtFine_labelIds.png"), lab, "L")
            _png(str(city / "gtFine" / split / "aachen" / f"{stem}_gtFine_instanceIds.png"),
                 rng.integers(0, 30000, (32, 64)).astype(np.uint16))
            _png(str(city / "gtFine" / split / "aachen" / f"{stem}_gtFine_color.png"),
                 rng.integers(0, 255, (32, 64, 3)).astype(np.uint8))
            _png(str(city / "leftImg8bit" / split / "aachen" / f"{stem}_leftImg8bit.png"),
                 rng.integers(0, 255, (32, 64, 3)).astype(np.uint8))
    assert detect_mode(str(city)) == "cityscapes"
    train, skipped = find_samples(str(city), "cityscapes")
    assert len(train) == 2 and not skipped and all(s[2].endswith("_instanceIds.png") for s in train)
    assert find_samples(str(city), "cityscapes", "test")[0][0][0].count(os.sep + "val" + os.sep)
    opts = dict(PRESETS["cityscapes"], crop_size=32, no_instance=False)
    x, img = load_sample(train[0], opts)
    assert x.shape == (36, 16, 32) and img.shape == (3, 16, 32)          # fixed: crop_size x crop_size / 2
    ade = tmp_path / "ade"
    for split in ("training", "validation"):
        tag = "train" if split == "training" else "val"
        img = rng.integers(0, 255, (40, 40, 3)).astype(np.uint8)
        _png(str(ade / "images" / split / f"ADE_{tag}_00000001.jpg"), img)
        seg = rng.integers(0, 151, (40, 40)).astype(np.uint8)
        _png(str(ade / "annotations" / split / f"ADE_{tag}_00000001.png"), seg, "L")
    assert detect_mode(str(ade)) == "ade20k"
    (s,), _ = find_samples(str(ade), "ade20k")
    assert s[0].endswith("ADE_train_00000001.png") and s[1].endswith("ADE_train_00000001.jpg") and s[2] is None
    x, _ = load_sample(s, dict(PRESETS["ade20k"], no_instance=True), crop_pos=(3, 5))
    assert x.shape == (151, 256, 256)
    custom = tmp_path / "custom"
    make_semantic_dataset(str(custom), size=32, n_train=3, n_test=2, layout="custom", instances=True)
    assert detect_mode(str(custom)) == "custom"
    train, _ = find_samples(str(custom), "custom")
    assert len(train) == 3 and train[0][2] is not None
    os.remove(train[0][1])
    with pytest.raises(Exception, match="counts must be equal"):
        find_samples(str(custom), "custom")


def _save(module, path):
    torch.save(module.state_dict(), path)


@pytest.fixture(scope="module")
def spade_folder(tmp_path_factory):
    """A SPADE checkpoint folder as the original writes it (latest_net_G/D/E.pth), VAE, 256 px, random weights."""
    folder = tmp_path_factory.mktemp("spade_ckpt")
    g = randomize_torch(spade_ref.SPADEGeneratorRef(semantic_nc=6, ngf=2, crop_size=256, use_vae=True,
                                                    num_upsampling_layers="normal"), 21)
    d = randomize_torch(spade_ref.MultiscaleDiscriminatorRef(input_nc=9, ndf=4, n_layers_D=4, num_D=2), 22)
    e = randomize_torch(spade_ref.ConvEncoderRef(ngf=2, crop_size=256), 23)
    for m, name in ((g, "G"), (d, "D"), (e, "E")):
        _save(m, folder / f"latest_net_{name}.pth")
        _save(m, folder / f"10_net_{name}.pth")
    return folder, g, d, e


def test_convert_spade_folder_infers_the_config_and_reproduces_eval(spade_folder, tmp_path):
    """convert_weights.py on a checkpoint folder: G, D, E with their configs read from the tensors (and the
    options no tensor holds given), and every output of the original's eval() within 1e-4: the image, every
    feature of every discriminator scale, the encoder's mu and logvar."""
    folder, g, d, e = spade_folder
    dst = tmp_path / "m"
    r = run_cli(["convert_weights.py", "--src", str(folder), "--dst", str(dst), "--label_nc", "5",
                 "--no_instance", "false"])
    assert r.returncode == 0, r.stderr
    meta = json.loads((dst / "model.json").read_text())
    assert meta["arch"] == "spade" and set(meta["networks"]) == {"G", "D", "E"}
    assert meta["networks"]["G"]["config"] == dict(semantic_nc=6, ngf=2, crop_size=256, aspect_ratio=1.0,
                                                   num_upsampling_layers="normal", use_vae=True, z_dim=256,
                                                   norm_G="spectralspadesyncbatch3x3")
    assert meta["networks"]["D"]["config"] == dict(input_nc=9, ndf=4, n_layers_D=4, num_D=2, norm_D="spectralinstance")
    assert meta["networks"]["E"]["config"] == dict(ngf=2, crop_size=256, norm_E="spectralinstance")
    assert meta["labels"] == dict(label_nc=5, contain_dontcare_label=False, no_instance=False)
    ms.set_context(mode=ms.GRAPH_MODE)
    rng = np.random.default_rng(5)
    seg = np.zeros((1, 6, 256, 256), np.float32)
    seg[0, rng.integers(0, 5, (256, 256)), np.arange(256)[:, None], np.arange(256)[None]] = 1
    seg[0, 5, ::7] = 1
    z = rng.standard_normal((1, 256)).astype(np.float32)
    img = rng.uniform(-1, 1, (1, 3, 256, 256)).astype(np.float32)
    for m in (g, d, e):
        m.eval()
    with torch.no_grad():
        want_g = g(torch.from_numpy(seg), torch.from_numpy(z)).numpy()
        want_d = [f.numpy() for f in d(torch.from_numpy(np.concatenate([seg, img], 1)[:, :, :128, :96]))]
        want_e = [t.numpy() for t in e(torch.from_numpy(img))]
    G = models.load_network(str(dst), "G")
    D = models.load_network(str(dst), "D")
    E = models.load_network(str(dst), "E")
    np.testing.assert_allclose(G(ms.Tensor(seg), ms.Tensor(z)).asnumpy(), want_g, atol=1e-4)
    got_d = D(ms.Tensor(np.concatenate([seg, img], 1)[:, :, :128, :96]))
    assert len(got_d) == len(want_d) == 10
    for a, b in zip(got_d, want_d):
        np.testing.assert_allclose(a.asnumpy(), b, atol=1e-4 * max(1.0, float(np.abs(b).max())))
    for a, b in zip(E(ms.Tensor(img)), want_e):
        np.testing.assert_allclose(a.asnumpy(), b, atol=1e-4 * max(1.0, float(np.abs(b).max())))


def test_spade_conversion_errors_and_published_options(spade_folder, tmp_path):
    folder, g, _, _ = spade_folder
    r = run_cli(["convert_weights.py", "--src", str(folder / "latest_net_G.pth"), "--dst", str(tmp_path / "a"),
                 "--label_nc", "7"])
    assert r.returncode == 1 and "6 label channels" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "a").exists()
    r = run_cli(["convert_weights.py", "--src", str(folder / "latest_net_G.pth"), "--dst", str(tmp_path / "b"),
                 "--crop_size", "512"])
    assert r.returncode == 1 and "latent cells" in r.stderr
    r = run_cli(["convert_weights.py", "--src", str(folder / "latest_net_D.pth"), "--dst", str(tmp_path / "c")])
    assert r.returncode == 1 and "no SPADE generator" in r.stderr
    # a Cityscapes-shaped generator (35 classes + instance edges) takes that dataset's published options
    from conversion.spade import g_config, resolve_options
    city = spade_ref.SPADEGeneratorRef(semantic_nc=36, ngf=1, crop_size=512, aspect_ratio=2.0,
                                       num_upsampling_layers="more")
    sd = {k: v.numpy() for k, v in city.state_dict().items()}
    assert g_config(sd)["semantic_nc"] == 36 and not g_config(sd)["most"]
    opts, how = resolve_options(36, {})
    assert opts == dict(label_nc=35, contain_dontcare_label=False, no_instance=False, crop_size=512,
                        aspect_ratio=2.0, num_upsampling_layers="more") and "cityscapes" in how


def test_convert_vgg19_state_dict(tmp_path):
    """torchvision's vgg19 state_dict layout (features 0..34 and the classifier, here at a small size): the
    taps to relu5_1 are kept, the rest dropped by name, and the features equal."""
    ref = randomize_torch(spade_ref.VGG19Ref(), 31)
    sd = dict(ref.state_dict())
    for i, (cin, cout) in zip((30, 32, 34), ((512, 512),) * 3):
        sd[f"features.{i}.weight"], sd[f"features.{i}.bias"] = torch.zeros(cout, cin, 3, 3), torch.zeros(cout)
    for i in (0, 3, 6):
        sd[f"classifier.{i}.weight"], sd[f"classifier.{i}.bias"] = torch.zeros(4, 4), torch.zeros(4)
    torch.save(sd, tmp_path / "vgg19.pth")
    r = run_cli(["convert_weights.py", "--src", str(tmp_path / "vgg19.pth"), "--dst", str(tmp_path / "v")])
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "v" / "model.json").read_text())["arch"] == "vgg19"
    ms.set_context(mode=ms.GRAPH_MODE)
    x = np.random.default_rng(2).uniform(-1, 1, (1, 3, 48, 48)).astype(np.float32)
    with torch.no_grad():
        want = ref(torch.from_numpy(x))
    got = models.load_network(str(tmp_path / "v"), "vgg19", expect_model="vgg19_features")(ms.Tensor(x))
    for a, b in zip(got, want):
        np.testing.assert_allclose(a.asnumpy(), b.numpy(), atol=1e-4 * max(1.0, float(b.abs().max())))
