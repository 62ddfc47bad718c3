"""Present class probabilities: the top-k classes per item as a rich table, JSON or CSV."""
from __future__ import annotations

import csv
import io
from typing import Any, Sequence

import numpy as np
from rich.console import Console
from rich.table import Table
from rich.text import Text

from actionpipe.core.fileio import dumps

FORMATS = ("table", "json", "csv")
DEFAULT_TOP_K = 5  # classes shown per item
DEFAULT_FORMAT = "table"


def top_k(probabilities: Sequence[float], classes: Sequence[str], k: int = DEFAULT_TOP_K) -> list[tuple[str, float]]:
    """The ``k`` most probable (class, probability) pairs, most probable first; ties by class order."""
    p = np.asarray(probabilities, dtype=np.float64)
    order = sorted(range(len(p)), key=lambda i: (-p[i], i))[:max(1, k)]
    return [(classes[i], float(p[i])) for i in order]


def ranked(probabilities: Sequence[float], classes: Sequence[str], k: int = DEFAULT_TOP_K) -> dict[str, Any]:
    """JSON-ready ``label``, ``probability`` (the top class) and ``top`` (the top-k list)."""
    top = top_k(probabilities, classes, k)
    return {"label": top[0][0], "probability": round(top[0][1], 6),
            "top": [{"class": c, "probability": round(p, 6)} for c, p in top]}


def answer(ranking: dict[str, Any], rejected: bool) -> dict[str, Any]:
    """A :func:`ranked` dict as the answer reads: a rejected item (the open-set rule's ``unknown``)
    has label and probability null and its top class as the ``closest``."""
    if not rejected:
        return ranking
    return {"label": None, "probability": None,
            "closest": {"class": ranking["label"], "probability": ranking["probability"]}, "top": ranking["top"]}


def summarize(doc: dict[str, Any], k: int = DEFAULT_TOP_K) -> list[dict[str, Any]]:
    """Per item of a scores document: source, top class (null where the item is ``rejected``) and the top-k list."""
    return [{"source": item["source"], **answer(ranked(item["probabilities"], doc["classes"], k),
                                                 bool(item.get("rejected")))}
            for item in doc["items"]]


def percent(value: float | None) -> str:
    """A share as the reports print it (``"95.4%"``; ``"-"`` when there is none)."""
    return "-" if value is None else f"{100 * value:.1f}%"


def _bar(p: float, width: int = 24) -> str:
    full = int(round(p * width))
    return "█" * full + "·" * (width - full)


def render_table(rows: list[dict[str, Any]], console: Console) -> None:
    """One rich table per item: rank, class, probability and a bar."""
    for row in rows:
        # Text, not str: names from a file must never be read as rich markup ("[/x]" would raise).
        title = str(row["source"]) + (": unknown action" if row.get("closest") else "")
        table = Table(title=Text(title) if row["source"] else None, title_justify="left", show_edge=False)
        table.add_column("#", justify="right", style="dim")
        table.add_column("class", style="bold")
        table.add_column("probability", justify="right")
        table.add_column("", no_wrap=True)
        for rank, entry in enumerate(row["top"], 1):
            table.add_row(str(rank), Text(entry["class"]), f"{entry['probability']:.3f}",
                          _bar(entry["probability"]))
        console.print(table)


def render_csv(rows: list[dict[str, Any]]) -> str:
    """Long CSV: source, rank, class, probability (a rejected item's rows, its closest classes, too)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["source", "rank", "class", "probability"])
    for row in rows:
        for rank, entry in enumerate(row["top"], 1):
            writer.writerow([row["source"], rank, entry["class"], f"{entry['probability']:.6f}"])
    return buf.getvalue()


def render(doc: dict[str, Any], fmt: str = DEFAULT_FORMAT, k: int = DEFAULT_TOP_K, console: Console | None = None) -> str | None:
    """Format a scores document; returns text for json/csv, prints the table to ``console``."""
    rows = summarize(doc, k)
    if fmt == "json":
        return dumps({"model": doc.get("model"), "items": rows}, indent=2)
    if fmt == "csv":
        return render_csv(rows)
    render_table(rows, console or Console())
    return None
