#!/usr/bin/env python3
"""Decode and pose throughput on samples/demo.mp4; prints a table (frames per second).

decode: sequential grab/retrieve of every frame, at full size and shrunk for the model.
pose: YOLO11n-pose + tracking on frames decoded beforehand (model time only), for each imgsz,
batch size and backend (torch; OpenVINO at every pose precision on the CPU: fp32, bf16, int8), after one warm-up batch; the
backends run the same frames one after the other, each best of --rounds, so their ratios hold on
a machine shared with other jobs. end-to-end: `PoseEstimator.estimate_path` on the video (auto backend).

    python benchmarks/bench_pose.py [--video PATH] [--frames N] [--device auto] [--rounds 2]
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch

from actionpipe.core import console
from actionpipe.core.devices import DEFAULT_POSE_PRECISION, POSE_PRECISIONS, cpu_threads
from actionpipe.pose.estimator import PoseEstimator, runnable_precision
from actionpipe.video.reader import read_frames

REPO = Path(__file__).resolve().parent.parent


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:8.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", default=str(REPO / "samples" / "demo.mp4"))
    parser.add_argument("--frames", type=int, default=96, help="frames per pose measurement")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    console.set_quiet(True)
    print(f"video {args.video}; torch {torch.__version__}, {cpu_threads()} threads, {os.cpu_count()} CPUs")
    print(f"{'stage':<38}{'frames':>8}{'fps':>9}{'vs torch':>9}{'vs fp32':>9}")
    for max_side in (None, 320, 640):
        t0 = time.perf_counter()
        n = sum(1 for _ in read_frames(args.video, max_side=max_side))
        label = f"decode {'full size' if max_side is None else f'max-side {max_side}'}"
        print(f"{label:<38}{n:>8}{rate(n, time.perf_counter() - t0)}")
    for imgsz in (320, 640):
        frames = [f for f, _ in zip(read_frames(args.video, max_side=imgsz), range(args.frames))]
        for batch in (1, 8):
            variants = {"torch": PoseEstimator(imgsz=imgsz, batch=batch, device=args.device, backend="torch")}
            if variants["torch"].device == "cpu":
                for precision in POSE_PRECISIONS:
                    variants[f"openvino {precision}"] = PoseEstimator(imgsz=imgsz, batch=batch, device="cpu",
                                                                      backend="openvino", precision=precision)
            best = {}
            for est in variants.values():
                est.detect([f.image for f in frames[:batch]])  # warm-up: model load, first-call setup
            for _ in range(args.rounds):
                for name, est in variants.items():
                    t0 = time.perf_counter()
                    n = sum(1 for _ in est.track(frames, 1768, 994, 30.0))
                    best[name] = min(best.get(name, float("inf")), time.perf_counter() - t0)
            fp32 = best.get("openvino fp32")
            for name, seconds in best.items():
                print(f"{f'pose imgsz {imgsz} batch {batch} {name}':<38}{len(frames):>8}"
                      f"{rate(len(frames), seconds)}{best['torch'] / seconds:>8.2f}x"
                      + (f"{fp32 / seconds:>8.2f}x" if fp32 and name.startswith("openvino") else ""))
        # The default precision, as the pose stage runs it on this CPU (bf16 where it is native).
        est = variants.get(f"openvino {runnable_precision(DEFAULT_POSE_PRECISION, 'openvino')}", variants["torch"])
        t0 = time.perf_counter()
        pose = est.estimate_path(args.video)
        print(f"{f'end-to-end imgsz {imgsz} batch 8':<38}{pose.num_frames:>8}"
              f"{rate(pose.num_frames, time.perf_counter() - t0)}")


if __name__ == "__main__":
    main()
