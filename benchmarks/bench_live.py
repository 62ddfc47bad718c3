#!/usr/bin/env python3
"""``actionpipe watch`` on a live stream: frames processed vs dropped, latency, CPU and memory over
a long run, and the label timeline against ``classify --window`` on the same clip.

A local MJPEG-over-HTTP server (tests/mjpeg_server.py, 127.0.0.1 only) plays a real clip over and
over at its own frame rate, as an IP camera would; ``actionpipe -q watch URL --duration SEC`` runs
in its own process, whose CPU time and RSS are sampled every 2 s (psutil) and summarised from its
first window to its summary line (start-up, model loading and exit left out). Before that, on the clip as a
file (nothing dropped), ``watch`` and ``classify --window`` are run with the same windows and their
windows and labels compared one by one; and every stream window's label is compared with the
label ``classify --window`` gives at the same time of the clip (the stream's time modulo the
clip's length, the stream's first frame taken as the clip's start).

    python benchmarks/bench_live.py [--minutes 10] [--clip samples/squat.mp4] [--imgsz N] [--out FILE.json]
    python benchmarks/bench_live.py --poses DIR [--model NAME]

``--poses DIR``: instead, for every pose file under DIR (e.g. the ``--pose-cache`` of an ``eval``
on real clips), how many ``classify --window`` windows get the label that classifying that window's
frames alone gives, as ``watch`` does (no pose model runs: this isolates the packing; both pack
each window on its own, so every window should agree).

Targets (issue 15): RSS flat, p95 latency <= stride + 0.5 s, the file's label timeline equal to
classify --window's.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
ACTIONPIPE = [sys.executable, "-c", "from actionpipe.cli.main import main; main()"]


def run_lines(args: list[str]) -> list[dict]:
    out = subprocess.run(ACTIONPIPE + args, capture_output=True, text=True, check=True)
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


def watch_stream(url: str, seconds: float, options: list[str]) -> dict:
    """Run watch on ``url`` for ``seconds`` of stream; its lines and CPU/RSS samples over time."""
    import psutil

    proc = subprocess.Popen(ACTIONPIPE + ["-q", "watch", url, "--duration", str(seconds), *options],
                            stdout=subprocess.PIPE, text=True)
    lines: list[dict] = []
    started = time.monotonic()

    def read() -> None:
        for line in proc.stdout:
            lines.append({**json.loads(line), "arrived": time.monotonic() - started})

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    ps, samples = psutil.Process(proc.pid), []
    while proc.poll() is None:
        try:
            cpu = ps.cpu_times()
            samples.append({"t": time.monotonic() - started, "cpu_s": cpu.user + cpu.system,
                            "rss_mb": ps.memory_info().rss / 2**20, "load": os.getloadavg()[0]})
        except psutil.NoSuchProcess:
            break
        time.sleep(2.0)
    reader.join()
    return {"lines": lines, "samples": samples, "returncode": proc.returncode}


def argmax_label(d: dict) -> str:
    """The most probable class (whether or not the open-set rule rejected it), else the status."""
    return d["top"][0]["class"] if d["top"] else d["status"]


def packing_agreement(pose_dir: str, model: str | None, window: float, stride: float) -> dict:
    """Per clip: windows whose argmax label in ``classify --window``'s timeline is the one the
    window's frames get classified alone."""
    from dataclasses import replace

    from actionpipe.model.cards import default_card, find_card
    from actionpipe.pipeline.classify import Classifier
    from actionpipe.model.infer import window_starts
    from actionpipe.pose.posefile import PoseFile

    card = find_card(model) if model else default_card()
    classifier = Classifier(card, device="cpu", load_pose=False)
    clips = {}
    for path in sorted(Path(pose_dir).rglob("*.json")):
        try:
            pose = PoseFile.load(path)
        except Exception:  # not a pose file (scores.json beside it)
            continue
        classifier.configure(window_s=window, stride_s=stride)
        whole = classifier.classify_pose(pose, path)
        if whole.timeline is None:
            continue
        rate = card.preprocessing.fps or pose.fps
        frames, step = max(1, round(window * rate)), max(1, round(stride * rate))
        classifier.configure(window_s=window, stride_s=window)
        alone = [classifier.classify_pose(replace(pose, frames=pose.frames[s:s + frames]), path)
                 for s in window_starts(pose.num_frames, frames, step)]
        pairs = zip(whole.timeline.probabilities.argmax(1), alone)
        clips[str(path.relative_to(pose_dir))] = [sum(r.prediction is not None and int(i) == int(np.argmax(
            r.prediction.probabilities)) for i, r in pairs), len(alone)]
    same, total = (sum(v[i] for v in clips.values()) for i in (0, 1))
    return {"model": card.name, "window_s": window, "stride_s": stride, "windows_same_label": f"{same}/{total}",
            "clips": clips}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="Length of the stream run.")
    parser.add_argument("--clip", default=str(REPO / "samples" / "squat.mp4"))
    parser.add_argument("--window", type=float, default=2.0)
    parser.add_argument("--stride", type=float, default=1.0)
    parser.add_argument("--imgsz", type=int, help="Pose model input size (default: the model card's).")
    parser.add_argument("--out", help="Write the measurements here (JSON).")
    parser.add_argument("--poses", metavar="DIR", help="Only compare the packing on these pose files (see above).")
    parser.add_argument("--model", help="With --poses: the model card (default: the default model).")
    args = parser.parse_args()
    if args.poses:
        print(json.dumps(packing_agreement(args.poses, args.model, args.window, args.stride), indent=1))
        return
    from mjpeg_server import MjpegServer

    from actionpipe.outputs.timeline import window_at

    options = ["--window", str(args.window), "--stride", str(args.stride)]
    options += ["--imgsz", str(args.imgsz)] if args.imgsz else []

    # 1. The clip as a file: watch (nothing dropped) against classify --window, window by window.
    offline = run_lines(["-q", "classify", args.clip, "--jsonl", "-", *options])[0]["timeline"]["windows"]
    live = [d for d in run_lines(["-q", "watch", args.clip, *options]) if d["type"] == "window"]
    same_windows = [(round(a["start_s"], 3), round(a["end_s"], 3)) == (round(b["start_s"], 3), round(b["end_s"], 3))
                    for a, b in zip(offline, live)]
    same_labels = [argmax_label(a) == argmax_label(b) for a, b in zip(offline, live)]

    # 2. The stream, for --minutes.
    with MjpegServer(args.clip, loop=True) as server:
        clip_s = len(server.frames) / server.fps
        run = watch_stream(server.url, args.minutes * 60, options)
    windows = [d for d in run["lines"] if d["type"] == "window"]
    summary = next(d for d in run["lines"] if d["type"] == "summary")
    latency = np.array([w["latency_s"] for w in windows])
    starts, ends = [w["start_s"] for w in offline], [w["end_s"] for w in offline]
    agree = []
    for w in windows:
        i = window_at(starts, ends, ((w["start_s"] + w["end_s"]) / 2) % clip_s)
        if i is not None:
            agree.append(argmax_label(w) == argmax_label(offline[i]))
    # Steady state: from the first window to the summary (start-up and the process's exit left out).
    samples = [s for s in run["samples"] if windows and windows[0]["arrived"] <= s["t"] <= summary["arrived"]]
    half = max(1, len(samples) // 2)
    rss = np.array([s["rss_mb"] for s in samples])
    t = np.array([s["t"] for s in samples])
    slope = float(np.polyfit(t / 60, rss, 1)[0]) if len(samples) > 3 else None
    steady_s = samples[-1]["t"] - samples[0]["t"] if len(samples) > 1 else 0
    result = {
        "clip": args.clip, "clip_s": round(clip_s, 3), "minutes": args.minutes, "options": options,
        "file_windows_same": f"{sum(same_windows)}/{len(offline)} (watch gave {len(live)})",
        "file_labels_same": f"{sum(same_labels)}/{len(offline)}",
        "stream": {"returncode": run["returncode"], "processed": summary["processed"], "dropped": summary["dropped"],
                   "dropped_share": round(summary["dropped"] / max(1, summary["dropped"] + summary["processed"]), 3),
                   "fps_processed": summary["fps"], "windows": len(windows), "reconnects": summary["reconnects"],
                   "latency_median_s": round(float(np.median(latency)), 3) if len(latency) else None,
                   "latency_p95_s": round(float(np.percentile(latency, 95)), 3) if len(latency) else None,
                   "labels_as_classify_at_same_clip_time": f"{sum(agree)}/{len(agree)}",
                   "statuses": {s: sum(w["status"] == s for w in windows) for s in sorted({w["status"] for w in windows})},
                   "steady_s": round(steady_s, 1),
                   "cpu_cores_used": round((samples[-1]["cpu_s"] - samples[0]["cpu_s"]) / steady_s, 2) if steady_s else None,
                   "rss_mb_first_half_median": round(float(np.median(rss[:half])), 1) if len(rss) else None,
                   "rss_mb_second_half_median": round(float(np.median(rss[half:])), 1) if len(rss) > 1 else None,
                   "rss_mb_max": round(float(rss.max()), 1) if len(rss) else None,
                   "rss_mb_per_minute": None if slope is None else round(slope, 2),
                   "load_average_median": round(float(np.median([s["load"] for s in samples])), 1) if samples else None}}
    if args.out:
        Path(args.out).write_text(json.dumps({**result, "rss_samples": samples}, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
