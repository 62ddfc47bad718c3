#!/usr/bin/env python3
"""Warm start: seconds from process start until the first frame can be processed, per variant.

Each measurement is a fresh ``python`` process (warm: the OS file cache and the OpenVINO export
cache are filled by a first, untimed round) that imports actionpipe, builds a ``Classifier``
(pose model + the default ST-GCN), decodes the first frame of samples/demo.mp4 and runs the pose
model on it. Variants alternate round by round, so load from other processes affects them alike;
the median of the rounds is reported. ``openvino``: the CPU default, pose and ST-GCN through
OpenVINO (torch never imported); ``openvino+torch-stgcn``: the ST-GCN through torch instead (the
default before the ST-GCN's OpenVINO export); ``torch``: both through torch. ``help`` is
``actionpipe --help``.

    python benchmarks/bench_start.py [--rounds 5]
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CHILD = """
import sys, time
t0 = float(sys.argv[1])
from actionpipe.model.cards import default_card
from actionpipe.pipeline.classify import Classifier
from actionpipe.video.reader import read_frames
pose, _, stgcn = sys.argv[2].partition("+")
classifier = Classifier(default_card(), device="auto", pose_backend=pose,
                        stgcn_engine="torch" if pose == "torch" or stgcn == "torch-stgcn" else "auto")
frame = next(iter(read_frames(sys.argv[3], fps=classifier.fps, max_side=classifier.pose.imgsz)))
classifier.pose.detect([frame.image])
print(time.time() - t0)
"""
VARIANTS = ("openvino", "openvino+torch-stgcn", "torch", "help")


def once(variant: str) -> float:
    if variant == "help":
        t0 = time.time()
        subprocess.run([str(Path(sys.executable).parent / "actionpipe"), "--help"], check=True, capture_output=True)
        return time.time() - t0
    out = subprocess.run([sys.executable, "-c", CHILD, repr(time.time()), variant, str(REPO / "samples" / "demo.mp4")],
                         check=True, capture_output=True, text=True).stdout
    return float(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    for variant in VARIANTS:  # untimed: fills the file cache and the OpenVINO export cache
        once(variant)
    times: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for _ in range(args.rounds):
        for variant in VARIANTS:
            times[variant].append(once(variant))
    print(f"{'variant':<22}{'median s':>9}{'min s':>8}{'max s':>8}")
    for variant, t in times.items():
        print(f"{variant:<22}{statistics.median(t):>9.2f}{min(t):>8.2f}{max(t):>8.2f}")


if __name__ == "__main__":
    main()
