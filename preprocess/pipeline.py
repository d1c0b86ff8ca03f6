"""The face front end of photo2cartoon: detect -> 68 landmarks -> level the eyes -> square crop ->
segmentation mask -> soft composite on white -> resize.

    pipe = FacePipeline()                      # dlib HOG + dlib 68 points + selfie .tflite, all offline
    result = pipe.process(rgb)                 # PipelineResult(status, faces=[Face, ...])
    result.faces[0].image                      # size x size RGB on white, uint8
"""
from dataclasses import dataclass, field
from typing import List

import cv2
import numpy as np

from .align import crop, eye_angle, rotate
from .detect import DETECTORS, LANDMARKERS
from .segment import composite_on_white, make_segmenter

MIN_FACE_SIDE = 24   # a landmark box smaller than this (in pixels) is too small to align reliably
# Detections scoring under this fraction of the best one are dropped before "largest" is chosen: on the
# astronaut photo saved as a quality-75 JPEG, dlib's HOG also fires (score 0.07, vs 1.6 for the face) on a
# patch of the suit whose landmark box is larger than the real face's.
MIN_RELATIVE_SCORE = 0.3


@dataclass
class Face:
    image: np.ndarray            # size x size x 3 uint8, background white
    alpha: np.ndarray            # size x size float32 in [0, 1]
    crop_rgb: np.ndarray         # the aligned square crop before compositing (uint8), at crop resolution
    landmarks: np.ndarray        # 68 x 2, in output (size x size) coordinates
    landmarks_source: np.ndarray  # 68 x 2, in the input photo's coordinates
    box: list                    # detector box [x0, y0, x1, y1, score] in the input photo
    angle_deg: float             # rotation applied to level the eyes

    def rgba(self):
        a = np.clip(self.alpha * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.dstack([self.image, a])


@dataclass
class PipelineResult:
    status: str                  # ok | no_face | too_small
    faces: List[Face] = field(default_factory=list)
    n_detected: int = 0


class FacePipeline:
    def __init__(self, detector="dlib", landmarks="dlib", seg_model=None, size=256, faces="largest",
                 seg_input="input_1:0", seg_output="sigmoid/Sigmoid:0", device="cpu", segment=True):
        if detector not in DETECTORS:
            raise ValueError(f"unknown detector {detector}; choose from {', '.join(DETECTORS)}")
        if landmarks not in LANDMARKERS:
            raise ValueError(f"unknown landmarks {landmarks}; choose from {', '.join(LANDMARKERS)}")
        if faces not in ("largest", "all"):
            raise ValueError("faces must be 'largest' or 'all'")
        self.detect = DETECTORS[detector]() if detector == "dlib" else DETECTORS[detector](device=device)
        self.landmarks = LANDMARKERS[landmarks]() if landmarks == "dlib" else LANDMARKERS[landmarks](device=device)
        self.segment = make_segmenter(seg_model, seg_input, seg_output) if segment else None
        self.size = size
        self.faces = faces

    def process(self, rgb):
        boxes = self.detect(rgb)
        if not boxes:
            return PipelineResult("no_face")
        best = max(b[4] for b in boxes)
        if best > 0:
            boxes = [b for b in boxes if b[4] >= MIN_RELATIVE_SCORE * best]
        found = []
        for box in boxes:
            pts = self.landmarks(rgb, box)
            if pts is None:
                continue
            side = min(np.ptp(pts[:, 0]), np.ptp(pts[:, 1]))
            area = np.ptp(pts[:, 0]) * np.ptp(pts[:, 1])
            found.append((area, side, box, pts))
        if not found:
            return PipelineResult("no_face", n_detected=len(boxes))
        found.sort(key=lambda t: t[0], reverse=True)   # largest landmark box first, as photo2cartoon picks
        if self.faces == "largest":
            found = found[:1]
        usable = [f for f in found if f[1] >= MIN_FACE_SIDE]
        if not usable:
            return PipelineResult("too_small", n_detected=len(boxes))
        return PipelineResult("ok", [self._one(rgb, box, pts) for _, _, box, pts in usable], len(boxes))

    def _one(self, rgb, box, pts):
        angle = np.degrees(eye_angle(pts))
        rotated, pts_r = rotate(rgb, pts)
        face, pts_c = crop(rotated, pts_r)
        alpha = self.segment(face) if self.segment is not None else np.ones(face.shape[:2], np.float32)
        scale = self.size / face.shape[0]
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
        face_s = cv2.resize(face, (self.size, self.size), interpolation=interp)
        alpha_s = np.clip(cv2.resize(alpha, (self.size, self.size), interpolation=interp), 0.0, 1.0)
        out = composite_on_white(face_s, alpha_s)
        # pixel-centre convention of cv2.resize: x_out = (x_in + 0.5) * scale - 0.5
        pts_out = (pts_c + 0.5) * (self.size / face.shape[1]) - 0.5
        return Face(out, alpha_s.astype(np.float32), face, pts_out, pts, list(box), float(angle))
