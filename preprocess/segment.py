"""Person/head segmentation, and the white-background composite.

- default: MediaPipe's selfie segmentation `.tflite` (Apache-2.0) that `make setup` extracts into
  pretrained_models/ (input 1x256x256x3 RGB in [0, 1], output 1x256x256x1 in [0, 1]), run by LiteRT
  (`ai_edge_litert`, TensorFlow Lite's standalone runtime; TensorFlow itself is not imported);
- `FrozenGraphSegmenter`: a frozen TF graph of the photo2cartoon kind (`seg_model_384.pb`: input
  `input_1:0`, 384x384 RGB / 255 resized with INTER_AREA; output `sigmoid/Sigmoid:0`), run by TensorFlow
  (imported only for it).
Both return a float alpha in [0, 1] of the input's height and width.
"""
import contextlib
import os
import sys

import cv2
import numpy as np

from .detect import ModelFileMissing

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_TFLITE = os.path.join(ROOT, "pretrained_models", "selfie_segmentation.tflite")


@contextlib.contextmanager
def _native_stderr_dropped():
    """TensorFlow's start-up chatter (its oneDNN notice, absl's "before InitializeLog" warning, TFLite's
    XNNPACK line) is written by C++ straight to file descriptor 2, past TF_CPP_MIN_LOG_LEVEL, and users read
    it as errors: fd 2 goes to /dev/null for the import and the interpreter's set-up. Python exceptions still
    propagate and are reported after it is restored."""
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _quiet_tf():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with _native_stderr_dropped():
        import tensorflow as tf
    return tf


class TFLiteSegmenter:
    name = "selfie"

    def __init__(self, path=None, threads=2):
        path = path or DEFAULT_TFLITE
        if not os.path.isfile(path):
            raise ModelFileMissing(f"segmentation model not found: {path} (run `make setup`, which extracts it "
                                   f"from the mediapipe wheel, or pass --seg_model FILE.pb)")
        with _native_stderr_dropped():
            # LiteRT, TensorFlow Lite's own runtime: the same interpreter (bit-identical masks here) without
            # importing TensorFlow, which cost 3.7 s of every cold test.py
            from ai_edge_litert.interpreter import Interpreter
            self._interp = Interpreter(model_path=path, num_threads=threads)
            self._interp.allocate_tensors()
            inp = self._interp.get_input_details()[0]
            self._in_idx = inp["index"]
            self._size = (int(inp["shape"][2]), int(inp["shape"][1]))  # (w, h)
            self._out_idx = self._interp.get_output_details()[0]["index"]
            self._interp.set_tensor(self._in_idx, np.zeros(inp["shape"], np.float32))
            self._interp.invoke()          # the delegate announces itself on the first run

    def __call__(self, rgb):
        h, w = rgb.shape[:2]
        x = cv2.resize(rgb, self._size, interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
        self._interp.set_tensor(self._in_idx, x[None])
        self._interp.invoke()
        out = self._interp.get_tensor(self._out_idx)[0, :, :, 0]
        return np.clip(cv2.resize(out, (w, h), interpolation=cv2.INTER_LINEAR), 0.0, 1.0)


class FrozenGraphSegmenter:
    name = "pb"

    def __init__(self, path, input_name="input_1:0", output_name="sigmoid/Sigmoid:0", size=384):
        if not os.path.isfile(path):
            raise ModelFileMissing(f"segmentation graph not found: {path}")
        tf = _quiet_tf()
        graph_def = tf.compat.v1.GraphDef()
        try:
            with open(path, "rb") as f:
                graph_def.ParseFromString(f.read())
        except Exception as e:
            raise ModelFileMissing(f"{path} is not a frozen TensorFlow graph ({type(e).__name__})") from None
        self._graph = tf.Graph()
        with self._graph.as_default():
            tf.compat.v1.import_graph_def(graph_def, name="")
        try:
            self._in = self._graph.get_tensor_by_name(input_name)
            self._out = self._graph.get_tensor_by_name(output_name)
        except (KeyError, ValueError) as e:
            raise ModelFileMissing(f"{path}: {str(e).splitlines()[0]} (set --seg_input/--seg_output)") from None
        self._sess = tf.compat.v1.Session(graph=self._graph)
        self._size = size

    def __call__(self, rgb):
        h, w = rgb.shape[:2]
        x = cv2.resize(rgb, (self._size, self._size), interpolation=cv2.INTER_AREA) / 255.0
        out = self._sess.run(self._out, feed_dict={self._in: x[None].astype(np.float32)})[0]
        out = np.asarray(out, dtype=np.float32).reshape(self._size, self._size, -1)[:, :, 0]
        return np.clip(cv2.resize(out, (w, h)), 0.0, 1.0)


def make_segmenter(seg_model=None, input_name="input_1:0", output_name="sigmoid/Sigmoid:0"):
    if seg_model is None or seg_model.endswith(".tflite"):
        return TFLiteSegmenter(seg_model)
    return FrozenGraphSegmenter(seg_model, input_name, output_name)


def composite_on_white(rgb, alpha):
    """`img * a + 255 * (1 - a)` with a soft alpha in [0, 1]; returns uint8."""
    a = alpha.astype(np.float32)[:, :, None]
    return np.clip(rgb.astype(np.float32) * a + 255.0 * (1.0 - a) + 0.5, 0, 255).astype(np.uint8)
