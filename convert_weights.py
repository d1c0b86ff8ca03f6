#!/usr/bin/env python
"""Convert a published PyTorch GAN checkpoint into a MindSpore model directory.

  python convert_weights.py --src photo2cartoon_weights.pt --dst pretrained_models/photo2cartoon
  python convert_weights.py --src selfie2anime_params_0100000.pt --dst pretrained_models/selfie2anime
  python convert_weights.py --src model_mobilefacenet.pth --dst pretrained_models/mobilefacenet --arch mobilefacenet
  python convert_weights.py --src latest_net_G_A.pth latest_net_G_B.pth --dst pretrained_models/makeup --arch cyclegan
  python convert_weights.py --src checkpoints/facades_pix2pix --dst pretrained_models/facades   # latest_net_*.pth
  python convert_weights.py --src stargan_celeba_128/models --dst pretrained_models/stargan      # 200000-G/D.ckpt
  python convert_weights.py --src netG_epoch_24.pth netD_epoch_24.pth --dst pretrained_models/dcgan
  python convert_weights.py --src pt_inception-2015-12-05-6726825d.pth --dst pretrained_models/inception   # FID
  python convert_weights.py --src checkpoints/cityscapes_pretrained --dst pretrained_models/spade  # latest_net_G.pth
  python convert_weights.py --src vgg19-dcbb9e9d.pth --dst pretrained_models/vgg19 --arch vgg19   # SPADE's VGG loss

Writes DST/<net>.ckpt for every network in the file and DST/model.json (arch, inferred config, source
sha256), all at once or not at all. Strict: every source tensor must be used once and every MindSpore
parameter filled once, or nothing is written and the unmatched names are listed.
"""
import argparse
import sys

from core import cli
from families.base import parse_bool


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", required=True, nargs="+",
                    help="PyTorch checkpoint (.pt/.pth), read with weights_only=True; CycleGAN/pix2pix: one file "
                         "per network (named *_net_G_A.pth etc.) or their checkpoint folder")
    ap.add_argument("--dst", required=True, help="output model directory")
    from conversion import arches
    ap.add_argument("--arch", default="auto", choices=arches(), help="network family (default: detect)")
    ap.add_argument("--overwrite", action="store_true", help="replace DST if it already holds files")
    ap.add_argument("--no_dropout", action="store_true",
                    help="pix2pix: the U-Net was trained without dropout (its file cannot tell; default: with, as "
                         "pix2pix trains)")
    ap.add_argument("--domains", nargs="+", default=None,
                    help="StarGAN: the domain names in training order (default: the published models' - "
                         "5 domains: CelebA's Black_Hair Blond_Hair Brown_Hair Male Young; 8: RaFD's expressions)")
    ap.add_argument("--label_mode", choices=["attributes", "domains"], default=None,
                    help="StarGAN: multi-label CelebA attributes or one domain per image (RaFD); default: "
                         "attributes unless 8 RaFD domains")
    sp = ap.add_argument_group("SPADE (what its tensors do not hold; the published Cityscapes / ADE20K / COCO-Stuff "
                               "models are recognised by their label channels)")
    sp.add_argument("--crop_size", type=int, default=None, help="the training crop (image width)")
    sp.add_argument("--aspect_ratio", type=float, default=None, help="width / height")
    sp.add_argument("--num_upsampling_layers", choices=["normal", "more", "most"], default=None)
    sp.add_argument("--label_nc", type=int, default=None, help="label classes (don't-care aside)")
    sp.add_argument("--contain_dontcare_label", type=parse_bool, default=None, help="true / false")
    sp.add_argument("--no_instance", type=parse_bool, default=None, help="true / false")
    args = ap.parse_args(argv)

    from conversion import ConversionError, convert_file
    try:
        meta = convert_file(args.src, args.dst, args.arch, args.overwrite, args.no_dropout,
                            domains=args.domains, label_mode=args.label_mode,
                            **{k: getattr(args, k) for k in ("crop_size", "aspect_ratio", "num_upsampling_layers",
                                                             "label_nc", "contain_dontcare_label", "no_instance")})
    except ConversionError as e:
        return cli.fail(str(e))
    nets = ", ".join(f"{k} ({v['model']} {v['config']})" for k, v in meta["networks"].items())
    print(f"converted {' '.join(args.src)} [{meta['arch']}] -> {args.dst}: {nets}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
