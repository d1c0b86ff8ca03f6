"""GAN families for the shared engine. A family is one module; add it here to make it trainable."""
from . import cyclegan, pix2pix, stgan, ugatit

FAMILIES = {"ugatit": ugatit, "cyclegan": cyclegan, "pix2pix": pix2pix, "stgan": stgan}
