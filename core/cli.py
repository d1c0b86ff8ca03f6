"""Shared by the entry points: quiet framework start-up and one-line errors for the user.

Importing this module sets environment defaults that must be in place before TensorFlow or MindSpore load:
their C++ logging (start-up chatter that users read as errors) goes to errors only. A user's own setting
wins.
"""
import os
import signal
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("GLOG_v", "3")
if hasattr(signal, "SIGXFSZ"):
    # a file-size limit (ulimit -f) makes a write fail with EFBIG, reported like a full disk, instead of
    # killing the process halfway through a file
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


class UserError(Exception):
    """A problem with the user's input, reported as one line (no traceback)."""


def os_error_text(e):
    """An OSError as a short reason ("No space left on device"), without errno numbers or paths."""
    return e.strerror or str(e).splitlines()[0] or type(e).__name__


def writable_dir(path, what):
    """Create `path` if needed and check that files can be created in it; a UserError in one line if not."""
    import tempfile
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.NamedTemporaryFile(prefix=".write-test-", dir=path):
            pass
    except OSError as e:
        raise UserError(f"cannot write to {what} {path}: {os_error_text(e)}") from None
    return path


def fail(message, code=1):
    """Print a one-line (or short, listed) error for the user and return the exit code."""
    print(f"error: {message}", file=sys.stderr)
    return code


def peek_flag(argv, flag, default):
    """--flag VALUE / --flag=VALUE from argv without parsing the rest (used to pick the family whose own flags
    then join the parser)."""
    for i, a in enumerate(argv):
        if a == flag and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return default


def parse_family_args(argv, build_parser, flags_of):
    """Two passes, as junyanz's options do: --model picks the family (families registry), whose own flags then
    join the parser (`build_parser(family)`). A flag that belongs to another family (`flags_of(family)`: its
    option names) is refused with one line naming that family. Returns (family, args)."""
    import sys
    from families import get_family, list_families
    argv = list(sys.argv[1:] if argv is None else argv)
    name = peek_flag(argv, "--model", "ugatit")
    family = get_family(name) if name in list_families() else get_family("ugatit")
    ap = build_parser(family)
    args, unknown = ap.parse_known_args(argv)
    if unknown:
        flag = unknown[0].split("=", 1)[0]
        owners = [n for n in list_families() if flag in {"--" + o for o in flags_of(get_family(n))}]
        if owners:
            ap.error(f"{flag} does not apply to --model {family.name} (it is an option of {', '.join(owners)})")
        ap.error(f"unrecognized arguments: {' '.join(unknown)}")
    return family, args
