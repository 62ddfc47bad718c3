"""How a sample's windows make its scores: the one place for the aggregate rules.

* ``mean``: every window counts the same (test-time averaging over several crops);
* ``motion``: each window weighted by its motion energy (:func:`actionpipe.model.infer.motion_energy`), so
  the still stretches of a clip count less than the action; the plain mean when nothing moves;
* ``max``: each class's best window — "does this happen anywhere" for a short action in a long
  video; not a distribution (it does not sum to 1).

A card's ``inference.aggregate`` is one of :data:`WINDOW_AGGREGATES` (calibration tempers their
result); ``classify --aggregate`` and the Python API take any of :data:`AGGREGATES`. No numpy at
import: the command line reads these names before it loads anything.
"""
from __future__ import annotations

WINDOW_AGGREGATES = ("mean", "motion")         # what a card may name
AGGREGATES = WINDOW_AGGREGATES + ("max",)      # what a call may name


def combine_windows(probabilities, energies=None, method: str = "mean"):
    """A sample's class scores (C,) from its windows' probabilities (W, C), by ``method``;
    ``energies`` (W,) are the ``motion`` weights."""
    import numpy as np

    if method not in AGGREGATES:
        raise ValueError(f"unknown aggregate {method!r} (expected one of {', '.join(AGGREGATES)})")
    p = np.asarray(probabilities, dtype=np.float64)
    if p.ndim != 2 or len(p) == 0:
        raise ValueError(f"window probabilities must be (W>=1, C), got shape {p.shape}")
    if method == "max":
        return p.max(0)
    if method == "mean":
        return p.mean(0)
    w = np.asarray(energies, dtype=np.float64)
    if w.shape != (len(p),) or (w < 0).any():
        raise ValueError(f"motion needs one non-negative energy per window, got {w.shape} for {len(p)} windows")
    total = w.sum()
    return (w @ p) / total if total > 0 else p.mean(0)
