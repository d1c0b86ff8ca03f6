"""Small helpers shared by the entry points (error reporting, quiet framework start-up)."""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("GLOG_v", "3")


def fail(message, code=1):
    """Print a one-line (or short, listed) error for the user and return the exit code."""
    print(f"error: {message}", file=sys.stderr)
    return code
