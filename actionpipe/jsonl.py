"""Results as JSON Lines: one complete line per video, appended as each finishes, resumable.

Each line is one ``os.write`` followed by ``fsync``, so a killed run leaves whole lines only;
a line cut off by a crash mid-write is removed when the file is opened again.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable

from .errors import ActionpipeError


def repair_jsonl(path: str | Path) -> int:
    """Cut a trailing partial line (a run killed mid-write); returns the bytes removed."""
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        return 0
    with open(path, "rb+") as f:
        data = f.read()
        keep = data.rfind(b"\n") + 1
        if keep < len(data):
            f.truncate(keep)
            os.fsync(f.fileno())
    return len(data) - keep


def done_videos(path: str | Path, statuses: Iterable[str]) -> set[str]:
    """Real paths of the videos a JSONL already holds a line of one of ``statuses`` for."""
    statuses = set(statuses)
    done = set()
    if Path(path).is_file():
        with open(path, encoding="utf-8") as f:
            for line in f:
                try:
                    d = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(d, dict) and d.get("status") in statuses and "video" in d:
                    done.add(os.path.realpath(d["video"]))
    return done


class JsonlWriter:
    """Appends one JSON object per line; each line is one ``os.write`` then ``fsync``, so a killed
    run leaves whole lines only (a cut-off line from a crash mid-write is removed on open)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.parent.is_dir():
            raise ActionpipeError(self.path, f"cannot write: directory {self.path.parent} does not exist")
        self.repaired = repair_jsonl(self.path)
        try:
            self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            raise ActionpipeError(self.path, f"cannot write: {exc.strerror}") from None

    def write(self, obj: Any) -> None:
        line = (json.dumps(obj) + "\n").encode("utf-8")
        before = os.fstat(self.fd).st_size
        written = os.write(self.fd, line)
        if written != len(line):  # disk full: take the partial line back rather than leave it
            os.ftruncate(self.fd, before)
            raise ActionpipeError(self.path, f"short write ({written} of {len(line)} bytes): disk full?")
        os.fsync(self.fd)

    def close(self) -> None:
        os.close(self.fd)
