"""Real-footage figures that decide: top-1 on the clips of the model's classes, the honest rate on all
clips (the right class, or ``unknown`` where the model has none), per class, the confusion, 95 %
bootstrap intervals, and a paired comparison of two models on the same clips.

An *answer* is the model's top class, or ``unknown`` where the open-set rule rejects the clip (below
its threshold, or the background class on top) or no person was found. A clip is *honest* when its
answer is its label (a model class) or ``unknown`` (a label the model lacks: ``other``, ``plank``, ...).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from actionpipe.model.openset import BACKGROUND_CLASS, background_top

UNKNOWN = "unknown"
RESAMPLES = 2000     # bootstrap resamples: the 95 % interval's ends move by < 1 point between seeds
BOOTSTRAP_SEED = 0


def answers(evaluation) -> list[str]:
    """Each clip's answer: its top class, or ``unknown`` (rejected, or no person found)."""
    probs = evaluation.probabilities
    rejected = evaluation.rejected if evaluation.rejected is not None else np.zeros(len(probs), bool)
    return [UNKNOWN if rejected[i] or probs[i].sum() <= 0 else evaluation.classes[int(probs[i].argmax())]
            for i in range(len(probs))]


def clip_table(evaluation) -> list[dict[str, Any]]:
    """Per clip: name, label, answer, top class and its probability, and
    whether the top class is right (``right``: known clips only) and the answer honest."""
    # Labels come named as the model names them (evaluate_videos); a clip its label map sends to the
    # background class is a clip of no model class.
    classes = set(evaluation.classes) - {BACKGROUND_CLASS}
    rows = []
    for name, label, answer, p in zip(evaluation.names, evaluation.labels, answers(evaluation),
                                      evaluation.probabilities):
        top = evaluation.classes[int(p.argmax())] if p.sum() > 0 else None
        known = label in classes
        rows.append({"name": name, "label": label, "answer": answer, "top": top,
                     "probability": round(float(p.max()), 4), "known": known,
                     "right": bool(known and top == label),
                     "honest": bool(answer == label if known else answer == UNKNOWN)})
    return rows


def interval(values: np.ndarray, resamples: int = RESAMPLES, seed: int = BOOTSTRAP_SEED) -> list[float] | None:
    """The 95 % percentile-bootstrap interval of the mean of ``values`` (None when empty)."""
    values = np.asarray(values, float)
    if not len(values):
        return None
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), (resamples, len(values)))].mean(1)
    return [round(float(np.percentile(means, 2.5)), 4), round(float(np.percentile(means, 97.5)), 4)]


def _share(values: Sequence[bool]) -> dict[str, Any]:
    values = np.asarray(values, float)
    return {"value": round(float(values.mean()), 4) if len(values) else None, "n": int(len(values)),
            "ci95": interval(values)}


def footage_metrics(evaluation) -> dict[str, Any]:
    """``top1`` (known clips, no rejection), ``top1_answered`` (known clips, a rejection is wrong),
    ``honest_rate`` (all clips), each with its count and 95 % interval; ``per_label``; ``confusion``
    (true label × answer) and the per-clip ``clip_answers``."""
    rows = clip_table(evaluation)
    known = [r for r in rows if r["known"]]
    labels = sorted({r["label"] for r in rows})
    per_label = {}
    for label in labels:
        mine = [r for r in rows if r["label"] == label]
        per_label[label] = {"clips": len(mine), "known": mine[0]["known"],
                            "top1": round(float(np.mean([r["right"] for r in mine])), 4) if mine[0]["known"] else None,
                            "honest": round(float(np.mean([r["honest"] for r in mine])), 4)}
    columns = sorted({r["answer"] for r in rows} - {UNKNOWN}) + [UNKNOWN]
    confusion = {label: {a: n for a in columns if (n := sum(1 for r in rows if r["label"] == label and r["answer"] == a))}
                 for label in labels}
    return {"clips": len(rows), "known_clips": len(known),
            "operating_curve": operating_curve(evaluation, rows),
            "top1": _share([r["right"] for r in known]),
            "top1_answered": _share([r["answer"] == r["label"] for r in known]),
            "honest_rate": _share([r["honest"] for r in rows]),
            "per_label": per_label, "confusion": confusion,
            "clip_answers": [{k: r[k] for k in ("name", "label", "answer", "top", "probability")} for r in rows]}


ANSWERED_SHARES = (1.0, 0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.6, 0.5)


def operating_curve(evaluation, rows: list[dict[str, Any]] | None = None) -> list[dict[str, Any]] | None:
    """What the open-set threshold trades (None without an open-set rule): per threshold, the share
    of clips answered (not ``unknown``), the accuracy of those answers (an answer to a clip of no
    model class is wrong) and the honest rate. Points at the thresholds that answer
    :data:`ANSWERED_SHARES` of the clips, and the card's own (``chosen``)."""
    scores = evaluation.open_set_scores
    if scores is None:
        return None
    rows = rows or clip_table(evaluation)
    top_right = np.array([r["top"] == r["label"] for r in rows])
    no_class = np.array([not r["known"] for r in rows])   # honest when not answered
    answerable = np.isfinite(scores) & ~background_top(evaluation.classes, evaluation.probabilities)

    def point(threshold: float, chosen: bool = False) -> dict[str, Any]:
        answered = answerable & (scores >= threshold)
        honest = np.where(answered, top_right, no_class)
        return {"threshold": round(float(threshold), 4), "answered": round(float(answered.mean()), 4),
                "accuracy_answered": round(float(top_right[answered].mean()), 4) if answered.any() else None,
                "honest_rate": round(float(honest.mean()), 4), **({"chosen": True} if chosen else {})}

    finite = np.sort(scores[answerable])[::-1]
    if not len(finite):
        return []
    curve = [point(finite[min(len(finite), max(1, round(share * len(scores)))) - 1]) for share in ANSWERED_SHARES]
    curve.append(point(evaluation.open_set_threshold, chosen=True))
    return sorted(curve, key=lambda c: -c["answered"])


def paired_difference(a: Sequence[bool], b: Sequence[bool], resamples: int = RESAMPLES,
                      seed: int = BOOTSTRAP_SEED) -> dict[str, Any]:
    """Mean of ``a − b`` over the same clips, with the 95 % paired-bootstrap interval (clips resampled
    together, so what both models get right or wrong cancels)."""
    diff = np.asarray(a, float) - np.asarray(b, float)
    return {"difference": round(float(diff.mean()), 4) if len(diff) else None, "n": int(len(diff)),
            "ci95": interval(diff, resamples, seed)}


def compare(first, second) -> dict[str, Any]:
    """Paired comparison of two evaluations of the same clips: top-1 on the clips whose label both
    models have, and the honest rate on all clips (first − second)."""
    if list(first.names) != list(second.names):
        raise ValueError("the two evaluations are not of the same clips")
    rows_a, rows_b = clip_table(first), clip_table(second)
    shared = [i for i, (ra, rb) in enumerate(zip(rows_a, rows_b)) if ra["known"] and rb["known"]]
    return {"shared_classes": sorted({rows_a[i]["label"] for i in shared}),
            "top1_shared": {"first": _share([rows_a[i]["right"] for i in shared]),
                            "second": _share([rows_b[i]["right"] for i in shared]),
                            **paired_difference([rows_a[i]["right"] for i in shared],
                                                [rows_b[i]["right"] for i in shared])},
            "honest_rate": {"first": _share([r["honest"] for r in rows_a]),
                            "second": _share([r["honest"] for r in rows_b]),
                            **paired_difference([r["honest"] for r in rows_a], [r["honest"] for r in rows_b])}}


def render_footage(metrics: dict[str, Any], console_out, comparison: dict[str, Any] | None = None,
                   names: tuple[str, str] = ("first", "second")) -> None:
    """The figures as rich tables: summary with intervals, per label, and the comparison."""
    from rich.table import Table

    def fmt(share: dict[str, Any]) -> str:
        if share["value"] is None:
            return "-"
        lo, hi = share["ci95"]
        return f"{100 * share['value']:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}] of {share['n']}"

    console_out.print(f"real footage, {metrics['clips']} clips: top-1 {fmt(metrics['top1'])}; "
                      f"honest rate {fmt(metrics['honest_rate'])}", markup=False)
    table = Table(title="per label (answers: class or unknown)", show_edge=False)
    for col in ("label", "clips", "top-1", "honest", "answers"):
        table.add_column(col, justify="left" if col in ("label", "answers") else "right")
    for label, v in metrics["per_label"].items():
        given = ", ".join(f"{a} {n}" for a, n in sorted(metrics["confusion"][label].items(), key=lambda x: -x[1]))
        table.add_row(label + ("" if v["known"] else " (no class)"), str(v["clips"]),
                      "-" if v["top1"] is None else f"{100 * v['top1']:.0f}%", f"{100 * v['honest']:.0f}%", given)
    console_out.print(table)
    if metrics.get("operating_curve"):
        curve = Table(title="operating curve (open-set threshold: answered share vs accuracy of the answers)",
                      show_edge=False)
        for col in ("threshold", "answered", "accuracy of answers", "honest rate"):
            curve.add_column(col, justify="right")
        for c in metrics["operating_curve"]:
            curve.add_row(f"{c['threshold']:.3f}" + (" (card)" if c.get("chosen") else ""), f"{100 * c['answered']:.0f}%",
                          "-" if c["accuracy_answered"] is None else f"{100 * c['accuracy_answered']:.0f}%",
                          f"{100 * c['honest_rate']:.0f}%")
        console_out.print(curve)
    if comparison:
        for key, title in (("top1_shared", "top-1 on shared classes"), ("honest_rate", "honest rate")):
            c = comparison[key]
            lo, hi = c["ci95"] if c["ci95"] else (float("nan"), float("nan"))
            console_out.print(f"{title}: {names[0]} {fmt(c['first'])}, {names[1]} {fmt(c['second'])}; "
                              f"difference {100 * c['difference']:+.1f} points [{100 * lo:+.1f}, {100 * hi:+.1f}]",
                              markup=False)
