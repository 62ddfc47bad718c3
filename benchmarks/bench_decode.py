"""Decoding + resampling + resizing as ``classify`` does it: OpenCV against PyAV, side by side.

Variants, all through :func:`actionpipe.video.reader.read_frames` at the pose model's rate and size
(default 15 fps, longer side 640):

* ``opencv``: OpenCV's FFmpeg backend, ``grab()``/``retrieve()`` + ``cv2.resize`` (INTER_AREA) - the default;
* ``pyav``: PyAV (frame-threaded decoding), the same BGR conversion and ``cv2.resize``;
* ``pyav-scaled``: PyAV converting and shrinking in one swscale pass (``scale_in_decoder=True``).

Per video and variant: best-of-``--rounds`` wall seconds and CPU seconds (all threads of the
process, decoder threads included: what decoding takes from the pose model on a busy machine),
variants interleaved round by round so that load from other processes biases all alike.
``--check`` also compares the frames: count, source frame numbers and the largest pixel difference
of each variant against ``opencv``.

    python benchmarks/bench_decode.py [--videos FILE_OR_DIR ...] [--fps 15] [--max-side 640]
                                      [--rounds 3] [--check]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from actionpipe.video.reader import expand_videos, probe, read_frames

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_VIDEOS = [ROOT / "samples" / "demo.mp4", ROOT.parent / "shared" / "media"]
VARIANTS = {"opencv": {"decoder": "opencv"}, "pyav": {"decoder": "pyav"},
            "pyav-scaled": {"decoder": "pyav", "scale_in_decoder": True}}


def decode(video: Path, fps: float, max_side: int, **options) -> list:
    return list(read_frames(video, fps=fps, max_side=max_side, **options))


def frame_difference(reference: list, frames: list) -> str:
    """How ``frames`` differ from ``reference``: 'identical', or the count/index/pixel differences."""
    if [f.source_index for f in frames] != [f.source_index for f in reference]:
        return f"different frames ({len(frames)} vs {len(reference)})"
    diffs = [np.abs(a.image.astype(np.int16) - b.image.astype(np.int16)) for a, b in zip(reference, frames)]
    worst = max(int(d.max()) for d in diffs)
    return "identical" if worst == 0 else f"max {worst}, mean {np.mean([d.mean() for d in diffs]):.2f} grey levels"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--videos", nargs="+", default=[str(p) for p in DEFAULT_VIDEOS])
    parser.add_argument("--fps", type=float, default=15.0)
    parser.add_argument("--max-side", type=int, default=640)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--check", action="store_true", help="compare the frames with opencv's")
    args = parser.parse_args()
    videos, _ = expand_videos([p for p in args.videos if Path(p).exists()])
    print(f"decode at {args.fps:g} fps, longer side <= {args.max_side}, best of {args.rounds} "
          f"(wall / CPU seconds; speed-up in wall and CPU time against opencv)")
    totals = {name: [0.0, 0.0] for name in VARIANTS}
    for video in videos:
        info = probe(video)
        best = {name: [float("inf"), float("inf")] for name in VARIANTS}
        frames = {}
        for _ in range(args.rounds):
            for name, options in VARIANTS.items():
                wall, cpu = time.perf_counter(), time.process_time()
                frames[name] = decode(video, args.fps, args.max_side, **options)
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                best[name] = [min(best[name][0], wall), min(best[name][1], cpu)]
        for name in VARIANTS:
            totals[name][0] += best[name][0]
            totals[name][1] += best[name][1]
        ref = best["opencv"]
        print(f"{video.name} ({info.width}x{info.height}, {info.fps:g} fps, {len(frames['opencv'])} frames out)")
        for name, (wall, cpu) in best.items():
            check = f"  {frame_difference(frames['opencv'], frames[name])}" if args.check and name != "opencv" else ""
            print(f"  {name:<12} {wall:7.2f} s {cpu:7.2f} s CPU  {ref[0] / wall:5.2f}x {ref[1] / cpu:5.2f}x{check}")
    print("all videos")
    for name, (wall, cpu) in totals.items():
        print(f"  {name:<12} {wall:7.2f} s {cpu:7.2f} s CPU  {totals['opencv'][0] / wall:5.2f}x "
              f"{totals['opencv'][1] / cpu:5.2f}x")


if __name__ == "__main__":
    main()
