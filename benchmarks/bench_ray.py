#!/usr/bin/env python3
"""`classify` on one process vs `--engine ray` with 1 and 2 pose actors, and a paper estimate for GPU nodes.

    python benchmarks/bench_ray.py [--clips ../shared/datasets/realvideo_dev] [--limit 6]
                                   [--node-gpus 8 --node-cpus 64 --gpu-ms-per-frame 1.8] [--json out.json]

1. Per-stage costs, one process, models loaded, no decode-ahead, per clip: decoding (at the model's
   rate and the pose input size), the pose model, tracking, pack + ST-GCN + statuses, and writing
   one fsynced JSONL line. Wall and CPU seconds (all threads); CPU seconds are steadier on a busy
   machine.
2. Throughput, the same clips through each engine in turn: the local engine (models loaded before
   the clock starts, decode-ahead on, as `classify` runs), then a local Ray (started before the
   clock; 2 CPUs here) with 1 and 2 pose actors, each run timed from the call to the last result,
   so it includes the actors' start (model loading), which a long run amortises: ``steady`` is
   videos/s from the first result to the last (nan when they all come at once, as Ray's classify
   actors answer up to 8 videos per call).
3. The estimate for N nodes of G GPUs and C cores: per video, CPU seconds (decode + tracking +
   classify stage) and GPU seconds (frames posed x --gpu-ms-per-frame, an assumption: ultralytics
   publishes 1.8 ms for YOLO11n-pose at 640 on a T4 with TensorRT; actionpipe runs it at 320). A
   node does min(C / cpu, G / gpu) videos/s; a GPU needs ceil(decode+tracking / gpu) pose actors
   (one decoding core each) to be kept busy; the driver writes every line with an fsync.

On this 2-core machine the cores bound every engine: Ray can only add overhead here; its gain is
more machines. The machine is shared with other jobs: compare columns of the same run only.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def since(start: tuple[float, float]) -> tuple[float, float]:
    wall, cpu = clock()
    return wall - start[0], cpu - start[1]


def stage_costs(card, videos: list[Path]) -> list[dict]:
    """Per clip: wall and CPU seconds of each stage, run one after the other in this process."""
    import numpy as np

    from actionpipe.api import ActionModel
    from actionpipe.outputs.jsonl import JsonlWriter
    from actionpipe.pose.tracking import Detection, Tracker
    from actionpipe.video.reader import read_frames

    model = ActionModel(card, device="cpu", prefetch=False)
    model.classifier.pose.model  # load / export now, not inside the timing
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        writer = JsonlWriter(Path(tmp) / "lines.jsonl")
        for video in videos:
            start = clock()
            frames = sum(1 for _ in read_frames(video, fps=model.classifier.fps, max_side=model.classifier.pose.imgsz))
            decode = since(start)
            start = clock()
            pose = model.pose(video)
            posed = since(start)
            start = clock()
            tracker = Tracker.for_fps(pose.fps)
            for frame in pose.frames:
                tracker.update([Detection(np.asarray(p.box), p.score, np.asarray(p.keypoints)) for p in frame.people])
            track = since(start)
            start = clock()
            result = model.classifier.classify_pose(pose, video)
            classify = since(start)
            start = clock()
            writer.write(result.to_dict())
            write = since(start)
            rows.append({"video": video.name, "frames": frames, "decode": decode, "track": track,
                         "model": tuple(p - d - t for p, d, t in zip(posed, decode, track)),
                         "classify": classify, "write": write})
        writer.close()
    return rows


def throughput(results) -> dict:
    """Wall seconds to the last result, and the steady rate from the first result to the last."""
    start, done = time.perf_counter(), []
    for _ in results:
        done.append(time.perf_counter() - start)
    # Ray's classify actors answer up to 8 videos at once: results that all come within a second of
    # each other have no steady rate (nan) rather than an absurd one.
    steady = (len(done) - 1) / (done[-1] - done[0]) if len(done) > 1 and done[-1] - done[0] > 1.0 else float("nan")
    return {"videos": len(done), "seconds": done[-1], "videos_per_s": len(done) / done[-1], "steady_videos_per_s": steady,
            "first_result_s": done[0]}


def estimate(costs: list[dict], gpus: int, cpus: int, gpu_ms: float) -> dict:
    """Per video CPU and GPU seconds (CPU seconds of this machine's cores), a node's rate, actors per GPU."""
    n = len(costs)
    frames = sum(c["frames"] for c in costs) / n
    decode_track = sum(c["decode"][1] + c["track"][1] for c in costs) / n
    cpu = decode_track + sum(c["classify"][1] for c in costs) / n
    gpu = frames * gpu_ms / 1000
    node = min(cpus / cpu, gpus / gpu)
    return {"frames_per_video": frames, "cpu_s_per_video": cpu, "gpu_s_per_video": gpu,
            "node_videos_per_s": node, "bound": "CPU (decoding)" if cpus / cpu < gpus / gpu else "GPU (pose model)",
            "pose_actors_per_gpu": math.ceil(decode_track / gpu),
            "write_lines_per_s": n / sum(c["write"][0] for c in costs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=Path, default=REPO.parent / "shared" / "datasets" / "realvideo_dev")
    parser.add_argument("--limit", type=int, default=6, help="the first N clips (sorted by name)")
    parser.add_argument("--model", default=None, help="model card (default: the default model)")
    parser.add_argument("--node-gpus", type=int, default=8)
    parser.add_argument("--node-cpus", type=int, default=64)
    parser.add_argument("--gpu-ms-per-frame", type=float, default=1.8)
    parser.add_argument("--json", type=Path, help="write the measurements here")
    args = parser.parse_args()

    from actionpipe.core import console
    from actionpipe.api import ActionModel, _card
    from actionpipe.engines.ray_engine import connect

    console.set_quiet(True)
    folder = args.clips / "videos"
    videos = sorted(folder.glob("*.mp4"))[: args.limit] if folder.is_dir() else [REPO / "samples" / "squat.mp4"]
    card = _card(args.model)
    print(f"{len(videos)} clips from {videos[0].parent}, model {card.name}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f} at the start (a shared machine: other jobs run too)")

    costs = stage_costs(card, videos)
    print("\nper-stage cost per clip (mean wall s / CPU s; one process, no decode-ahead):")
    for stage in ("decode", "model", "track", "classify", "write"):
        wall = sum(c[stage][0] for c in costs) / len(costs)
        cpu = sum(c[stage][1] for c in costs) / len(costs)
        print(f"  {stage:9s} {wall:7.3f} s wall  {cpu:7.3f} s CPU")
    print(f"  frames posed per clip: {sum(c['frames'] for c in costs) / len(costs):.0f}")

    runs = {}
    local = ActionModel(card, device="cpu")
    local.classifier.pose.model
    runs["single process"] = throughput(local(videos, stream=True))
    connect(None)  # the Ray start itself is not timed (once per job)
    for workers in (1, 2):
        model = ActionModel(card, device="cpu", engine="ray", pose_workers=workers)
        runs[f"ray, {workers} pose actor(s)"] = throughput(model(videos, stream=True))
    base = runs["single process"]["videos_per_s"]
    print(f"\nthroughput, {len(videos)} clips (the same clips through each engine, one after the other):")
    print(f"  {'engine':24s} {'videos/s':>9s} {'ratio':>6s} {'steady/s':>9s} {'first result':>13s}")
    for name, r in runs.items():
        print(f"  {name:24s} {r['videos_per_s']:9.3f} {r['videos_per_s'] / base:6.2f} "
              f"{r['steady_videos_per_s']:9.3f} {r['first_result_s']:12.1f}s")

    paper = estimate(costs, args.node_gpus, args.node_cpus, args.gpu_ms_per_frame)
    print(f"\npaper estimate, nodes of {args.node_gpus} GPUs + {args.node_cpus} cores "
          f"(pose model {args.gpu_ms_per_frame} ms/frame on a GPU, assumed):")
    print(f"  per video: {paper['cpu_s_per_video']:.3f} CPU s (decode + tracking + classify), "
          f"{paper['gpu_s_per_video']:.3f} GPU s ({paper['frames_per_video']:.0f} frames)")
    print(f"  one node: {paper['node_videos_per_s']:.1f} videos/s, bound by {paper['bound']}; "
          f"{paper['pose_actors_per_gpu']} pose actors per GPU keep it busy")
    print(f"  the driver's fsynced JSONL: {paper['write_lines_per_s']:.0f} lines/s measured here (a ceiling)")
    for nodes in (1, 4, 16, 64):
        rate = min(nodes * paper["node_videos_per_s"], paper["write_lines_per_s"])
        print(f"  {nodes:3d} node(s): {rate:8.1f} videos/s, a million videos in {1e6 / rate / 3600:6.1f} h")
    if args.json:
        args.json.write_text(json.dumps({"costs": costs, "runs": runs, "estimate": paper}, indent=1))


if __name__ == "__main__":
    main()
