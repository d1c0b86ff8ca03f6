"""Writing outputs atomically: a temporary file in the target's folder, then a rename over the target.

A reader (or a crash) never sees a half-written file: the target is either the old file or the whole new
one. The temporary name keeps the target's extension (some writers, such as MindSpore's save_checkpoint,
append one to a name that lacks it) and starts with ".part-", so a leftover from a killed process is easy to
tell from an output.
"""
import json
import os
import tempfile


def atomic_write(path, write):
    """Call write(tmp_path) to fill a temporary file next to `path`, then rename it to `path`. The folder is
    created if needed. On any error the temporary file is removed and the error raised; `path` is untouched."""
    path = os.path.abspath(path)
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".part-", suffix=os.path.splitext(path)[1], dir=folder)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def write_bytes_atomic(path, data):
    def write(tmp):
        with open(tmp, "wb") as f:
            f.write(data)
    return atomic_write(path, write)


def write_text_atomic(path, text):
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path, obj, indent=2):
    return write_text_atomic(path, json.dumps(obj, indent=indent, sort_keys=True) + "\n")
