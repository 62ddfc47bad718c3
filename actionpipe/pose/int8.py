"""The INT8 pose model (``--pose-precision int8``): NNCF post-training quantisation of the FP32
OpenVINO export, built once into the same cache by :func:`~actionpipe.pose.openvino.cached_export`.

``nncf.quantize`` (preset MIXED: symmetric weights, asymmetric activations; no model type)
calibrates on fixed frames of ``squat.mp4``, the sample video the wheel ships
(``actionpipe.samples``; FitnessScape, CC BY 3.0, credits in its README), shrunk by the decoder and
letterboxed by :func:`~actionpipe.pose.openvino.preprocess` as at run time. As ultralytics' own INT8
export does, the head's decoding stays in float: every Sigmoid and every operation in the scope of
the head itself and of its DFL (anchors, strides, box and keypoint decoding); the head's
convolutions are quantised. The folder is named by the weights' SHA-256, the OpenVINO and NNCF
versions and a hash of :func:`recipe`; nncf is imported only while building.
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import importlib.resources
import json
import logging
import re
import sys
from pathlib import Path

from actionpipe.core import console
from actionpipe.core.errors import ActionpipeError
from actionpipe.core.fileio import sha256_file
from actionpipe.pose.openvino import EXPORT_VERSION, cache_root, cached_export, ensure_export, preprocess
from actionpipe.video.reader import read_frames

RECIPE_VERSION = 1
CALIBRATION_VIDEO = "squat.mp4"
CALIBRATION_FRAMES = range(0, 200, 2)  # 100 of its 213 frames, spread over its four repetitions
CALIBRATION_IMGSZ = 640                # the shipped cards' pose size
SUBSET_SIZE = len(CALIBRATION_FRAMES)  # every calibration frame, always in the same order
NNCF_REQUIREMENT = "nncf==3.4.0"


def nncf_version() -> str:
    """The installed NNCF's version, read without importing it (seconds of start-up)."""
    try:
        return importlib.metadata.version("nncf")
    except importlib.metadata.PackageNotFoundError:
        raise ActionpipeError(None, f"--pose-precision int8 needs NNCF to build its model: "
                                    f"pip install {NNCF_REQUIREMENT}") from None


def calibration_video() -> Path:
    path = Path(str(importlib.resources.files("actionpipe.samples") / CALIBRATION_VIDEO))
    if not path.is_file():
        raise ActionpipeError(path, "the INT8 pose model's calibration video is missing (reinstall actionpipe)")
    return path


def float_head(model) -> dict:
    """What stays in float in ``model`` (an ``openvino.Model``): the head's scope is found as
    ultralytics finds it, from the last Sigmoid (the keypoints' visibility)."""
    sigmoids = [op.get_friendly_name() for op in model.get_ordered_ops() if op.get_type_name() == "Sigmoid"]
    if not sigmoids:
        raise ActionpipeError(None, "the pose model has no Sigmoid: not a YOLO pose head, cannot quantise it to INT8")
    head = re.escape(sigmoids[-1].split("/", 1)[0])
    return {"types": ["Sigmoid"], "patterns": [f"{head}/.*", rf"{head}\.dfl.*"]}  # nncf: re.match


def recipe(model) -> dict:
    """Everything the INT8 model depends on besides the weights and the library versions."""
    frames = CALIBRATION_FRAMES
    return {"version": RECIPE_VERSION, "fp32_export_version": EXPORT_VERSION, "preset": "mixed",
            "model_type": None, "subset_size": SUBSET_SIZE, "ignored": float_head(model),
            "calibration": {"video": CALIBRATION_VIDEO, "video_sha256": sha256_file(calibration_video()),
                            "frames": [frames.start, frames.stop, frames.step], "imgsz": CALIBRATION_IMGSZ}}


def int8_dir(weights_sha256: str, recipe: dict) -> Path:
    import openvino

    key = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]
    version = openvino.__version__.split("-")[0]
    return cache_root() / "pose-openvino-int8" / f"{weights_sha256[:16]}-ov{version}-nncf{nncf_version()}-{key}"


def calibration_images(recipe: dict) -> list:
    """The recipe's frames of the calibration video, BGR, shrunk to its size as the decoder does."""
    calibration = recipe["calibration"]
    wanted = set(range(*calibration["frames"]))
    images = [f.image for f in read_frames(calibration_video(), max_side=calibration["imgsz"])
              if f.source_index in wanted]
    if len(images) != len(wanted):
        raise ActionpipeError(calibration_video(), f"has {len(images)} of the {len(wanted)} calibration frames")
    return images


def _quantize(model, recipe: dict, folder: Path) -> None:
    # nncf imports torch's extension builder, which warns on every CUDA-less machine
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    import nncf
    import openvino as ov

    images, imgsz = calibration_images(recipe), recipe["calibration"]["imgsz"]
    nncf.set_log_level(logging.ERROR)
    with contextlib.redirect_stdout(sys.stderr):  # its progress bars: never into --json output
        quantized = nncf.quantize(
            model, nncf.Dataset(images, lambda image: preprocess([image], imgsz)),
            preset=nncf.QuantizationPreset.MIXED, model_type=None, subset_size=recipe["subset_size"],
            ignored_scope=nncf.IgnoredScope(patterns=recipe["ignored"]["patterns"],
                                            types=recipe["ignored"]["types"]))
    ov.save_model(quantized, folder / "model.xml", compress_to_fp16=False)
    (folder / "recipe.json").write_text(json.dumps(recipe, indent=1))  # for people; the name is the key


def ensure_int8(load_yolo, weights_sha256: str) -> Path:
    """The verified INT8 model folder for these weights, building it (and the FP32 export it comes
    from) first when missing or damaged. ``load_yolo`` as for :func:`~actionpipe.pose.openvino.ensure_export`."""
    import openvino as ov

    nncf_version()  # a missing NNCF fails before any export
    model = ov.Core().read_model(ensure_export(load_yolo, weights_sha256) / "model.xml")
    rec = recipe(model)

    def build(folder: Path) -> None:
        console.info(f"building the INT8 pose model (NNCF calibration on {rec['subset_size']} frames; "
                     "once: about 15 s on 2 cores)")
        _quantize(model, rec, folder)

    return cached_export(int8_dir(weights_sha256, rec), weights_sha256, build, "the INT8 pose model",
                         RECIPE_VERSION)
