"""render's video encoders side by side on the same frames: H.264 (PyAV libx264, the x264 presets)
against OpenCV's mp4v, the fallback. Frames of samples/demo.mp4 (1768x994) are decoded into memory
first, so only encoding is timed; each variant runs --rounds times, best kept. ``--memory``: peak
RSS of a process writing 10x more frames than another (H.264, 640x360, the same frames looped):
memory must not grow with length.

    python benchmarks/bench_encode.py [--frames 90] [--rounds 2] [--memory]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from actionpipe import videowriter  # noqa: E402
from actionpipe.video.reader import read_frames  # noqa: E402


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


def peak_rss_mb(frames: int) -> float:
    """Peak RSS of a fresh process that decodes 30 frames and writes ``frames`` of them, looped."""
    code = f"""
import resource, sys, tempfile, cv2
sys.path.insert(0, {str(REPO)!r})
from actionpipe.video.writer import H264Writer
from actionpipe.video.reader import read_frames
images = [cv2.resize(f.image, (640, 360)) for _, f in zip(range(30), read_frames({str(REPO / "samples" / "demo.mp4")!r}))]
with tempfile.TemporaryDirectory() as tmp:
    writer = H264Writer(tmp + "/m.mp4", 30, (640, 360))
    for i in range({frames}):
        writer.write(images[i % 30])
    writer.close()
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""
    return float(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=90)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--memory", action="store_true", help="Only the peak-RSS comparison.")
    args = parser.parse_args()
    if args.memory:
        for n in (300, 3000):
            print(f"H.264 640x360, {n} frames ({n / 30:.0f} s): peak RSS {peak_rss_mb(n):.0f} MB")
        return
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
