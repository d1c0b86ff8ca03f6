"""Face detection and 68-point landmarks. dlib and torch/face-alignment are imported lazily here.

Defaults need no file from the network: dlib's HOG detector (built into dlib) and dlib's 68-point shape
predictor (shipped by the `face-recognition-models` package). face-alignment's FAN (PyTorch) and its SFD
detector are options that run only when their weight files are already on disk; a missing file is a clear
error that names the file and where to put it, never a download.
"""
import importlib.util
import os

import numpy as np


class ModelFileMissing(Exception):
    pass


FAN_FILE = "2DFAN4-11f355bf06.pth.tar"
SFD_FILE = "s3fd-619a316812.pth"


def _hub_checkpoint(name):
    import torch
    return os.path.join(torch.hub.get_dir(), "checkpoints", name)


def _require(path, what):
    if not os.path.isfile(path):
        raise ModelFileMissing(f"{what} weights not found: put {os.path.basename(path)} at {path} "
                               f"(nothing is downloaded; set TORCH_HOME to use another hub directory)")
    return path


def dlib_model_path(filename="shape_predictor_68_face_landmarks.dat"):
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ModelFileMissing("the face-recognition-models package is not installed (run make setup)")
    path = os.path.join(spec.submodule_search_locations[0], "models", filename)
    return _require(path, "dlib shape predictor")


def _box_area(b):
    return max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1])


class DlibHOGDetector:
    """dlib's frontal-face HOG detector. `upsample=0` first (upsampling found false faces); images whose
    faces may be small (short side under 400 px) are retried once with upsample 1 when nothing is found."""

    name = "dlib"

    def __init__(self, upsample=0):
        import dlib
        self._det = dlib.get_frontal_face_detector()
        self.upsample = upsample

    def __call__(self, rgb):
        boxes = self._run(rgb, self.upsample)
        if not boxes and self.upsample == 0 and min(rgb.shape[:2]) < 400:
            boxes = self._run(rgb, 1)
        return boxes

    def _run(self, rgb, upsample):
        dets, scores, _ = self._det.run(rgb, upsample, 0.0)
        out = [[float(d.left()), float(d.top()), float(d.right()), float(d.bottom()), float(s)]
               for d, s in zip(dets, scores)]
        return sorted(out, key=_box_area, reverse=True)


class SFDDetector:
    """face-alignment's S3FD detector (PyTorch), from `<torch hub>/checkpoints/s3fd-619a316812.pth`."""

    name = "sfd"

    def __init__(self, device="cpu", path=None):
        path = _require(path or _hub_checkpoint(SFD_FILE), "S3FD face detector")
        from face_alignment.detection.sfd.sfd_detector import SFDDetector as _SFD
        self._det = _SFD(device=device, path_to_detector=path)

    def __call__(self, rgb):
        boxes = self._det.detect_from_image(rgb[:, :, ::-1].copy())  # it expects BGR like cv2.imread
        out = [[float(b[0]), float(b[1]), float(b[2]), float(b[3]), float(b[4])] for b in boxes]
        return sorted(out, key=_box_area, reverse=True)


DETECTORS = {"dlib": DlibHOGDetector, "sfd": SFDDetector}


class DlibLandmarks:
    """dlib's 68-point shape predictor (iBUG 300-W layout, the same indexing as FAN)."""

    name = "dlib"

    def __init__(self, path=None):
        import dlib
        self._pred = dlib.shape_predictor(path or dlib_model_path())
        self._rect = dlib.rectangle

    def __call__(self, rgb, box):
        r = self._rect(int(round(box[0])), int(round(box[1])), int(round(box[2])), int(round(box[3])))
        shape = self._pred(rgb, r)
        return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)


class FANLandmarks:
    """face-alignment's 2D FAN (`LandmarksType.TWO_D`, `compile=False`), weights from the torch hub dir."""

    name = "fan"

    def __init__(self, device="cpu"):
        _require(_hub_checkpoint(FAN_FILE), "FAN 2D landmark")
        import face_alignment
        # face_detector="dlib" on CPU is dlib's HOG (no file); we pass our own boxes anyway.
        self._fa = face_alignment.FaceAlignment(face_alignment.LandmarksType.TWO_D, device=device,
                                                face_detector="dlib", flip_input=False, compile=False)

    def __call__(self, rgb, box):
        preds = self._fa.get_landmarks_from_image(rgb, detected_faces=[list(box[:4])])
        if not preds:
            return None
        return np.asarray(preds[0], dtype=np.float64)[:, :2]


LANDMARKERS = {"dlib": DlibLandmarks, "fan": FANLandmarks}
