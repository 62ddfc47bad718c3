#!/usr/bin/env python3
"""End to end on real clips: `classify` throughput and labels per pose backend / speed, side by side.

Every variant is loaded once in this process, then each clip goes through every variant in turn
(the order rotating from clip to clip), so load from other processes on a shared machine slows
all variants alike and the ratios hold. Open-set rejection is off (every clip gets its closest
class, as `actionpipe eval` does). For each variant: video seconds per wall second (decode, pose,
tracking, packing, ST-GCN; models already loaded), how many clips get the reference variant's
label (the first one: today's torch path), the largest top-1 probability difference, and top-1
on the clips whose label is one of the model's classes. Also the process's CPU time per video
second (all its threads): on a machine shared with other jobs it is far steadier than wall time,
and video seconds per CPU second times the cores is what the variant would reach with the cores
to itself (if it kept them all busy).

    python benchmarks/bench_e2e.py [--clips ../shared/datasets/realvideo_dev | LABELS.csv [--split val]]
                                   [--variants fp32 openvino fast]
                                   [--model NAME (default: classify's)] [--json out.json] [--reference-poses DIR]

--reference-poses DIR: the reference is instead ``DIR/<clip stem>/pose.json`` (e.g. the ``fp32``
folder of an ``actionpipe eval --pose-cache DIR`` with today's torch path) classified by the same model: its
labels without its (slow) run; clips without one there are skipped.

Variants: torch, fp32 (OpenVINO FP32), openvino (OpenVINO at the card's precision: classify's default,
bf16 where the CPU has it), bf16, int8 (OpenVINO INT8, NNCF), fast (--speed fast as shipped), fast-fp32 / fast-bf16 / fast-int8 (--speed fast with that pose precision). --clips
is a folder holding videos/ and videos.csv (file,label,...; samples/demo.mp4 is added unlabelled) or
a labels CSV as ``actionpipe eval`` reads it (``benchmarks/data/real_val.csv``: the 60 val clips),
``--split`` its rows. Accuracy as ``eval`` gives it on real footage (top-1 on the model's classes,
the honest rate with the card's open-set rule) for each variant, and against the first variant the
paired difference with its 95 % bootstrap interval (``actionpipe.training.footage.compare``): the
precision rule of docs/speed.md reads these.

    python benchmarks/bench_e2e.py --clips benchmarks/data/real_val.csv --split val \
        --variants fp32 bf16 int8 fast --json e2e-val.json
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VARIANTS = {"torch": {"pose_backend": "torch"},
            "fp32": {"pose_backend": "openvino", "pose_precision": "fp32"},
            "openvino": {"pose_backend": "openvino"},
            "bf16": {"pose_backend": "openvino", "pose_precision": "bf16"},
            "fast": {"pose_backend": "openvino", "speed": "fast"},
            "int8": {"pose_backend": "openvino", "pose_precision": "int8"},
            "fast-fp32": {"pose_backend": "openvino", "pose_precision": "fp32", "speed": "fast"},
            "fast-bf16": {"pose_backend": "openvino", "pose_precision": "bf16", "speed": "fast"},
            "fast-int8": {"pose_backend": "openvino", "pose_precision": "int8", "speed": "fast"}}


def clips(folder: Path, split: str | None = None) -> list[tuple[Path, str | None]]:
    if folder.suffix.lower() == ".csv":
        from actionpipe.training.evaluate import read_video_labels

        return read_video_labels(folder, None, split)
    rows = []
    if (folder / "videos.csv").is_file():
        with open(folder / "videos.csv", newline="") as f:
            rows = [(folder / "videos" / r["file"], r["label"]) for r in csv.DictReader(f)]
    demo = REPO / "samples" / "demo.mp4"
    return rows + ([(demo, None)] if demo.is_file() else [])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=Path, default=REPO.parent / "shared" / "datasets" / "realvideo_dev")
    parser.add_argument("--split", help="with a labels CSV: only its rows of this split")
    parser.add_argument("--variants", nargs="+", default=["fp32", "openvino", "fast"], choices=list(VARIANTS))
    parser.add_argument("--model", help="model name or folder (default: classify's default model)")
    parser.add_argument("--limit", type=int, help="only the first N clips")
    parser.add_argument("--json", type=Path, help="write every clip's results here")
    parser.add_argument("--reference-poses", type=Path, help="pose files of the reference (see above)")
    args = parser.parse_args()

    from actionpipe.core import console
    from actionpipe.model.cards import DEFAULT_MODEL, find_card
    from actionpipe.pipeline.classify import Classifier
    from actionpipe.core.devices import cpu_threads
    from actionpipe.video.reader import probe

    console.set_quiet(True)
    card = find_card(args.model or DEFAULT_MODEL)
    todo = clips(args.clips, args.split)
    if args.reference_poses:
        todo = [(v, lab) for v, lab in todo if (args.reference_poses / v.stem / "pose.json").is_file()]
    todo = todo[: args.limit]
    classifiers = {}
    for name in args.variants:
        classifiers[name] = Classifier(card, device="cpu", reject=False, **VARIANTS[name])
        classifiers[name].pose.model  # load / export / compile now, not inside the timing
    print(f"{len(todo)} clips, model {card.name}, {cpu_threads()} threads, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f} at the start")
    rows = []
    for i, (video, label) in enumerate(todo):
        info = probe(video)
        row = {"video": video.name, "label": label, "seconds": info.frame_count / info.fps}
        order = args.variants[i % len(args.variants):] + args.variants[: i % len(args.variants)]
        for name in order:
            t0, c0 = time.perf_counter(), time.process_time()
            result = classifiers[name].classify(video)
            d = result.to_dict(k=1)
            row[name] = {"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0, "status": result.status,
                         "label": d.get("label"), "probability": d.get("probability"),
                         "open_set_score": None if result.prediction is None else result.prediction.open_set_score,
                         "probabilities": None if result.prediction is None
                         else [float(p) for p in result.prediction.probabilities]}
        if args.reference_poses:
            from actionpipe.pose.posefile import PoseFile

            pose = PoseFile.load(args.reference_poses / video.stem / "pose.json")
            result = classifiers[args.variants[0]].classify_pose(pose, video)
            row["reference"] = {"wall_s": float("nan"), "cpu_s": float("nan"), "status": result.status,
                                "label": result.label,
                                "probabilities": [float(p) for p in result.prediction.probabilities]}
        rows.append(row)
        print(f"{video.name[:40]:<40} {row['seconds']:5.1f} s  " + "  ".join(
            f"{n} {row[n]['label'] or row[n]['status']} {row[n]['wall_s']:.1f}s" for n in row if n in VARIANTS)
            + (f"  reference {row['reference']['label']}" if args.reference_poses else ""), flush=True)
    if args.json:
        args.json.write_text(json.dumps({"variants": args.variants, "rows": rows}, indent=1))
    report(rows, (["reference"] if args.reference_poses else []) + args.variants, card.classes)
    footage_report(rows, args.variants, card, classifiers[args.variants[0]].predictor)


def report(rows: list[dict], variants: list[str], classes: list[str]) -> None:
    import numpy as np

    ref = variants[0]
    video_s = sum(r["seconds"] for r in rows)
    known = [r for r in rows if r["label"] in classes]
    print(f"\n{len(rows)} clips, {video_s:.0f} s of video; reference: {ref}; known-class clips: {len(known)}")
    timed = next(n for n in variants if n in VARIANTS)  # speed-ups are against the first variant run here
    print(f"{'variant':<10}{'x real time':>12}{'vs ' + timed:>12}{'CPU s/video s':>14}{'same label':>12}"
          f"{'max dprob':>11}{'top-1 known':>13}")
    ref_wall = sum(r[timed]["wall_s"] for r in rows)
    for name in variants:
        wall = sum(r[name]["wall_s"] for r in rows)  # nan for pose files read from disk
        cpu = sum(r[name]["cpu_s"] for r in rows)
        same = sum(r[name]["label"] == r[ref]["label"] for r in rows)
        diffs = [np.abs(np.subtract(r[name]["probabilities"], r[ref]["probabilities"])).max() for r in rows
                 if r[name]["probabilities"] is not None and r[ref]["probabilities"] is not None]
        top1 = sum(r[name]["label"] == r["label"] for r in known) / max(1, len(known))
        print(f"{name:<10}{video_s / wall:>12.2f}{ref_wall / wall:>11.2f}x{cpu / video_s:>14.2f}{same:>7}/{len(rows):<4}"
              f"{max(diffs, default=0):>11.3f}{100 * top1:>12.1f}%")


def footage_report(rows: list[dict], variants: list[str], card, predictor) -> None:
    """Top-1 and honest rate per variant as ``eval`` scores real footage, and each variant against
    the first with the paired 95 % interval."""
    import numpy as np

    from actionpipe.model.label_map import model_label
    from actionpipe.training.evaluate import Evaluation
    from actionpipe.training.footage import compare, footage_metrics

    labelled = [r for r in rows if r["label"] is not None]
    threshold = predictor.open_set.threshold if predictor.open_set is not None else None

    def evaluation(name: str) -> Evaluation:
        probs = np.array([r[name]["probabilities"] or [0.0] * len(card.classes) for r in labelled])
        scores = (None if threshold is None else
                  np.array([-np.inf if r[name]["open_set_score"] is None else r[name]["open_set_score"] for r in labelled]))
        labels = [model_label(r["label"], set(card.classes)) for r in labelled]
        return Evaluation(card.classes, [r["video"] for r in labelled], labels, probs, scores, threshold)

    def fmt(share: dict, sign: str = "") -> str:
        value = share.get("value", share.get("difference"))
        if value is None:
            return "-"
        lo, hi = share["ci95"]
        return f"{100 * value:{sign}.1f}{'' if sign else '%'} [{100 * lo:{sign}.1f}, {100 * hi:{sign}.1f}]"

    base = evaluation(variants[0])
    print(f"\nreal footage, {len(labelled)} labelled clips; differences against {variants[0]} (paired 95 % interval)")
    print(f"{'variant':<10}{'top-1 (model classes)':>28}{'honest rate':>26}{'d top-1':>22}{'d honest':>22}")
    for name in variants:
        m = footage_metrics(ev := evaluation(name))
        c = compare(ev, base)
        d = [fmt(c[k], "+") for k in ("top1_shared", "honest_rate")]
        print(f"{name:<10}{fmt(m['top1']):>28}{fmt(m['honest_rate']):>26}{d[0]:>22}{d[1]:>22}")


if __name__ == "__main__":
    main()
