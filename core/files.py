"""Writing outputs atomically: the file is written in a private temporary folder next to the target, then
renamed over the target.

A reader (or a crash) never sees a half-written file: the target is either the old file or the whole new
one. The temporary folder (".part-..." beside the target, so a leftover from a killed process is easy to tell
from an output) takes whatever side files a writer makes (MindSpore's save_checkpoint writes its own ".tmp"
first and leaves it behind when the disk is full); it is removed in every case. The file keeps the target's
name inside it (some writers append an extension to a name that lacks one).
"""
import contextlib
import json
import logging
import os
import shutil
import tempfile


def atomic_write(path, write):
    """Call write(tmp_path) to fill a temporary file next to `path`, then rename it to `path`. The folder is
    created if needed. On any error nothing of the attempt is left and the error is raised; `path` is
    untouched."""
    path = os.path.abspath(path)
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    tmp_dir = tempfile.mkdtemp(prefix=".part-", dir=folder)
    try:
        tmp = os.path.join(tmp_dir, os.path.basename(path))
        write(tmp)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return path


@contextlib.contextmanager
def quiet_mindspore_log():
    """MindSpore logs a failed checkpoint write as CRITICAL on stderr before raising; the caller reports the
    error itself, in one line."""
    lg = logging.getLogger(f"ME.mindspore.log.{os.getpid()}")
    level = lg.level
    lg.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        lg.setLevel(level)


def save_checkpoint_atomic(params, path):
    """mindspore.save_checkpoint(params, path), atomically (see atomic_write), its CRITICAL log kept quiet."""
    import mindspore as ms

    def write(tmp):
        with quiet_mindspore_log():
            ms.save_checkpoint(params, tmp)
    return atomic_write(path, write)


def write_bytes_atomic(path, data):
    def write(tmp):
        with open(tmp, "wb") as f:
            f.write(data)
    return atomic_write(path, write)


def write_text_atomic(path, text):
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path, obj, indent=2):
    return write_text_atomic(path, json.dumps(obj, indent=indent, sort_keys=True) + "\n")
