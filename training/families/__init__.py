"""GAN families for the shared engine. A family is one module; add it here to make it trainable."""
from . import ugatit

FAMILIES = {"ugatit": ugatit}
