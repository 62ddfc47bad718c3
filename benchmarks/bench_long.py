#!/usr/bin/env python3
"""Long videos: classify throughput (video seconds per wall second) and peak RSS, 1 vs 10 minutes.

Inputs are samples/demo.mp4 (1768x994, 30 fps, two people) played over and over for N minutes,
written once into --workdir (not the repository). Each measurement runs in its own process, so
its peak RSS (os.wait4's rusage) covers model loading, decoding, pose, ST-GCN and nothing else.
classify runs with 2 s windows, per person, at the model's pose settings; the short input is
also run without the decode-ahead thread (--no-prefetch) to show what that thread buys.
Streaming means peak RSS should be flat as the video grows; the pose file (a few hundred bytes
per person-frame) is the only thing that grows with length.

    python benchmarks/bench_long.py [--quick] [--model NAME_OR_DIR] [--render]

--quick: 1 vs 3 minutes with pose at 5 fps (the full run, 1 vs 10 minutes at the card's rate,
takes about half an hour on 2 CPU cores). Without --model, the shipped default model, else a
small random test model (speed and memory do not depend on the weights' values).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "samples" / "demo.mp4"


def make_long_video(path: Path, seconds: float) -> Path:
    """samples/demo.mp4 looped to ``seconds`` (kept in ``path`` for later runs)."""
    import cv2

    cap = cv2.VideoCapture(str(DEMO))
    fps = cap.get(cv2.CAP_PROP_FPS)
    want = round(seconds * fps)
    if path.exists() and int(cv2.VideoCapture(str(path)).get(cv2.CAP_PROP_FRAME_COUNT)) == want:
        return path
    frames = []
    while True:  # the clip once in memory (~1.2 GB here, in this process only), then written N times
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    h, w = frames[0].shape[:2]
    tmp = path.with_name(path.stem + ".part.mp4")
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    for i in range(want):
        writer.write(frames[i % len(frames)])
    writer.release()
    os.replace(tmp, path)
    return path


def measure(args: list[str]) -> dict:
    """Run ``bench_long.py --child ...`` in a new process: its JSON line, wall time and peak RSS."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, __file__, "--child", *args], stdout=subprocess.PIPE, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"child {args} failed with exit code {proc.returncode}")
    result = json.loads(out.strip().splitlines()[-1])
    result.update(wall_s=time.perf_counter() - start, peak_rss_mb=usage.ru_maxrss / 1024)  # Linux: KiB
    return result


def child(argv: list[str]) -> None:
    """One measurement: ``classify VIDEO MODEL FPS PREFETCH`` or ``render VIDEO MODEL FPS OUT``;
    or ``make PATH SECONDS`` (in its own process too: Linux counts the RSS a process had when it
    forked in its children's peak, so the parent must stay small)."""
    if argv[0] == "make":
        t0 = time.perf_counter()
        make_long_video(Path(argv[1]), float(argv[2]))
        print(json.dumps({"seconds": time.perf_counter() - t0}))
        return
    from actionpipe.core import console
    from actionpipe.model.cards import find_card
    from actionpipe.pipeline.classify import Classifier

    console.set_quiet(True)
    what, video, model, fps = argv[0], argv[1], argv[2], float(argv[3]) or None
    classifier = Classifier(find_card(model), device="cpu", fps=fps, window_s=2.0, stride_s=1.0,
                            per_person=True, prefetch=what != "classify" or argv[4] == "1")
    t0 = time.perf_counter()
    if what == "classify":
        result = classifier.classify(video)
        extra = {"windows": len(result.timeline.starts), "people": len(result.people)}
    else:
        from actionpipe.outputs.render import render_video

        pose = classifier.pose.estimate_path(video, fps=classifier.fps)
        scores = classifier.classify_pose(pose, video).to_dict()
        extra = render_video(video, argv[4], pose, scores)
    print(json.dumps({"seconds": time.perf_counter() - t0, **extra}))


def default_model(workdir: Path) -> str:
    """The default card if installed, else a small random one made in a child process (keeps torch
    out of this process, see :func:`child`)."""
    if (REPO / "models" / "penn-action-stgcn" / "card.json").is_file():
        return "penn-action-stgcn"
    print("(no penn-action-stgcn installed: using a small random test model)")
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from test_infer import write_card; "
            "write_card(__import__('pathlib').Path(sys.argv[2]), window=32, base_channels=64)")
    subprocess.run([sys.executable, "-c", code, str(REPO / "tests"), str(workdir / "tiny-model")], check=True)
    return str(workdir / "tiny-model")


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        return child(sys.argv[2:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 vs 3 minutes, pose at 5 fps")
    parser.add_argument("--model", help="model card name or directory")
    parser.add_argument("--fps", type=float, help="pose rate (default: the card's; 5 with --quick)")
    parser.add_argument("--render", action="store_true", help="also time `render` on the shortest input")
    parser.add_argument("--workdir", default="/tmp/actionpipe-bench-long", type=Path)
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    minutes = (1, 3) if args.quick else (1, 10)
    fps = args.fps or (5 if args.quick else 0)  # 0: the card's
    model = args.model or default_model(args.workdir)
    print(f"model {model}; pose fps {fps or 'card default'}; {os.cpu_count()} CPUs")
    rows = []
    for m in minutes:
        video = args.workdir / f"demo_{m}min.mp4"
        made = measure(["make", str(video), str(60 * m)])
        print(f"input {video} ({made['seconds']:.0f} s to make)", flush=True)
        runs = [("classify", "1")] + ([("classify", "0")] if m == minutes[0] else [])
        runs += [("render", str(args.workdir / "render.mp4"))] if args.render and m == minutes[0] else []
        for what, opt in runs:
            r = measure([what, str(video), model, str(fps), opt])
            label = what + (" --no-prefetch" if opt == "0" else "")
            rows.append((m, label, r))
            print(f"  {label:<24} {60 * m / r['seconds']:6.2f} video s/s (work {r['seconds']:6.1f} s, "
                  f"process {r['wall_s']:6.1f} s), peak RSS {r['peak_rss_mb']:7.0f} MB", flush=True)
    print(f"\n{'minutes':>7}  {'run':<24}{'video s / wall s':>17}{'peak RSS MB':>13}")
    for m, label, r in rows:
        print(f"{m:>7}  {label:<24}{60 * m / r['seconds']:>17.2f}{r['peak_rss_mb']:>13.0f}")


if __name__ == "__main__":
    main()
