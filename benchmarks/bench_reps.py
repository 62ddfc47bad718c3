"""Repetition counting (actionpipe.counting) on RepCount-A's test skeletons: MAE and OBO.

The skeletons are BlazePose-33 (x, y, z), each frame min-max normalised to the person's box
(README.md of the data set); they are mapped to COCO-17 with the README's table, confidence 1 on
a detected frame and 0 on an all-zero row. The frame rate is not in the data: fps 30 is assumed,
which only scales the 0.4-10 s period range (RepCount's repetitions last 13-290 frames).

Fixed split, for honest tuning: the video names sorted, even positions are the ``tune`` half
(parameters were chosen on it only), odd positions the ``heldout`` half. MAE is the mean of
|predicted - true| / true (true 0, one video, counts as 1 in the denominator); OBO the share of
videos with |predicted - true| <= 1. Each count is run with the class name as ``label`` (which
joints matter) and without (``label=None``, class-agnostic).

    python benchmarks/bench_reps.py [--half tune heldout all] [--data DIR] [--fps 30]
                                    [--json results.json] [--per-video]
"""
from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np

from actionpipe.counting import count_repetitions

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "repcount_a"
BLAZE_TO_COCO = [0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28]
# test.csv's unclean `type` spellings -> all_action.csv's class names ('others' stays).
SPELLINGS = {"squant": "squat", "benchpressing": "bench_pressing", "frontraise": "front_raise",
             "jumpjacks": "jump_jack", "pullups": "pull_up", "pushups": "push_up"}
PUBLISHED = {"PoseRAC": (0.236, 0.559), "TransRAC": (0.443, 0.291)}


def load(data: Path) -> list[dict]:
    """The test videos, sorted by name: name, class, true count, COCO-17 keypoints, half."""
    with open(data / "all_action.csv", newline="") as f:
        classes = {r["action"] for r in csv.DictReader(f)}
    with open(data / "annotation" / "test.csv", newline="") as f:
        rows = {r["name"].removesuffix(".mp4"): r for r in csv.DictReader(f)}
    poses = np.load(data / "test_poses.npz")
    videos = []
    for i, name in enumerate(sorted(rows)):
        kind = SPELLINGS.get(rows[name]["type"], rows[name]["type"])
        raw = poses[name].astype(np.float32)
        kp = np.zeros((len(raw), 17, 3))
        kp[..., :2] = raw[:, :99].reshape(-1, 33, 3)[:, BLAZE_TO_COCO, :2]
        kp[..., 2] = (raw != 0).any(1)[:, None]
        videos.append({"name": name, "class": kind if kind in classes else "others",
                       "true": int(rows[name]["count"]), "keypoints": kp,
                       "half": "tune" if i % 2 == 0 else "heldout"})
    return videos


def scores(pairs) -> dict:
    pred, true = np.array([p for p, _ in pairs]), np.array([t for _, t in pairs])
    if not len(pred):
        return {"n": 0, "mae": float("nan"), "obo": float("nan")}
    return {"n": int(len(pred)), "mae": float(np.mean(np.abs(pred - true) / np.maximum(true, 1))),
            "obo": float(np.mean(np.abs(pred - true) <= 1))}


def table(half: str, results: dict) -> str:
    out = [f"### {half}", "", "| class | n | MAE (label) | OBO (label) | MAE (None) | OBO (None) |",
           "|---|---:|---:|---:|---:|---:|"]
    for cls, r in results.items():
        a, b = r["label"], r["none"]
        name = f"**{cls}**" if cls == "overall" else cls
        out.append(f"| {name} | {a['n']} | {a['mae']:.3f} | {a['obo']:.3f} | {b['mae']:.3f} "
                   f"| {b['obo']:.3f} |")
    for model, (mae, obo) in PUBLISHED.items():
        out.append(f"| {model} (published, whole test set) | 152 | {mae:.3f} | {obo:.3f} | | |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--half", nargs="+", choices=["tune", "heldout", "all"],
                    default=["tune", "heldout", "all"])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--fps", type=float, default=30.0)
    ap.add_argument("--json", type=Path, help="write the scores and per-video counts here")
    ap.add_argument("--per-video", action="store_true", help="print each video's counts")
    args = ap.parse_args()
    videos = load(args.data)
    wanted = [v for v in videos if "all" in args.half or v["half"] in args.half]
    start = time.perf_counter()
    for v in wanted:
        v["pred_label"] = count_repetitions(v["keypoints"], args.fps, v["class"]).count
        v["pred_none"] = count_repetitions(v["keypoints"], args.fps, None).count
    seconds = time.perf_counter() - start
    report = {"fps": args.fps, "halves": {}, "videos": [
        {k: v[k] for k in ("name", "class", "half", "true", "pred_label", "pred_none")}
        for v in wanted]}
    for half in args.half:
        part = [v for v in wanted if half == "all" or v["half"] == half]
        groups = {"overall": part, **{c: [v for v in part if v["class"] == c]
                                      for c in sorted({v["class"] for v in part})}}
        results = {c: {"label": scores([(v["pred_label"], v["true"]) for v in g]),
                       "none": scores([(v["pred_none"], v["true"]) for v in g])}
                   for c, g in groups.items()}
        report["halves"][half] = results
        print(table(half, results), end="\n\n")
    if args.per_video:
        for v in wanted:
            print(f"{v['half']:8s} {v['name']:14s} {v['class']:15s} true {v['true']:3d}  "
                  f"label {v['pred_label']:3d}  none {v['pred_none']:3d}")
    print(f"{2 * len(wanted)} counts in {seconds:.1f} s "
          f"({1000 * seconds / max(1, 2 * len(wanted)):.0f} ms each), fps assumed {args.fps:g}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
