"""The OpenVINO pose backend: YOLO pose weights exported once into a cache, then letterbox and NMS in numpy.

The export (torch trace -> ``openvino.convert_model``, dynamic batch and picture size, FP32 weights)
runs offline from the same ``.pt`` file the torch backend loads. It is cached under
:func:`cache_root` in a folder named by the weights' SHA-256, the OpenVINO version and
:data:`EXPORT_VERSION`; a ``manifest.json`` records the SHA-256 of the files, checked on every load.
The folder is written under a temporary name and renamed into place, so two processes exporting
at once each finish and one of the two identical results stays. Compiled models (per precision
and input shape) are cached by OpenVINO itself in ``compiled/`` beside them.

Pre- and post-processing repeat ultralytics' predict path step for step (``LetterBox`` with the
minimum rectangle, BGR -> RGB / 255, ``non_max_suppression`` with torchvision's NMS rule,
``scale_boxes`` / ``scale_coords``), so at FP32 the keypoints are the torch backend's.
"""
from __future__ import annotations

import functools
import json
import math
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import cv2
import numpy as np

from actionpipe.core.devices import POSE_PRECISIONS
from actionpipe.core.errors import ActionpipeError
from actionpipe.core.fileio import sha256_file

EXPORT_VERSION = 1
STRIDE = 32           # YOLO11's largest stride: the letterboxed sides are multiples of it
PAD_VALUE = 114       # ultralytics' letterbox grey
IOU = 0.7             # ultralytics' predict default
MAX_DET = 300
MAX_NMS = 30000
# devices.POSE_PRECISIONS -> OpenVINO's INFERENCE_PRECISION_HINT. int8 (pose.int8's model): its
# quantised operations run in int8 whatever the hint; f32 keeps the rest (the head's decoding) in
# f32, where a CPU with bf16 units would default to bf16.
PRECISIONS = {"fp32": "f32", "bf16": "bf16", "int8": "f32"}
FILES = ("model.xml", "model.bin")


@functools.lru_cache(maxsize=1)
def native_precisions() -> frozenset[str]:
    """Which of :data:`PRECISIONS` this CPU computes natively (OpenVINO's optimization capabilities)."""
    import openvino as ov

    capabilities = set(ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))
    return frozenset(name for name in PRECISIONS if name.upper() in capabilities)


def cache_root() -> Path:
    """``$ACTIONPIPE_CACHE``, else ``$XDG_CACHE_HOME/actionpipe``, else ``~/.cache/actionpipe``."""
    if os.environ.get("ACTIONPIPE_CACHE"):
        return Path(os.environ["ACTIONPIPE_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "actionpipe"


def export_dir(weights_sha256: str) -> Path:
    import openvino

    version = openvino.__version__.split("-")[0]
    return cache_root() / "pose-openvino" / f"{weights_sha256[:16]}-ov{version}-v{EXPORT_VERSION}"


def _manifest_ok(folder: Path, weights_sha256: str) -> bool:
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError):
        return False
    return (manifest.get("weights_sha256") == weights_sha256
            and all((folder / f).is_file() and sha256_file(folder / f) == manifest.get("files", {}).get(f)
                    for f in FILES))


def _export(yolo, folder: Path) -> None:
    """Trace the fused model with its head in export mode (decoded boxes, scores, keypoints as one
    ``(B, 4 + 1 + 51, anchors)`` tensor, anchors computed from the input's size) and save it."""
    import openvino as ov
    import torch
    from ultralytics.nn.modules import Detect

    model = yolo.model
    for p in model.parameters():
        p.requires_grad = False
    model = model.eval().float().fuse(verbose=False)
    for m in model.modules():
        if isinstance(m, Detect):
            m.dynamic, m.export, m.format = True, True, "openvino"
    example = torch.zeros(1, 3, 384, 640)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # torch.jit.trace's deprecation notice
        traced = torch.jit.trace(model, example, strict=False, check_trace=False)
        ov_model = ov.convert_model(traced, input=[ov.PartialShape([-1, 3, -1, -1])], example_input=example)
    ov.save_model(ov_model, folder / "model.xml", compress_to_fp16=False)


def ensure_export(load_yolo, weights_sha256: str) -> Path:
    """The verified export folder for these weights, exporting first if it is missing or damaged.

    ``load_yolo``: returns the ultralytics model (called only when an export is needed).
    """
    return cached_export(export_dir(weights_sha256), weights_sha256, lambda tmp: _export(load_yolo(), tmp),
                         "the pose model", EXPORT_VERSION)


def cached_export(folder: Path, weights_sha256: str, export, what: str, export_version: int) -> Path:
    """``folder``, verified by its manifest (the weights' hash, each file's hash), after
    ``export(tmp)`` wrote ``model.xml``/``model.bin`` into a fresh folder when it was missing or
    damaged. The pose model's export and the ST-GCN's (:mod:`actionpipe.model.openvino_stgcn`) share it."""
    import openvino as ov

    if _manifest_ok(folder, weights_sha256):
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=folder.name + ".tmp-", dir=folder.parent))
    try:
        export(tmp)
        manifest = {"weights_sha256": weights_sha256, "export_version": export_version,
                    "openvino": ov.__version__, "files": {f: sha256_file(tmp / f) for f in FILES}}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
        if folder.exists() and not _manifest_ok(folder, weights_sha256):
            shutil.rmtree(folder, ignore_errors=True)  # damaged: replaced by the fresh export
        try:
            os.rename(tmp, folder)
        except OSError:  # another process renamed its (identical) export into place first
            pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if not _manifest_ok(folder, weights_sha256):
        raise ActionpipeError(folder, f"OpenVINO export of {what} failed verification")
    return folder


def letterbox_params(shape: tuple[int, int], imgsz: int, auto: bool) -> tuple[tuple[int, int], tuple[int, int, int, int]]:
    """``(new_w, new_h), (top, bottom, left, right)`` as ultralytics' ``LetterBox`` computes them."""
    h, w = shape
    r = min(imgsz / h, imgsz / w)
    new_w, new_h = max(round(w * r), 1), max(round(h * r), 1)
    dw, dh = imgsz - new_w, imgsz - new_h
    if auto:
        dw, dh = dw % STRIDE, dh % STRIDE
    dw, dh = dw / 2, dh / 2
    return (new_w, new_h), (round(dh - 0.1), round(dh + 0.1), round(dw - 0.1), round(dw + 0.1))


def preprocess(images: Sequence[np.ndarray], imgsz: int) -> np.ndarray:
    """BGR uint8 images -> the model's float32 ``(B, 3, H, W)`` RGB input in 0..1 (one shape for all:
    the minimum rectangle when the images share a size, else the ``imgsz`` square)."""
    auto = len({im.shape for im in images}) == 1
    batch = []
    for im in images:
        size, (top, bottom, left, right) = letterbox_params(im.shape[:2], imgsz, auto)
        if (im.shape[1], im.shape[0]) != size:
            im = cv2.resize(im, size, interpolation=cv2.INTER_LINEAR)
        batch.append(cv2.copyMakeBorder(im, top, bottom, left, right, cv2.BORDER_CONSTANT,
                                        value=(PAD_VALUE,) * 3))
    x = np.stack(batch)[..., ::-1].transpose(0, 3, 1, 2)
    return np.ascontiguousarray(x, dtype=np.float32) / np.float32(255)


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Greedy NMS, torchvision's rule: by descending score, drop boxes with IoU > ``iou`` to a kept one."""
    x1, y1, x2, y2 = boxes.T
    areas = (x2 - x1) * (y2 - y1)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        w = np.maximum(np.float32(0), np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]))
        h = np.maximum(np.float32(0), np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]))
        inter = w * h
        order = rest[inter / (areas[i] + areas[rest] - inter) <= iou]
    return np.array(keep, dtype=np.int64)


def _unletterbox(xy: np.ndarray, model_hw: tuple[int, int], image_hw: tuple[int, int]) -> None:
    """Model-input pixels -> image pixels in place (ultralytics' ``scale_coords``), clipped to the image."""
    gain = min(model_hw[0] / image_hw[0], model_hw[1] / image_hw[1])
    new_h, new_w = (max(round(s * gain), 1) for s in image_hw)
    pad_x, pad_y = round((model_hw[1] - new_w) / 2 - 0.1), round((model_hw[0] - new_h) / 2 - 0.1)
    xy[..., 0] = np.clip((xy[..., 0] - pad_x) / np.float32(new_w / image_hw[1]), 0, image_hw[1])
    xy[..., 1] = np.clip((xy[..., 1] - pad_y) / np.float32(new_h / image_hw[0]), 0, image_hw[0])


def postprocess(pred: np.ndarray, model_hw: tuple[int, int], image_hw: tuple[int, int],
                conf: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One image's ``(56, anchors)`` output -> boxes ``(n, 4)`` xyxy, scores ``(n,)``, keypoints
    ``(n, 17, 3)`` in image pixels, best first (ultralytics' ``non_max_suppression`` for one class)."""
    x = pred[:, pred[4] > conf].T
    if len(x) > MAX_NMS:
        x = x[np.argsort(-x[:, 4], kind="stable")[:MAX_NMS]]
    xy, half_wh = x[:, :2], x[:, 2:4] / 2
    boxes = np.concatenate([xy - half_wh, xy + half_wh], axis=1)
    keep = nms(boxes, x[:, 4], IOU)[:MAX_DET]
    boxes, scores, kpts = boxes[keep], x[keep, 4], x[keep, 5:].reshape(len(keep), (x.shape[1] - 5) // 3, 3).copy()
    _unletterbox(boxes.reshape(-1, 2, 2), model_hw, image_hw)
    _unletterbox(kpts, model_hw, image_hw)
    return boxes, scores, kpts


class OpenVinoPose:
    """The exported pose model compiled for the CPU at one precision and thread count (``folder``:
    the FP32 export, or for int8 :func:`actionpipe.pose.int8.ensure_int8`'s model)."""

    def __init__(self, folder: Path, precision: str = "fp32", threads: int | None = None):
        import openvino as ov

        if precision not in POSE_PRECISIONS:
            raise ActionpipeError(None, f"pose precision must be one of {', '.join(POSE_PRECISIONS)}, got {precision!r}")
        core = ov.Core()
        core.set_property({"CACHE_DIR": str(folder / "compiled")})
        config = {"INFERENCE_PRECISION_HINT": PRECISIONS[precision], "PERFORMANCE_HINT": "LATENCY"}
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        self.compiled = core.compile_model(core.read_model(folder / "model.xml"), "CPU", config)
        self.requests = [self.compiled.create_infer_request() for _ in range(2)]

    def __call__(self, images: Sequence[np.ndarray], imgsz: int, conf: float):
        """Per image: boxes, scores, keypoints (see :func:`postprocess`)."""
        return next(self.stream([images], imgsz, conf))

    def stream(self, batches: Iterable[Sequence[np.ndarray]], imgsz: int, conf: float) -> Iterator[list]:
        """:meth:`__call__` of each batch, in order, one batch ahead: while the caller works on a
        batch's results (tracking), the model already runs on the next one (its threads release
        the GIL), and letterboxing the next batch overlaps the model's run on this one."""
        pending = None
        try:
            for i, images in enumerate(batches):
                x = preprocess(images, imgsz)
                request = self.requests[i % 2]  # the other one is still pending, or consumed
                request.start_async({0: x})
                if pending is not None:
                    yield self._collect(*pending, conf)
                pending = (request, images, x.shape[2:])
            if pending is not None:
                yield self._collect(*pending, conf)
        finally:  # a video that fails to decode mid-way must not leave a request running
            for request in self.requests:
                request.wait()

    @staticmethod
    def _collect(request, images, model_hw, conf: float) -> list:
        request.wait()
        pred = request.get_output_tensor(0).data
        return [postprocess(p, model_hw, im.shape[:2], conf) for p, im in zip(pred, images)]
