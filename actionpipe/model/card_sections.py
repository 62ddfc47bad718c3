"""The typed sections of a model card (:mod:`actionpipe.model.cards`): the ones a program acts on.

Each is a small frozen dataclass whose fields are the section's keys: :meth:`from_dict` refuses
unknown keys and bad values (path-less errors the card loader attributes to its file),
:meth:`to_dict` gives the JSON back (None fields left out). ``docs/schemas/card.schema.json``
says the same in JSON Schema.
"""
from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, fields
from typing import Any, Callable, ClassVar

from actionpipe.model.aggregates import WINDOW_AGGREGATES
from actionpipe.core.devices import POSE_PRECISIONS
from actionpipe.core.limits import MAX_FPS, MAX_FRAMES, MAX_IMGSZ
from actionpipe.core.errors import ActionpipeError
from actionpipe.core.fileio import check_keys, is_number
from actionpipe.model.openset import METHODS


class _Section:
    """A typed card section: its keys are the dataclass fields; a None field is left out of the JSON."""

    key: ClassVar[str]   # the section's name in card.json

    @classmethod
    def from_dict(cls, d: Any):
        """Build from the section's JSON object; unknown keys and bad values are path-less errors."""
        check_keys(d, [f.name for f in fields(cls)], None, cls.key)
        missing = [f.name for f in fields(cls) if f.default is MISSING and f.name not in d]
        if missing:
            raise ActionpipeError(None, f"{cls.key}: missing {', '.join(missing)}")
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    def _expect(self, name: str, ok: Callable[[Any], bool], expected: str, optional: bool = True) -> None:
        value = getattr(self, name)
        if value is None and optional:
            return
        if not ok(value):
            raise ActionpipeError(None, f"{self.key}.{name} must be {expected}, got {value!r}")


@dataclass(frozen=True)
class PoseSection(_Section):
    """``pose``: the pose settings the card's accuracy was measured with (None: not said)."""

    key: ClassVar[str] = "pose"
    imgsz: int | None = None
    conf: float | None = None
    fps: float | None = None
    precision: str | None = None   # one of devices.POSE_PRECISIONS; bf16 runs only where the CPU has it, else fp32

    def __post_init__(self):
        self._expect("imgsz", lambda v: is_number(v, whole=True) and 32 <= v <= MAX_IMGSZ,
                     f"a whole number from 32 to {MAX_IMGSZ}")
        self._expect("conf", lambda v: is_number(v) and 0 < v < 1, "a number between 0 and 1")
        self._expect("fps", lambda v: is_number(v) and 0 < v <= MAX_FPS, f"a positive number up to {MAX_FPS:g}")
        self._expect("precision", lambda v: isinstance(v, str) and v in POSE_PRECISIONS,
                     f"one of {', '.join(POSE_PRECISIONS)}")


@dataclass(frozen=True)
class InferenceSection(_Section):
    """``inference``: the windows a sample is cut into (frames at the model's rate; no window: the
    sample whole), how their probabilities are combined (:mod:`actionpipe.model.aggregates`) and whether
    each window is also seen mirrored (``mirror_average``: left and right swapped, the two pooled
    features averaged, so the answer does not depend on which way the person faces)."""

    key: ClassVar[str] = "inference"
    window_frames: int | None = None
    window_stride: int | None = None   # None: the window (windows that do not overlap)
    aggregate: str = "mean"
    mirror_average: bool = False

    def __post_init__(self):
        for name in ("window_frames", "window_stride"):
            self._expect(name, lambda v: is_number(v, whole=True) and 1 <= v <= MAX_FRAMES,
                         f"a whole number from 1 to {MAX_FRAMES} (or absent)")
        self._expect("aggregate", lambda v: isinstance(v, str) and v in WINDOW_AGGREGATES,
                     f"one of {', '.join(WINDOW_AGGREGATES)}", optional=False)
        self._expect("mirror_average", lambda v: isinstance(v, bool), "true or false", optional=False)

    @property
    def stride(self) -> int | None:
        """Frames from one window to the next: ``window_stride``, else the window."""
        return self.window_stride or self.window_frames


_MEASURES = ("ece_before", "ece_after", "nll_before", "nll_after")
HELD_OUT_KEYS = ("split", "clips", *_MEASURES, "accuracy", "rejection_rate")
NEGATIVES_KEYS = ("clips", "rejected", "auroc")


def _text(value: Any) -> bool:
    return isinstance(value, str)


@dataclass(frozen=True)
class CalibrationSection(_Section):
    """``calibration`` (written by ``actionpipe calibrate``): the fitted ``temperature`` and what it
    was fitted and measured on (:mod:`actionpipe.model.openset`)."""

    key: ClassVar[str] = "calibration"
    temperature: float
    ece_before: float | None = None
    ece_after: float | None = None
    nll_before: float | None = None
    nll_after: float | None = None
    measured_on: str | None = None
    fitted_on: str | None = None
    held_out: dict[str, Any] | None = None   # HELD_OUT_KEYS: the same measures on the test splits

    def __post_init__(self):
        self._expect("temperature", lambda v: is_number(v) and v > 0, "a positive number", optional=False)
        for name in _MEASURES:
            self._expect(name, is_number, "a number")
        for name in ("measured_on", "fitted_on"):
            self._expect(name, _text, "a string")
        if self.held_out is not None:
            check_keys(self.held_out, HELD_OUT_KEYS, None, "calibration.held_out")


@dataclass(frozen=True)
class OpenSetSection(_Section):
    """``open_set`` (written by ``actionpipe calibrate``): the score ``method``, the ``threshold``
    below which a clip is rejected, and for ``mahalanobis`` the statistics ``file`` beside the card."""

    key: ClassVar[str] = "open_set"
    method: str
    threshold: float
    accept: float | None = None        # the share of validation clips the threshold accepts
    chosen: str | None = None
    file: str | None = None
    sha256: str | None = None          # of the file; None: not checked
    shrinkage: float | None = None
    fitted_on: str | None = None
    validation_negatives: dict[str, Any] | None = None   # NEGATIVES_KEYS

    def __post_init__(self):
        self._expect("method", lambda v: isinstance(v, str) and v in METHODS, f"one of {', '.join(METHODS)}",
                     optional=False)
        self._expect("threshold", is_number, "a number", optional=False)
        self._expect("accept", lambda v: is_number(v) and 0 < v < 1, "a number between 0 and 1")
        self._expect("shrinkage", lambda v: is_number(v) and 0 <= v <= 1, "a number between 0 and 1")
        for name in ("chosen", "sha256", "fitted_on"):
            self._expect(name, _text, "a string")
        self._expect("file", lambda v: isinstance(v, str) and v not in ("", ".", "..") and "/" not in v
                     and "\\" not in v, "a file name beside the card")
        if self.method == "mahalanobis" and self.file is None:
            raise ActionpipeError(None, "open_set.file must name the statistics file of the mahalanobis method")
        if self.validation_negatives is not None:
            check_keys(self.validation_negatives, NEGATIVES_KEYS, None, "open_set.validation_negatives")
