"""Atomic output: every stage writes to a temporary file beside the target and renames it, so an
interrupted or failed run never leaves a partial file under the final name."""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .errors import ActionpipeError


def _check_parent(path: Path) -> None:
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise ActionpipeError(path, f"cannot write: directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise ActionpipeError(path, f"cannot write: directory {parent} is not writable")


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# Read once at import: os.umask is process-wide, so reading it later could race other threads.
_UMASK = _read_umask()


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path in the target's directory; rename it onto ``path`` on success.

    ``suffix`` keeps an extension some writers insist on (``np.savez`` appends ``.npz``).
    """
    path = Path(path)
    _check_parent(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix + ".part", dir=path.parent or ".")
    except OSError as exc:  # e.g. a read-only or special file system that access() did not flag
        raise ActionpipeError(path, f"cannot write: {exc.strerror}") from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.is_file():  # mkstemp makes 0600 files; outputs get the usual umask permissions
            os.chmod(tmp_path, 0o666 & ~_UMASK)
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def write_json(path: str | Path, obj: Any, indent: int | None = None) -> None:
    """Write ``obj`` as JSON atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=indent)
            f.write("\n")


def save_npz(path: str | Path, **arrays: Any) -> None:
    """``np.savez_compressed`` atomically (the temp name keeps ``.npz`` so numpy adds nothing)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)


def read_json(path: str | Path, what: str = "JSON file") -> Any:
    """Read JSON, turning a missing or malformed file into a one-line ActionpipeError."""
    path = Path(path)
    if not path.is_file():
        raise ActionpipeError(path, f"{what} not found")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ActionpipeError(path, f"not a valid {what}: {exc}") from None


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
