"""The OpenVINO pose backend: the torch backend's keypoints on real frames, its cache, its pieces."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from actionpipe.pose import openvino as pose_openvino
from actionpipe.core.devices import cpu_threads, resolve_pose_backend
from actionpipe.pose.estimator import WEIGHTS_SHA256, PoseEstimator, _load_yolo, default_weights
from actionpipe.video.reader import read_frames

from helpers import SHARED


@pytest.fixture(scope="module")
def backends():
    # fp32 on both: the comparisons below are of the runtimes, not of the precisions.
    return {name: PoseEstimator(imgsz=640, device="cpu", backend=name, precision="fp32") for name in ("torch", "openvino")}


def real_frames(demo_video, ultralytics_assets) -> list[list[np.ndarray]]:
    """Batches of real pictures: demo video frames (1768x994, shrunk as the pipeline does), the
    bus and zidane photos (different sizes in one batch: the square letterbox)."""
    demo = [f.image for f in read_frames(demo_video, fps=2, max_side=640)][:8]
    photos = [cv2.imread(str(ultralytics_assets / n)) for n in ("bus.jpg", "zidane.jpg")]
    batches = [demo[:4], demo[4:], photos]
    dev = SHARED / "datasets" / "realvideo_dev" / "videos"  # portrait and broadcast footage, when present
    for clip in ("squat__michpapadum-squat.mp4", "tennis_serve__sujaldaga-1.mp4") if dev.is_dir() else ():
        batches.append([f.image for f in read_frames(dev / clip, fps=3, max_side=640)][:4])
    return batches


def test_fp32_keypoints_are_the_torch_backends(backends, demo_video, ultralytics_assets):
    compared = 0
    for images in real_frames(demo_video, ultralytics_assets):
        got = backends["openvino"]._infer(images)
        want = backends["torch"]._infer(images)
        for (gb, gs, gk), (wb, ws, wk) in zip(got, want):
            assert len(gb) == len(wb)
            if len(wb):
                # Same network, other kernels: float32 rounding only (hundredths of a pixel).
                np.testing.assert_allclose(gb, wb, atol=0.02)
                np.testing.assert_allclose(gk[..., :2], wk[..., :2], atol=0.02)
                np.testing.assert_allclose(gk[..., 2], wk[..., 2], atol=1e-4)
                np.testing.assert_allclose(gs, ws, atol=1e-4)
                compared += len(wb)
    assert compared >= 15  # 19 in the demo frames and photos alone


def test_letterbox_matches_ultralytics():
    from ultralytics.data.augment import LetterBox

    rng = np.random.default_rng(0)
    for h, w, imgsz in ((994, 1768, 640), (360, 202, 640), (1918, 1080, 320), (240, 320, 640), (7, 300, 96)):
        image = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        for auto in (True, False):
            want = LetterBox(imgsz, auto=auto, stride=32)(image=image)
            got = pose_openvino.preprocess([image] if auto else [image, image[:, :-1]], imgsz)[0]
            np.testing.assert_array_equal(got, want[..., ::-1].transpose(2, 0, 1).astype(np.float32) / 255)


def test_nms_matches_torchvision():
    import torch
    import torchvision

    rng = np.random.default_rng(1)
    for n in (0, 1, 50, 400):
        xy = rng.uniform(0, 600, (n, 2)).astype(np.float32)
        boxes = np.concatenate([xy, xy + rng.uniform(5, 120, (n, 2)).astype(np.float32)], axis=1)
        scores = rng.uniform(0.2, 1, n).astype(np.float32)
        want = torchvision.ops.nms(torch.from_numpy(boxes), torch.from_numpy(scores), 0.7).numpy()
        np.testing.assert_array_equal(pose_openvino.nms(boxes, scores, 0.7), want)


def test_cache_is_verified_and_a_damaged_export_is_replaced(tmp_path, monkeypatch):
    monkeypatch.setenv("ACTIONPIPE_CACHE", str(tmp_path))
    calls = []

    def load():
        calls.append(1)
        return _load_yolo(default_weights())

    folder = pose_openvino.ensure_export(load, WEIGHTS_SHA256)
    assert folder.parent == tmp_path / "pose-openvino" and WEIGHTS_SHA256[:16] in folder.name
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["weights_sha256"] == WEIGHTS_SHA256 and set(manifest["files"]) == {"model.xml", "model.bin"}
    assert pose_openvino.ensure_export(load, WEIGHTS_SHA256) == folder and len(calls) == 1  # cached
    with open(folder / "model.bin", "r+b") as f:  # one flipped byte: verification fails, export again
        f.seek(1000)
        byte = f.read(1)
        f.seek(1000)
        f.write(bytes([byte[0] ^ 0xFF]))
    assert pose_openvino.ensure_export(load, WEIGHTS_SHA256) == folder and len(calls) == 2
    assert pose_openvino._manifest_ok(folder, WEIGHTS_SHA256)
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]  # no temporary folders left


@pytest.mark.slow
def test_two_processes_exporting_at_once_both_succeed(tmp_path):
    code = ("from actionpipe.pose.estimator import WEIGHTS_SHA256, _load_yolo, default_weights; "
            "from actionpipe.pose.openvino import ensure_export; "
            "print(ensure_export(lambda: _load_yolo(default_weights()), WEIGHTS_SHA256))")
    env = dict(os.environ, ACTIONPIPE_CACHE=str(tmp_path), OMP_NUM_THREADS="1")
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=600)[0].strip().splitlines()[-1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0] and outs[0] == outs[1]
    folder = Path(outs[0])
    assert pose_openvino._manifest_ok(folder, WEIGHTS_SHA256)
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]


def test_backend_choice_and_provenance(backends, monkeypatch):
    assert resolve_pose_backend("auto", "cpu") == "openvino"
    assert resolve_pose_backend("auto", "cuda:0") == "torch"
    assert resolve_pose_backend("torch", "cpu") == "torch"
    with pytest.raises(Exception, match="runs on the CPU"):
        resolve_pose_backend("openvino", "cuda:0")
    with pytest.raises(Exception, match="pose-backend must be"):
        resolve_pose_backend("onnx", "cpu")
    ov = backends["openvino"].backend()
    assert ov["name"] == "openvino" and ov["precision"] == "fp32" and ov["imgsz"] == 640
    assert backends["torch"].backend()["name"] == "ultralytics"
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr("actionpipe.core.devices.nvidia_gpu_present", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    on_gpu = PoseEstimator(device="auto")  # a (mocked) GPU: the torch backend, unchanged
    assert (on_gpu.device, on_gpu.pose_backend, on_gpu.precision) == ("cuda:0", "torch", "fp32")


def test_torch_threads_are_set_and_kept(backends, demo_video):
    import torch

    frames = [f.image for f in read_frames(demo_video, fps=1, max_side=640)][:2]
    backends["torch"].detect(frames)  # ultralytics' set-up would drop torch to cpu_count - 1 threads
    assert torch.get_num_threads() == cpu_threads()


def test_bf16_finds_the_same_people(backends, demo_video):
    bf16 = PoseEstimator(imgsz=640, device="cpu", precision="bf16")
    frames = [f.image for f in read_frames(demo_video, fps=2, max_side=640)][:4]
    for (gb, _, gk), (wb, _, wk) in zip(bf16._infer(frames), backends["openvino"]._infer(frames)):
        confident = (wk[..., 2] > 0.5).any(axis=1)
        assert len(gb) >= confident.sum()
        # Greedy match by box: every confident person is there, keypoints within a few pixels.
        for box, kp in zip(wb[confident], wk[confident]):
            j = np.argmin(np.abs(gb - box).sum(axis=1))
            seen = kp[:, 2] > 0.5
            assert np.median(np.abs(gk[j, seen, :2] - kp[seen, :2])) < 3
