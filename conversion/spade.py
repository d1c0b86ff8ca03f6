"""Conversion of NVlabs/SPADE checkpoints: `<epoch>_net_G.pth`, `_net_D.pth`, `_net_E.pth` (one state_dict each,
or their checkpoint folder, whose latest_net_* files are taken).

Read from the tensors: ngf, the label-map channels (semantic_nc), spectral norm, the parameter-free norm and its
kernel size, `most` upsampling (an up_4 block), the VAE (a linear fc) and z_dim; the discriminator's input
channels, ndf, n_layers_D, num_D and norm; the encoder's ngf, its sixth layer (crop_size >= 256) and norm.
What no tensor holds: crop_size, aspect_ratio, `normal` against `more` upsampling, and how the label channels
split into classes, a don't-care channel and an instance-edge channel. The published models are recognised by
their label channels (36: Cityscapes, 151: ADE20K, 184: COCO-Stuff) and take their datasets' options; any of
these can be given (convert_weights.py --crop_size ...), and another model takes 256, 1.0, normal and
label_nc = semantic_nc unless told.
"""
import os
import re

from .core import ConversionError, map_state_dict
from .torch_io import is_state_dict, strip_prefix

ARCHES = ("spade", "vgg19")
FILE_NET = re.compile(r"(\w+)_net_(G|D|E)\.pth$")
PUBLISHED = {   # semantic_nc -> the dataset options of NVlabs/SPADE's released models
    36: dict(dataset="cityscapes", label_nc=35, contain_dontcare_label=False, no_instance=False, crop_size=512,
             aspect_ratio=2.0, num_upsampling_layers="more"),
    151: dict(dataset="ade20k", label_nc=150, contain_dontcare_label=True, no_instance=True, crop_size=256,
              aspect_ratio=1.0, num_upsampling_layers="normal"),
    184: dict(dataset="coco", label_nc=182, contain_dontcare_label=True, no_instance=False, crop_size=256,
              aspect_ratio=1.0, num_upsampling_layers="normal"),
}
OPTION_KEYS = ("label_nc", "contain_dontcare_label", "no_instance", "crop_size", "aspect_ratio",
               "num_upsampling_layers")


def _w(sd, prefix):
    """The weight of a conv at `prefix` (spectral-normed or not)."""
    return sd.get(prefix + ".weight_orig", sd.get(prefix + ".weight"))


def _is_g(sd):
    return "head_0.norm_0.mlp_shared.0.weight" in sd and "conv_img.weight" in sd


def _is_d(sd):
    return "discriminator_0.model0.0.weight" in sd


def _is_e(sd):
    return "fc_mu.weight" in sd and "fc_var.weight" in sd and any(k.startswith("layer1.") for k in sd)


def _is_vgg(sd):
    return "features.0.weight" in sd and "features.28.weight" in sd and sd["features.0.weight"].shape == (64, 3, 3, 3)


def _normed_conv(sd, slot):
    """(conv prefix, norm name) of a conv made by the original's get_nonspade_norm_layer at `slot`: a
    Sequential(conv, instance norm) when a norm follows (its conv is `<slot>.0`), else the bare conv; the norm
    name as norm_D / norm_E spell it ('spectralinstance', 'instance', 'spectral', 'none')."""
    seq = _w(sd, slot + ".0") is not None
    conv = slot + ".0" if seq else slot
    spectral = conv + ".weight_orig" in sd
    return conv, ("spectral" if spectral else "") + ("instance" if seq else "" if spectral else "none")


def g_config(sd):
    spectral = "head_0.conv_0.weight_orig" in sd
    kind = "syncbatch" if "head_0.norm_0.param_free_norm.running_mean" in sd else "instance"
    ks = int(sd["head_0.norm_0.mlp_shared.0.weight"].shape[2])
    ngf = int(_w(sd, "head_0.conv_0").shape[0]) // 16
    cfg = {"semantic_nc": int(sd["head_0.norm_0.mlp_shared.0.weight"].shape[1]), "ngf": ngf,
           "norm_G": f"{'spectral' if spectral else ''}spade{kind}{ks}x{ks}",
           "use_vae": sd["fc.weight"].ndim == 2, "z_dim": int(sd["fc.weight"].shape[1]) if sd["fc.weight"].ndim == 2 else 256,
           "most": any(k.startswith("up_4.") for k in sd)}
    if cfg["use_vae"]:
        cfg["latent_cells"] = int(sd["fc.weight"].shape[0]) // (16 * ngf)
    return cfg


def d_config(sd):
    scales = sorted({int(m.group(1)) for k in sd for m in [re.match(r"discriminator_(\d+)\.", k)] if m})
    stages = sorted({int(m.group(1)) for k in sd for m in [re.match(r"discriminator_0\.model(\d+)\.", k)] if m})
    first = sd["discriminator_0.model0.0.weight"]
    return {"input_nc": int(first.shape[1]), "ndf": int(first.shape[0]), "n_layers_D": len(stages) - 1,
            "num_D": len(scales), "norm_D": _normed_conv(sd, "discriminator_0.model1.0")[1] if len(stages) > 2
            else "spectralinstance"}


def e_config(sd):
    conv, norm = _normed_conv(sd, "layer1")
    return {"ngf": int(_w(sd, conv).shape[0]), "crop_size": 256 if any(k.startswith("layer6.") for k in sd) else 128,
            "norm_E": norm}


def detect(obj):
    if not is_state_dict(obj):
        return None
    sd = strip_prefix(obj)
    if _is_g(sd) or _is_d(sd) or _is_e(sd):
        return "spade"
    return "vgg19" if _is_vgg(sd) else None


def resolve_options(semantic_nc, given, vae_cells=None):
    """The label split and sizes of a generator with `semantic_nc` label channels: the published model's,
    overridden by the `given` options (None: not given). Returns (options, how they were decided)."""
    given = {k: v for k, v in given.items() if v is not None}
    base = dict(PUBLISHED.get(semantic_nc, {}))
    how = f"the published {base['dataset']} model's options" if base else "defaults"
    base.pop("dataset", None)
    opts = dict(dict(label_nc=None, contain_dontcare_label=False, no_instance=True, crop_size=256, aspect_ratio=1.0,
                     num_upsampling_layers="normal"), **base)
    opts.update(given)
    if opts["label_nc"] is None:
        opts["label_nc"] = semantic_nc - int(opts["contain_dontcare_label"]) - int(not opts["no_instance"])
    total = opts["label_nc"] + int(opts["contain_dontcare_label"]) + int(not opts["no_instance"])
    if total != semantic_nc:
        raise ConversionError(f"the generator takes {semantic_nc} label channels, but label_nc {opts['label_nc']}"
                              f"{' + a don' + chr(39) + 't-care channel' if opts['contain_dontcare_label'] else ''}"
                              f"{' + an instance-edge channel' if not opts['no_instance'] else ''} make {total}")
    return opts, how + (f" with {', '.join(sorted(given))} given" if given else "")


def convert_files(items, arch="auto", **options):
    """items: [(path, loaded object)]: a G file, optionally D and E. Returns (arch, networks, tensors, extra)."""
    from models import create_model
    from models.spade import TORCH_KEY_RULES, latent_size
    if arch == "vgg19" or (len(items) == 1 and detect(items[0][1]) == "vgg19"):
        return _convert_vgg(items)
    found = {}
    for path, obj in items:
        if not is_state_dict(obj):
            raise ConversionError(f"{path}: not a state_dict (SPADE saves one network's state_dict per file)")
        sd = strip_prefix(obj)
        name = "G" if _is_g(sd) else "D" if _is_d(sd) else "E" if _is_e(sd) else None
        if name is None:
            raise ConversionError(f"{path}: not a SPADE network (first keys: {', '.join(list(sd)[:3])})")
        if name in found:
            raise ConversionError(f"{path}: a second {name} network among the files")
        found[name] = (path, sd)
    if "G" not in found:
        raise ConversionError("no SPADE generator among the files (a latest_net_G.pth is needed)")
    g = g_config(found["G"][1])
    given = {k: options.get(k) for k in OPTION_KEYS}
    if g["most"]:
        if given["num_upsampling_layers"] not in (None, "most"):
            raise ConversionError(f"the generator has an up_4 block (most upsampling), not "
                                  f"--num_upsampling_layers {given['num_upsampling_layers']}")
        given["num_upsampling_layers"] = "most"
    opts, how = resolve_options(g["semantic_nc"], given)
    if opts["num_upsampling_layers"] == "most" and not g["most"]:
        raise ConversionError("--num_upsampling_layers most needs an up_4 block, which the generator has not")
    if g["use_vae"]:
        sw, sh = latent_size(opts["crop_size"], opts["aspect_ratio"], opts["num_upsampling_layers"])
        if sw * sh != g["latent_cells"]:
            raise ConversionError(f"the VAE generator's fc makes {g['latent_cells']} latent cells, but crop_size "
                                  f"{opts['crop_size']} / aspect_ratio {opts['aspect_ratio']} / "
                                  f"{opts['num_upsampling_layers']} give {sw} x {sh}")
    configs = {"G": ("spade_generator", dict(semantic_nc=g["semantic_nc"], ngf=g["ngf"], crop_size=opts["crop_size"],
                                             aspect_ratio=opts["aspect_ratio"],
                                             num_upsampling_layers=opts["num_upsampling_layers"],
                                             use_vae=g["use_vae"], z_dim=g["z_dim"], norm_G=g["norm_G"]))}
    if "D" in found:
        d = d_config(found["D"][1])
        if d["input_nc"] != g["semantic_nc"] + 3:
            raise ConversionError(f"D takes {d['input_nc']} channels, G's label map {g['semantic_nc']} + 3: not one model")
        configs["D"] = ("spade_discriminator", d)
    if "E" in found:
        if not g["use_vae"]:
            raise ConversionError(f"{found['E'][0]}: an encoder, but the generator is not a VAE generator")
        configs["E"] = ("spade_encoder", e_config(found["E"][1]))
    if g["use_vae"] and (opts["crop_size"] >= 256) != (configs.get("E", (0, {"crop_size": 256}))[1]["crop_size"] >= 256):
        raise ConversionError("the encoder's depth does not match crop_size (six layers from 256 up)")
    meta, tensors = {}, {}
    for name, (model, cfg) in configs.items():
        if name == "E":
            cfg = dict(cfg, crop_size=opts["crop_size"])
        try:
            net = create_model(model, **cfg)
        except ValueError as e:
            raise ConversionError(f"{found[name][0]}: {e}") from None
        shapes = {p.name: tuple(p.shape) for p in net.get_parameters()}
        tensors[name] = map_state_dict(found[name][1], shapes, TORCH_KEY_RULES, where=f"{found[name][0]} [{name}]")
        meta[name] = {"model": model, "config": cfg}
    labels = {k: opts[k] for k in ("label_nc", "contain_dontcare_label", "no_instance")}
    extra = {"labels": labels, "label": f"SPADE ({labels['label_nc']} classes; {how})"}
    return "spade", meta, tensors, extra


def _convert_vgg(items):
    from models import create_model
    from models.spade import vgg19_key_rules
    if len(items) != 1:
        raise ConversionError(f"vgg19 is one file (torchvision's vgg19 state_dict); got {len(items)}")
    path, obj = items[0]
    if not is_state_dict(obj) or not _is_vgg(strip_prefix(obj)):
        raise ConversionError(f"{path}: not torchvision's vgg19 state_dict (features.0 .. features.34, classifier)")
    net = create_model("vgg19_features")
    shapes = {p.name: tuple(p.shape) for p in net.get_parameters()}
    tensors = {"vgg19": map_state_dict(strip_prefix(obj), shapes, vgg19_key_rules(), where=f"{path} [vgg19]")}
    return "vgg19", {"vgg19": {"model": "vgg19_features", "config": {}}}, tensors, \
        {"label": "VGG19 features to relu5_1 (SPADE's perceptual loss)"}


def files_in_folder(folder):
    """The latest_net_G/D/E.pth of a SPADE checkpoint folder (`checkpoints/<name>/`)."""
    return sorted(os.path.join(folder, f) for f in os.listdir(folder) if re.fullmatch(r"latest_net_(G|D|E)\.pth", f))
