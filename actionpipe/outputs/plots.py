"""Timeline plots of a long video: class probabilities over time, segments shaded (matplotlib, Agg).

Input is one ``classify`` result object with a ``timeline`` (``--window``); each window gives its
top-k classes, so a class's line has a gap where it was not among a window's top k.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from actionpipe.core.fileio import atomic_path

MAX_LINES = 6  # classes drawn: the segments' labels first, then the best of the rest

# Colourblind-safe categories (Okabe–Ito, then Tableau), shared with the HTML report's strips.
CLASS_COLOURS = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442",
                 "#4E79A7", "#F28E2B", "#59A14F", "#B07AA1", "#9C755F", "#EDC948", "#76B7B2"]


def class_colours(classes: list[str]) -> dict[str, str]:
    """A colour per class, in the order given (the same class the same colour across a page)."""
    return {c: CLASS_COLOURS[i % len(CLASS_COLOURS)] for i, c in enumerate(dict.fromkeys(classes))}


def result_colours(results: list[dict[str, Any]]) -> dict[str, str]:
    """One colour per class for a run's results: the answers first, then segments, then the rest of
    the top-k lists (the HTML page and the plots share it)."""
    order = [r.get("label") or (r.get("closest") or {}).get("class") for r in results]
    order += [s["label"] for r in results
              for row in [r.get("timeline")] + [p.get("timeline") for p in r.get("per_person") or []]
              if row for s in row["segments"]]
    order += [t["class"] for r in results for t in r.get("top", [])]
    return class_colours([c for c in order if c])


def timeline_series(timeline: dict[str, Any]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Window centres (s) and, per class worth drawing, its probability per window (NaN: not in that
    window's top k)."""
    windows = timeline["windows"]
    centres = np.array([(w["start_s"] + w["end_s"]) / 2 for w in windows], dtype=np.float64)
    best: dict[str, float] = {}
    for w in windows:
        for t in w["top"]:
            best[t["class"]] = max(best.get(t["class"], 0.0), t["probability"])
    chosen = list(dict.fromkeys([s["label"] for s in timeline["segments"]]
                                + sorted(best, key=lambda c: -best[c])))[:MAX_LINES]
    series = {c: np.full(len(windows), np.nan) for c in chosen}
    for i, w in enumerate(windows):
        for t in w["top"]:
            if t["class"] in series:
                series[t["class"]][i] = t["probability"]
    return centres, series


def plot_timeline(result: dict[str, Any], path: str | Path, colours: dict[str, str] | None = None) -> bool:
    """Write ``result``'s timeline as a PNG at ``path``; False (nothing written) without a timeline."""
    timeline = result.get("timeline")
    if not timeline or not timeline.get("windows"):
        return False
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    centres, series = timeline_series(timeline)
    colours = colours or class_colours(list(series))
    duration = float(result.get("duration_s") or timeline["windows"][-1]["end_s"])
    fig, ax = plt.subplots(figsize=(9, 3.2))
    for seg in timeline["segments"]:
        ax.axvspan(seg["start_s"], seg["end_s"], color=colours.get(seg["label"], "#999999"), alpha=0.15, lw=0)
        ax.text((seg["start_s"] + seg["end_s"]) / 2, 1.02, seg["label"], ha="center", va="bottom", fontsize=7,
                clip_on=False)
    for name, values in series.items():
        ax.plot(centres, values, marker=".", lw=1.6, color=colours.get(name, "#999999"), label=name)
    ax.set_xlim(0, duration)
    ax.set_ylim(0, 1)
    ax.set_xlabel("time (s), at each window's centre")
    ax.set_ylabel("probability")
    ax.set_title(Path(str(result["video"])).name, fontsize=10, pad=14)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    return True
