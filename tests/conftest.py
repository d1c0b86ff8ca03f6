import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from models import runtime  # noqa: E402  (sets the CPU runtime environment before any MindSpore op)

runtime.configure(mode="graph", device_target="CPU")
