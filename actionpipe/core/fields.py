"""Typed values out of a parsed JSON document, for the readers of pose files, frames manifests,
sample metadata and cards: a missing key or a value of the wrong kind is a path-less
:class:`ActionpipeError` saying which field and what it holds (the reader adds its file), never
Python's ``KeyError: 'source'`` or ``invalid literal for int()``.
"""
from __future__ import annotations

from typing import Any

from actionpipe.core.errors import ActionpipeError
from actionpipe.core.fileio import is_number


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def need(d: Any, key: str, where: str = "") -> Any:
    """``d[key]``; ``where`` names the object (``frame 3``) in the message."""
    if not isinstance(d, dict):
        raise ActionpipeError(None, f"{where or 'document'}: expected a JSON object, got {_shown(d)}")
    if key not in d:
        raise ActionpipeError(None, f"{where + ': ' if where else ''}missing \"{key}\"")
    return d[key]


def whole(value: Any, what: str, minimum: int | None = None) -> int:
    """A whole JSON number (``3`` or ``3.0``; not ``true``, ``"3"`` or ``3.5``), at least ``minimum``."""
    if not (is_number(value) and float(value).is_integer()) or (minimum is not None and value < minimum):
        at_least = f" >= {minimum}" if minimum is not None else ""
        raise ActionpipeError(None, f"{what} must be a whole number{at_least}, got {_shown(value)}")
    return int(value)


def number(value: Any, what: str, positive: bool = False) -> float:
    """A finite JSON number (``positive``: above 0)."""
    if not is_number(value) or (positive and value <= 0):
        raise ActionpipeError(None, f"{what} must be a {'positive ' if positive else ''}number, got {_shown(value)}")
    return float(value)


def items(value: Any, what: str) -> list:
    """A JSON array."""
    if not isinstance(value, list):
        raise ActionpipeError(None, f"{what} must be a list, got {_shown(value)}")
    return value


def mapping(value: Any, what: str) -> dict:
    """A JSON object."""
    if not isinstance(value, dict):
        raise ActionpipeError(None, f"{what} must be a JSON object, got {_shown(value)}")
    return value


def text(value: Any, what: str) -> str:
    """A JSON string."""
    if not isinstance(value, str):
        raise ActionpipeError(None, f"{what} must be a string, got {_shown(value)}")
    return value


def distinct(names: list[str], what: str) -> list[str]:
    """``names`` when none repeats (class names: a repeated one would make two outputs one class)."""
    seen: set[str] = set()
    repeated = sorted({n for n in names if n in seen or seen.add(n)})
    if repeated:
        raise ActionpipeError(None, f"{what}: {', '.join(map(repr, repeated))} named more than once")
    return names
