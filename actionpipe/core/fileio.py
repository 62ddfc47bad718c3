"""Reading and writing user files safely: the one place every stage's input and output goes through.

Output (:func:`atomic_path`, :func:`write_json`, :func:`save_npz`, :func:`atomic_dir`):

* a regular file (or a new name) is written to a temporary name beside it and renamed on success,
  so an interrupted or failed run never leaves a partial file under the final name;
* ``-`` is stdout, and an existing non-regular target that can take a stream — a character device
  such as ``/dev/null``, a FIFO, ``/dev/stdout`` or ``/dev/fd/N`` — is written in place (the
  content is made in a temporary file first, so a failure still writes nothing); nothing is
  ever renamed over such a target. Directories, sockets and block devices are refused;
* temporary names carry the writer's process id and host, so a run killed with SIGKILL leaves
  ``.NAME.PID@HOST~….part`` files that the next run writing into the same folder removes.

:func:`check_outputs` refuses an output that is one of the inputs (same file through any path:
symlinks, ``./``, hard links), so no command can overwrite what it reads.

Input: :func:`read_json` and :func:`dumps` accept and produce strict JSON only (no NaN or
infinity, no absurd nesting): a bad file is one :class:`ActionpipeError` naming it.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import math
import numbers
import os
import re
import shutil
import socket
import stat
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from actionpipe.core.errors import ActionpipeError, UsageError

STDOUT = "-"
# What a write fails with when the disk or quota is full: the output's problem, whatever the writer.
_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
# Paths that name an already open file descriptor: writing them in place is the only sane way.
_FD_ALIAS = re.compile(r"^/(dev/(stdout|stderr|fd/\d+)|proc/(self|\d+)/fd/\d+)$")


def output_kind(path: str | Path) -> str:
    """How an output path is written: ``stdout`` (``-``), ``stream`` (in place: character device,
    FIFO, an open file descriptor's name) or ``file`` (temporary file renamed onto it)."""
    if str(path) == STDOUT:
        return "stdout"
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:  # a new name, or a dangling symlink (replaced like a file)
        return "file"
    except OSError as exc:
        raise ActionpipeError(path, f"cannot write: {exc.strerror}") from None
    if stat.S_ISREG(mode):
        return "stream" if _FD_ALIAS.match(os.path.abspath(path)) else "file"
    if stat.S_ISCHR(mode) or stat.S_ISFIFO(mode):
        return "stream"
    if stat.S_ISDIR(mode):
        raise ActionpipeError(path, "is a directory, not a file to write")
    raise ActionpipeError(path, "is a socket or block device; refusing to write to it")


def _in_place(path: str | Path) -> bool:
    """Whether writing ``path`` harms no file (stdout, a device, a FIFO); errors are the writer's to report."""
    try:
        return output_kind(path) != "file"
    except ActionpipeError:
        return False


def _file_key(path: str | Path) -> tuple:
    """What identifies a file: device and inode when it exists (any path to it), else its real path."""
    try:
        st = os.stat(path)
        return (st.st_dev, st.st_ino)
    except OSError:
        return (os.path.realpath(path),)


def check_outputs(outputs: Iterable[str | Path | None], inputs: Iterable[str | Path],
                  replaces_folder: bool = False) -> None:
    """Usage error when an output is one of the inputs, or two outputs are the same file.

    ``replaces_folder``: the outputs are folders replaced as a whole (``extract``, ``convert --to
    openpose``), so an input anywhere inside one is refused too. ``-`` and in-place targets
    (``/dev/null``, FIFOs) are not checked: writing them harms nothing.
    """
    named = [Path(p) for p in outputs if p is not None and not _in_place(p)]
    ins = {_file_key(p): p for p in inputs if os.path.exists(p)}
    seen: dict[tuple, Path] = {}
    for out in named:
        key = _file_key(out)
        if key in ins:
            also = "" if str(ins[key]) == str(out) else f" ({ins[key]})"
            raise UsageError(out, f"is also an input{also}; refusing to overwrite it")
        if key in seen:
            raise UsageError(out, f"is given for two outputs ({seen[key]} and {out})")
        seen[key] = out
        if replaces_folder and out.is_dir():
            root = os.path.realpath(out)
            inside = [p for p in ins.values() if os.path.realpath(p).startswith(root + os.sep)]
            if inside:
                raise UsageError(out, f"holds the input {inside[0]}; refusing to replace it")


# --- temporary names and what killed runs left behind --------------------------------------------

_HOST = re.sub(r"[^A-Za-z0-9.-]", "_", socket.gethostname()) or "host"


def _temp_prefix(path: Path) -> str:
    return f".{path.name}.{os.getpid()}@{_HOST}~"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


_swept: set[str] = set()  # folders already cleaned by this process (a folder of 10,000 outputs is scanned once)


def remove_stale_temps(path: str | Path) -> None:
    """Remove the temporary files and folders that writers in ``path``'s folder on this host left
    when they were killed (their process is gone); a live writer's are kept. Once per folder."""
    parent = os.path.realpath(Path(path).parent if str(Path(path).parent) else ".")
    if parent in _swept:
        return
    _swept.add(parent)
    pattern = re.compile(rf"^\.(.+)\.(\d+)@{re.escape(_HOST)}~[^/]*\.(part|old)(\.[^./]*)?$")
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return
    for entry in entries:
        match = pattern.match(entry.name)
        if match and int(match.group(2)) != os.getpid() and not _alive(int(match.group(2))):
            target, old = os.path.join(parent, match.group(1)), os.path.join(entry.path, "replaced")
            if match.group(3) == "old" and not os.path.lexists(target) and os.path.exists(old):
                os.replace(old, target)  # killed mid-swap: the old folder is all there is, put it back
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)


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


# --- output -------------------------------------------------------------------------------------

def _copy_in_place(tmp: Path, path: str | Path) -> None:
    """Copy a finished temporary file into stdout or an in-place target (appending, never truncating:
    ``/dev/stdout`` may be a file the shell opened, with earlier output in it)."""
    try:
        with open(tmp, "rb") as src:
            if str(path) == STDOUT:
                sys.stdout.flush()
                shutil.copyfileobj(src, sys.stdout.buffer)
                sys.stdout.buffer.flush()
            else:
                with open(path, "ab") as dst:
                    shutil.copyfileobj(src, dst)
    except OSError as exc:
        raise ActionpipeError(path, f"cannot write: {exc.strerror}") from None


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path to write ``path``'s content to; on success it becomes ``path``.

    Regular files are renamed into place; ``-`` and in-place targets get the content copied in
    (see the module docstring). ``suffix`` ends the temporary name, for writers that pick the
    format from the extension (OpenCV's video writer).
    """
    kind = output_kind(path)
    target = Path(path)
    if kind == "file":
        _check_parent(target)
        remove_stale_temps(target)
    directory = target.parent if kind == "file" else None  # None: the system's temporary folder
    try:
        fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(target), suffix=".part" + suffix, dir=directory)
    except OSError as exc:  # e.g. a read-only or special file system that access() did not flag
        raise ActionpipeError(path, f"cannot write: {exc.strerror}") from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if kind == "file":
            if tmp_path.is_file():  # mkstemp makes 0600 files; outputs get the usual umask permissions
                os.chmod(tmp_path, 0o666 & ~_UMASK)
            os.replace(tmp_path, target)
        else:
            _copy_in_place(tmp_path, path)
    except ActionpipeError as exc:  # a writer's error names the temporary file; the user gave the output
        if exc.path != str(tmp_path):
            raise
        raise type(exc)(path, exc.problem) from None
    except OSError as exc:  # a full disk (or quota) while writing: one line naming the output
        if exc.errno not in _WRITE_ERRNOS and exc.filename not in (str(tmp_path), str(target)):
            raise
        raise ActionpipeError(path, f"cannot write: {exc.strerror or exc}") from None
    finally:
        tmp_path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; on success it replaces ``path`` (an old folder is
    removed only once the new one is in place). Callers decide whether an old folder may go."""
    target = Path(path)
    if str(path) == STDOUT:
        raise UsageError(None, "a folder cannot be written to stdout ('-'): give a folder name")
    if target.exists() and not target.is_dir():
        raise ActionpipeError(target, "exists and is not a folder")
    _check_parent(target)
    remove_stale_temps(target)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=_temp_prefix(target), suffix=".part", dir=target.parent))
    except OSError as exc:
        raise ActionpipeError(target, f"cannot write: {exc.strerror}") from None
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_UMASK)  # mkdtemp makes it owner-only
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=_temp_prefix(target), suffix=".old", dir=target.parent))
            os.replace(target, old / "replaced")
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError) and exc.errno in _WRITE_ERRNOS:  # a full disk: one line naming the folder
            raise ActionpipeError(target, f"cannot write: {exc.strerror}") from None
        raise


def make_dirs(path: str | Path) -> Path:
    """``mkdir -p`` for an output folder; a failure (full disk, no permission) is one line naming it."""
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ActionpipeError(path, f"cannot create folder: {exc.strerror}") from None
    return Path(path)


def dumps(obj: Any, indent: int | None = None) -> str:
    """Strict JSON text: NaN or infinity anywhere is an error, never a bare ``NaN`` in the output."""
    try:
        return json.dumps(obj, indent=indent, allow_nan=False)
    except ValueError:
        raise ActionpipeError(None, "the result holds NaN or infinity, which is not JSON; nothing written") from None


def write_json(path: str | Path, obj: Any, indent: int | None = None) -> None:
    """Write ``obj`` as strict JSON atomically (``-``: stdout)."""
    try:
        text = dumps(obj, indent) + "\n"
    except ActionpipeError as exc:
        raise ActionpipeError(path, exc.problem) from None
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def save_npz(path: str | Path, **arrays: Any) -> None:
    """``np.savez_compressed`` atomically (``-``: stdout)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)


# --- input --------------------------------------------------------------------------------------

def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text} is out of range")
    return value


def _bounded_int(text: str) -> int:
    value = int(text)
    if abs(value) >= 2 ** 63:
        raise ValueError(f"integer {text[:20]}… is out of range")
    return value


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def parse_json(text: str | bytes) -> Any:
    """Strict JSON (no NaN/Infinity, finite numbers, 64-bit integers); ValueError otherwise."""
    try:
        return json.loads(text, parse_float=_finite_float, parse_int=_bounded_int, parse_constant=_no_constant)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def read_json(path: str | Path, what: str = "JSON file") -> Any:
    """Read strict JSON, turning a missing or malformed file into a one-line ActionpipeError."""
    path = Path(path)
    if not path.exists():
        raise ActionpipeError(path, f"{what} not found")
    if not path.is_file():
        raise ActionpipeError(path, f"is not a regular file (expected a {what})")
    try:
        return parse_json(path.read_bytes())
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ActionpipeError(path, f"not a valid {what}: {exc}") from None
    except OSError as exc:
        raise ActionpipeError(path, f"cannot read: {exc.strerror}") from None


def is_number(value: Any, whole: bool = False) -> bool:
    """A finite JSON number (a whole one with ``whole``); true and false are not numbers."""
    kind = numbers.Integral if whole else numbers.Real
    return isinstance(value, kind) and not isinstance(value, bool) and math.isfinite(value)


def first_non_finite(obj: Any, where: str = "") -> str | None:
    """Where in a parsed document (``optim.lr``, ``datasets[0].weight``) the first NaN or infinity
    is, or None: YAML and Python callers can hand over what strict JSON never parses."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return where or "value"
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, (list, tuple)) else ()
    for key, value in items:
        found = first_non_finite(value, f"{where}[{key}]" if isinstance(key, int) else
                                 f"{where}.{key}" if where else str(key))
        if found is not None:
            return found
    return None


def check_keys(d: dict[str, Any], allowed: Iterable[str], path: str | Path | None, where: str) -> None:
    """Reject keys a documented format does not have (a typo must not silently become a default)."""
    if not isinstance(d, dict):
        raise ActionpipeError(path, f"{where}: expected a JSON object, got {type(d).__name__}")
    unknown = sorted(set(d) - set(allowed))
    if unknown:
        raise ActionpipeError(path, f"{where}: unknown key(s) {', '.join(map(repr, unknown))} "
                                    f"(expected some of {', '.join(sorted(allowed))})")


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
