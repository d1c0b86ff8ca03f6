"""Batch processing of a file or a folder of photos into aligned faces on white (data_process.py).

- outputs mirror the input tree under the save path, as `.png` (`name.png`, or `name_<k>.png` with
  `faces="all"`); optional RGBA copies under `rgba_path`;
- resumable: an input whose manifest row already exists (and whose outputs exist) is skipped unless
  `overwrite`; rows are appended to `manifest.partial.jsonl` as they finish, and the final
  `manifest.jsonl` (one row per input, sorted) is written atomically at the end;
- bad input never stops the batch: each input gets a status (ok, no_face, too_small, unreadable,
  too_large, missing, error) and its landmarks when ok.
"""
import errno
import json
import os
import time
from collections import Counter
from multiprocessing import get_context

import numpy as np

from data.images import ImageReadError, list_images, read_rgb, write_image_atomic

MANIFEST = "manifest.jsonl"
PARTIAL = "manifest.partial.jsonl"
# write failures that concern the output folder, not the input: the batch stops at the first one
WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM}


class OutputWriteError(Exception):
    """The output folder cannot take more files (full, read-only): the batch stopped; one line."""

_PIPE = None


def _init_worker(pipe_kwargs):
    global _PIPE
    from .pipeline import FacePipeline
    _PIPE = FacePipeline(**pipe_kwargs)


def output_names(rel, faces_mode, n):
    stem = os.path.splitext(rel)[0]
    if faces_mode == "largest":
        return [stem + ".png"]
    return [f"{stem}_{k}.png" for k in range(n)]


def _process_one(job):
    src, rel, save_path, rgba_path, faces_mode = job
    row = {"input": rel}
    t0 = time.time()
    try:
        rgb = read_rgb(src)
        res = _PIPE.process(rgb)
        row["status"] = res.status
        row["n_detected"] = res.n_detected
        if res.status == "ok":
            names = output_names(rel, faces_mode, len(res.faces))
            row["outputs"], row["faces"] = names, []
            for name, face in zip(names, res.faces):
                write_image_atomic(os.path.join(save_path, name), face.image)
                if rgba_path:
                    write_image_atomic(os.path.join(rgba_path, name), face.rgba())
                row["faces"].append({
                    "landmarks": np.round(face.landmarks, 2).tolist(),
                    "landmarks_input": np.round(face.landmarks_source, 2).tolist(),
                    "box": [round(v, 2) for v in face.box], "angle_deg": round(face.angle_deg, 3)})
    except ImageReadError as e:
        row["status"], row["reason"] = e.status, str(e)
    except OSError as e:
        if e.errno not in WRITE_ERRNOS:
            raise
        row["status"], row["reason"] = "write_failed", e.strerror or str(e)
    except Exception as e:  # an unexpected failure on one file must not stop the batch
        row["status"], row["reason"] = "error", f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    row["seconds"] = round(time.time() - t0, 4)
    return row


def _read_rows(path):
    rows = {}
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                try:
                    r = json.loads(line)
                    rows[r["input"]] = r
                except (ValueError, KeyError, TypeError):
                    continue   # a line cut by a kill: that input is simply redone
    return rows


def _done(row, save_path, rgba_path):
    if row.get("status") != "ok":
        return row.get("status") not in (None, "error")
    for name in row.get("outputs", []):
        if not os.path.isfile(os.path.join(save_path, name)):
            return False
        if rgba_path and not os.path.isfile(os.path.join(rgba_path, name)):
            return False
    return True


def _write_manifest(save_path, rows):
    from core.files import write_text_atomic
    write_text_atomic(os.path.join(save_path, MANIFEST),
                      "".join(json.dumps(rows[key], sort_keys=True) + "\n" for key in sorted(rows)))


def run_batch(data_path, save_path, pipe_kwargs, workers=1, overwrite=False, rgba_path=None, progress=True):
    """Process every image under `data_path`; returns (Counter of statuses, rows by input)."""
    from tqdm import tqdm

    data_path = os.path.abspath(data_path)
    save_path = os.path.abspath(save_path)
    if os.path.commonpath([data_path, save_path]) == data_path and os.path.isdir(data_path):
        raise ValueError("--save_path must not be inside --data_path (inputs are never modified)")
    files = list_images(data_path)
    base = data_path if os.path.isdir(data_path) else os.path.dirname(data_path)
    os.makedirs(save_path, exist_ok=True)
    previous = {} if overwrite else {**_read_rows(os.path.join(save_path, MANIFEST)),
                                     **_read_rows(os.path.join(save_path, PARTIAL))}
    rows, jobs = {}, []
    faces_mode = pipe_kwargs.get("faces", "largest")
    for src in files:
        rel = os.path.relpath(src, base)
        prev = previous.get(rel)
        if prev is not None and _done(prev, save_path, rgba_path):
            rows[rel] = prev
        else:
            jobs.append((src, rel, save_path, rgba_path, faces_mode))
    partial_path = os.path.join(save_path, PARTIAL)
    if jobs:
        with open(partial_path, "a", encoding="utf-8") as partial:
            bar = tqdm(total=len(jobs), desc="faces", unit="img", disable=not progress, dynamic_ncols=True)
            if workers <= 1:
                _init_worker(pipe_kwargs)
                results = map(_process_one, jobs)
                pool = None
            else:
                pool = get_context("spawn").Pool(workers, initializer=_init_worker, initargs=(pipe_kwargs,))
                results = pool.imap_unordered(_process_one, jobs, chunksize=1)
            failed = None
            try:
                for row in results:
                    if row["status"] == "write_failed":
                        failed = row
                        break
                    rows[row["input"]] = row
                    partial.write(json.dumps(row, sort_keys=True) + "\n")
                    partial.flush()
                    bar.update(1)
            finally:
                bar.close()
                if pool is not None:
                    pool.terminate()
            if failed is not None:   # the rows written so far stay in the partial manifest: a rerun resumes
                raise OutputWriteError(f"cannot write the face of {failed['input']} under {save_path}: "
                                       f"{failed['reason']} ({len(rows)} inputs done; rerun to resume)")
    _write_manifest(save_path, rows)
    if os.path.exists(partial_path):
        os.unlink(partial_path)
    return Counter(r["status"] for r in rows.values()), rows, len(files) - len(jobs)
