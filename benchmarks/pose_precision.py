#!/usr/bin/env python3
"""OpenVINO pose precisions against fp32 on the same frames; prints a table (accuracy, not speed).

Per video and imgsz, ``--frames`` frames spread evenly over the video (shrunk by the decoder as
``classify`` does) go through the pose model at fp32 and at each other precision. People are
paired with fp32's by box IoU (greedily, IoU >= 0.5): recall and precision of the people, taking
fp32's as the reference (there is no ground truth), and the keypoint error (pixels of the frames
the model saw, i.e. at the longer side imgsz) over the pairs' joints fp32 sees with confidence
>= 0.5: median and 95th percentile.

    python benchmarks/pose_precision.py [--videos VIDEO_OR_LABELS.csv ...] [--imgsz 640 320]
        [--frames 100] [--precisions bf16 int8]

A labels CSV (``file,label[,group][,split]``, files relative to it) adds its videos (``--split``
keeps one split).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from actionpipe.core import console
from actionpipe.pose.estimator import PoseEstimator
from actionpipe.pose.tracking import box_iou
from actionpipe.training.datasets import read_labels_csv
from actionpipe.video.reader import read_frames

REPO = Path(__file__).resolve().parent.parent
IOU = 0.5
JOINT_CONF = 0.5


def videos(args) -> list[Path]:
    out = []
    for item in map(Path, args.videos):
        if item.suffix == ".csv":
            out += [item.parent / r.file for r in read_labels_csv(item) if args.split in (None, r.split)]
        elif item.is_file():
            out.append(item)
    return out


def spread_frames(video: Path, imgsz: int, count: int) -> list[np.ndarray]:
    images = [f.image for f in read_frames(video, max_side=imgsz)]
    return [images[i] for i in np.unique(np.linspace(0, len(images) - 1, count).round().astype(int))]


def compare(reference: list, other: list) -> tuple[int, int, int, list[float]]:
    """Over frames of detections: reference people, other's people, pairs, joint errors (px)."""
    n_ref = n_other = n_pairs = 0
    errors: list[float] = []
    for ref, oth in zip(reference, other):
        n_ref, n_other = n_ref + len(ref), n_other + len(oth)
        if not ref or not oth:
            continue
        iou = box_iou(np.array([d.box for d in ref]), np.array([d.box for d in oth]))
        while iou.size and iou.max() >= IOU:
            i, j = np.unravel_index(iou.argmax(), iou.shape)
            iou[i, :], iou[:, j] = -1, -1
            n_pairs += 1
            seen = ref[i].keypoints[:, 2] >= JOINT_CONF
            errors += np.linalg.norm(ref[i].keypoints[seen, :2] - oth[j].keypoints[seen, :2], axis=1).tolist()
    return n_ref, n_other, n_pairs, errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", nargs="+", default=[str(REPO / "samples" / n) for n in ("squat.mp4", "demo.mp4")])
    parser.add_argument("--split", help="with a labels CSV: only this split's videos")
    parser.add_argument("--imgsz", type=int, nargs="+", default=[640, 320])
    parser.add_argument("--frames", type=int, default=100, help="frames per video, spread over it")
    parser.add_argument("--precisions", nargs="+", default=["bf16", "int8"])
    args = parser.parse_args()
    console.set_quiet(True)
    print(f"{'video':<28}{'imgsz':>6}{'precision':>10}{'frames':>7}{'people':>7}{'recall':>8}{'precision':>10}"
          f"{'median px':>10}{'p95 px':>8}")
    for imgsz in args.imgsz:
        estimators = {p: PoseEstimator(imgsz=imgsz, device="cpu", backend="openvino", precision=p)
                      for p in ["fp32", *args.precisions]}
        for video in videos(args):
            frames = spread_frames(video, imgsz, args.frames)
            found = {p: [e.detect([im])[0] for im in frames] for p, e in estimators.items()}
            for p in args.precisions:
                n_ref, n_other, n_pairs, errors = compare(found["fp32"], found[p])
                median, p95 = np.percentile(errors, [50, 95]) if errors else (np.nan, np.nan)
                print(f"{video.name[:27]:<28}{imgsz:>6}{p:>10}{len(frames):>7}{n_ref:>7}"
                      f"{n_pairs / max(n_ref, 1):>8.3f}{n_pairs / max(n_other, 1):>10.3f}{median:>10.2f}{p95:>8.2f}")


if __name__ == "__main__":
    main()
