"""What each exportable network takes and gives: input names, shapes and meaning, and which output is kept.

One row per registry model: `inputs(config, meta, batch, img_size)` -> [(name, shape, meaning)], `output`
(the index kept from a tuple output, or None), the output's name and meaning. Sizes come from the network's
own config, then model.json, then --img_size.
"""
import dataclasses
from typing import Callable, Optional

IMAGE_PM1 = "RGB, NCHW float32 in [-1, 1]"


@dataclasses.dataclass(frozen=True)
class Signature:
    inputs: Callable            # (config, meta, batch, img_size) -> [(name, shape tuple, meaning)]
    output: Optional[int]       # index kept from a tuple output; None: the output as it is
    output_name: str
    output_meaning: str
    default_size: int = 256


def _size(config, meta, img_size, default):
    """The input side: --img_size, else the network's own, else model.json's, else the default."""
    if img_size:
        return int(img_size)
    for source in (config, meta.get("domains", {}), meta.get("source", {}).get("config", {})):
        for key in ("img_size", "image_size", "crop_size"):
            if source.get(key):
                return int(source[key])
    return default


def _image(nc_key="input_nc", default_size=256):
    def inputs(config, meta, batch, img_size):
        s = _size(config, meta, img_size, default_size)
        return [("image", (batch, int(config.get(nc_key, 3)), s, s), IMAGE_PM1)]
    return inputs


def _stgan(config, meta, batch, img_size):
    s = _size(config, meta, img_size, 128)
    names = meta.get("attributes", {}).get("selected_attrs")
    return [("image", (batch, 3, s, s), IMAGE_PM1),
            ("attributes", (batch, int(config["n_attrs"])),
             "the generator's attribute input (inference.attributes.generator_input: +-thres_int per attribute; "
             f"STGAN the target minus the source, AttGAN the target){'; order: ' + ' '.join(names) if names else ''}")]


def _stargan(config, meta, batch, img_size):
    s = _size(config, meta, img_size, 128)
    names = meta.get("domains", {}).get("names")
    return [("image", (batch, 3, s, s), IMAGE_PM1),
            ("labels", (batch, int(config["c_dim"])),
             f"target labels, 0/1{'; order: ' + ' '.join(names) if names else ''}")]


def _dcgan(config, meta, batch, img_size):
    return [("z", (batch, int(config["nz"]), 1, 1), "noise, N(0, 1)")]


def _cgan(config, meta, batch, img_size):
    return [("z", (batch, int(config["nz"])), "noise, N(0, 1)"),
            ("label", (batch, int(config["n_classes"])), "the class, one-hot")]


def _spade(config, meta, batch, img_size):
    """SPADE's output size is fixed by its architecture (crop size, aspect ratio, upsampling layers)."""
    from models.spade import output_size
    h, w = output_size(config["crop_size"], config.get("aspect_ratio", 1.0),
                       config.get("num_upsampling_layers", "normal"))
    inputs = [("label_map", (batch, int(config["semantic_nc"]), h, w),
               "the label map one-hot, NCHW float32 0/1: a channel per class (then \"don't care\" when the model "
               "has it, then the instance edge map when it was trained with instance maps), as data/semantic.py "
               "builds it")]
    if config.get("use_vae"):
        inputs.append(("z", (batch, int(config.get("z_dim", 256))),
                       "style code: N(0, 1), or the encoder's mu + exp(logvar / 2) * N(0, 1)"))
    return inputs


def _inception(config, meta, batch, img_size):
    s = _size({}, {}, img_size, 299)
    return [("image", (batch, 3, s, s), "RGB, NCHW float32 in [0, 1] (resized to 299 inside, as pytorch-fid)")]


SIGNATURES = {
    "ugatit_p2c_generator": Signature(_image("in_nc"), 0, "output_image", IMAGE_PM1),
    "ugatit_generator": Signature(_image("input_nc"), 0, "output_image", IMAGE_PM1),
    "cyclegan_resnet_generator": Signature(_image(), None, "output_image", IMAGE_PM1),
    "cyclegan_unet_generator": Signature(_image(), None, "output_image", IMAGE_PM1),
    "stgan_generator": Signature(_stgan, None, "output_image", IMAGE_PM1),
    "stargan_generator": Signature(_stargan, None, "output_image", IMAGE_PM1),
    "dcgan_generator": Signature(_dcgan, None, "output_image", IMAGE_PM1),
    "cgan_generator": Signature(_cgan, None, "output_image", IMAGE_PM1),
    "spade_generator": Signature(_spade, None, "output_image", IMAGE_PM1),
    "fid_inception": Signature(_inception, 0, "features", "the pool3 features (N, 2048, 1, 1)"),
    "attr_classifier": Signature(_image(), None, "logits", "one logit per attribute (sigmoid > 0.5: present)"),
}

# the network exported when --net is not given, by model.json's networks
DEFAULT_NETS = ("genA2B", "G_A", "G", "inception", "C")
