"""Results as JSON Lines: one complete line per video, appended as each finishes, resumable.

Each line is one ``os.write`` followed by ``fsync``, so a killed run leaves whole lines only;
a line cut off by a crash mid-write is removed when the file is opened again. Only a file that is
recognisably ours is ever appended to or trimmed: every complete line a classify result (a JSON
object that starts ``{"video": `` and has a ``status``), and a cut-off last line that starts as
ours do. Anything else (a pose or scores file, whose one line is a JSON object too; a video; a
text file) is refused, never touched. A writer holds an exclusive ``flock`` on the file while it
runs: a second run on the same file is refused rather than append every video a second time.
``/dev/null``, a FIFO or another in-place target is written as a stream (no trimming, no fsync, no lock).
"""
from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Any, Iterable

from actionpipe.core.errors import ActionpipeError
from actionpipe.core.fileio import dumps, output_kind, parse_json

_LINE_START = b'{"video": '  # how every line we write starts (VideoResult.to_dict puts "video" first)


def read_jsonl(path: str | Path) -> tuple[list[dict[str, Any]], int]:
    """The objects of a results JSONL and the length of a cut-off last line (0 if none).

    Raises when the file is not one of ours (see the module docstring), so nothing appends to or
    trims a file it would harm.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ActionpipeError(path, f"cannot read: {exc.strerror}") from None
    keep = data.rfind(b"\n") + 1
    objects = []
    for number, line in enumerate(data[:keep].splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = parse_json(line)
        except ValueError:
            obj = None
        if not (line.startswith(_LINE_START) and isinstance(obj, dict) and isinstance(obj.get("video"), str)
                and isinstance(obj.get("status"), str)):
            raise ActionpipeError(path, f"line {number} is not a classify result: not a results JSONL file; "
                                        "refusing to append to it (give another --jsonl file)")
        objects.append(obj)
    partial = data[keep:]
    if partial and not (partial.startswith(_LINE_START) or _LINE_START.startswith(partial)):
        raise ActionpipeError(path, "does not end in a JSON line: not a results JSONL file; refusing to "
                                    "append to it (give another --jsonl file)")
    return objects, len(partial)


def repair_jsonl(path: str | Path) -> int:
    """Cut a trailing partial line (a run killed mid-write) of a results JSONL; returns the bytes removed."""
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        return 0
    _, partial = read_jsonl(path)
    if partial:
        with open(path, "rb+") as f:
            f.truncate(path.stat().st_size - partial)
            os.fsync(f.fileno())
    return partial


def done_videos(path: str | Path, statuses: Iterable[str]) -> set[str]:
    """Real paths of the videos a JSONL already holds a line of one of ``statuses`` for."""
    statuses = set(statuses)
    if not Path(path).is_file():
        return set()
    objects, _ = read_jsonl(path)
    return {os.path.realpath(d["video"]) for d in objects
            if d.get("status") in statuses and isinstance(d.get("video"), str)}


class JsonlWriter:
    """Appends one JSON object per line; each line is one ``os.write`` then ``fsync``, so a killed
    run leaves whole lines only (a cut-off line from a crash mid-write is removed on open)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.regular = output_kind(self.path) == "file"
        if self.regular and not self.path.parent.is_dir():
            raise ActionpipeError(self.path, f"cannot write: directory {self.path.parent} does not exist")
        if self.regular and self.path.is_file():
            read_jsonl(self.path)  # raises for a file not ours, before it is opened for writing
        try:
            self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | (os.O_CREAT if self.regular else 0), 0o644)
        except OSError as exc:
            raise ActionpipeError(self.path, f"cannot write: {exc.strerror}") from None
        if self.regular:
            self._lock()
        # Repaired (and read by --skip-existing) under the lock: what it holds is what no one else writes.
        self.repaired = repair_jsonl(self.path) if self.regular else 0

    def _lock(self) -> None:
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self.fd)
            raise ActionpipeError(self.path, "another actionpipe run is writing this file (it holds its lock); "
                                             "wait for it to end, or give another --jsonl file") from None

    def write(self, obj: Any) -> None:
        try:
            line = (dumps(obj) + "\n").encode("utf-8")
        except ActionpipeError as exc:
            raise ActionpipeError(self.path, exc.problem) from None
        before = os.fstat(self.fd).st_size if self.regular else 0
        try:
            written = os.write(self.fd, line)
        except OSError as exc:
            raise ActionpipeError(self.path, f"cannot write: {exc.strerror}") from None
        if written != len(line):  # disk full: take the partial line back rather than leave it
            if self.regular:
                os.ftruncate(self.fd, before)
            raise ActionpipeError(self.path, f"short write ({written} of {len(line)} bytes): disk full?")
        if self.regular:  # fsync means nothing on (and fails for) devices and FIFOs
            os.fsync(self.fd)

    def close(self) -> None:
        os.close(self.fd)
