"""render's video encoders side by side on the same frames: H.264 (PyAV libx264, the x264 presets)
against OpenCV's mp4v, the fallback. Frames of samples/demo.mp4 (1768x994) are decoded into memory
first, so only encoding is timed; each variant runs --rounds times, best kept.

    python benchmarks/bench_encode.py [--frames 90] [--rounds 2]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from actionpipe import videowriter  # noqa: E402
from actionpipe.video import read_frames  # noqa: E402


def encode(frames, path: Path, writer_kind: str, preset: str | None) -> float:
    size = (frames[0].shape[1], frames[0].shape[0])
    if preset:
        videowriter.X264_OPTIONS["preset"] = preset
    start = time.perf_counter()
    writer = videowriter.H264Writer(path, 30, size) if writer_kind == "h264" else videowriter.Mp4vWriter(path, 30, size)
    for frame in frames:
        writer.write(frame)
    writer.close()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=90)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    frames = [f.image for _, f in zip(range(args.frames), read_frames(REPO / "samples" / "demo.mp4"))]
    default = videowriter.X264_OPTIONS["preset"]
    variants = [("mp4v (OpenCV)", "mp4v", None)] + [
        (f"h264 {p}" + (" (render's)" if p == default else ""), "h264", p) for p in ("ultrafast", "superfast", "veryfast")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, kind, preset in variants:
            path = Path(tmp) / f"{kind}-{preset}.mp4"
            best = min(encode(frames, path, kind, preset) for _ in range(args.rounds))
            rows.append((name, len(frames) / best, os.path.getsize(path) / len(frames) / 1024))
    videowriter.X264_OPTIONS["preset"] = default
    base = rows[0][1]
    print(f"{len(frames)} frames {frames[0].shape[1]}x{frames[0].shape[0]}, best of {args.rounds}, load {os.getloadavg()[0]:.1f}")
    print(f"{'encoder':26} {'frames/s':>9} {'vs mp4v':>8} {'KB/frame':>9}")
    for name, fps, kb in rows:
        print(f"{name:26} {fps:9.1f} {fps / base:7.2f}x {kb:9.1f}")


if __name__ == "__main__":
    main()
