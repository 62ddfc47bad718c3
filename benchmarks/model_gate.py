"""The gate a new default model passes: it must beat every incumbent on the real-footage `val` clips.

A candidate passes when, against each incumbent (each at its card's pose precision), on the cached poses of
``benchmarks/data/real_val.csv`` (realclips ``val`` + realvideo_dev):

* top-1 on the clips of the classes both models have is higher, and the honest rate (the right
  class, or ``unknown`` where the model has none) is higher;
* neither is worse beyond noise: the paired bootstrap's 95 % lower bound of each difference is
  above :data:`NOISE_FLOOR`;

and Penn Action test top-1 stays at or above :data:`PENN_FLOOR`. Until a candidate passes, the default
is the better incumbent on `val` (honest rate first, then top-1). Usage::

    python benchmarks/model_gate.py --candidate runs/footage-1 --incumbents general-stgcn penn-action-stgcn \\
        --pose-cache /tmp/val-poses [--penn ../shared/datasets/penn_action] [--json gate.json]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from actionpipe.model.cards import find_card
from actionpipe.training.evaluate import evaluate_dataset, evaluate_videos
from actionpipe.training.footage import compare, footage_metrics

VAL = Path(__file__).resolve().parent / "data" / "real_val.csv"
NOISE_FLOOR = -0.03
PENN_FLOOR = 0.94


def decide(comparisons: dict[str, dict], penn_top1: float | None) -> dict:
    """Whether the candidate passes, with each condition's outcome."""
    checks = {}
    for name, c in comparisons.items():
        for key in ("top1_shared", "honest_rate"):
            checks[f"{key} > {name}"] = c[key]["difference"] > 0
            checks[f"{key} vs {name}: lower bound > {NOISE_FLOOR:+.2f}"] = c[key]["ci95"][0] > NOISE_FLOOR
    checks[f"Penn Action test >= {PENN_FLOOR}"] = penn_top1 is not None and penn_top1 >= PENN_FLOOR
    return {"passes": all(checks.values()), "checks": checks}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--candidate", required=True)
    parser.add_argument("--incumbents", nargs="+", default=["general-stgcn", "penn-action-stgcn"])
    parser.add_argument("--pose-cache", required=True)
    parser.add_argument("--penn", default="../shared/datasets/penn_action")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    cards = {name: find_card(name) for name in [args.candidate, *args.incumbents]}
    evaluations = {name: evaluate_videos(card, VAL, "cpu", args.pose_cache, split="val")
                   for name, card in cards.items()}
    figures = {name: {k: v for k, v in footage_metrics(ev).items() if k in ("top1", "honest_rate", "per_label")}
                     for name, ev in evaluations.items()}
    comparisons = {name: compare(evaluations[args.candidate], evaluations[name]) for name in args.incumbents}
    penn = evaluate_dataset(cards[args.candidate], f"penn:{args.penn}", "test").metrics()["top1"]
    verdict = decide(comparisons, penn)
    best = max(args.incumbents, key=lambda n: (figures[n]["honest_rate"]["value"], figures[n]["top1"]["value"]))
    verdict["default"] = args.candidate if verdict["passes"] else best
    for name, f in figures.items():
        t, h = f["top1"], f["honest_rate"]
        print(f"{name}: top-1 {100 * t['value']:.1f}% {t['ci95']} of {t['n']}; "
              f"honest {100 * h['value']:.1f}% {h['ci95']} of {h['n']}")
    for name, c in comparisons.items():
        for key in ("top1_shared", "honest_rate"):
            lo, hi = c[key]["ci95"]
            print(f"{args.candidate} - {name}, {key}: {100 * c[key]['difference']:+.1f} points "
                  f"[{100 * lo:+.1f}, {100 * hi:+.1f}] on {c[key]['n']} clips")
    print(f"Penn Action test top-1 of {args.candidate}: {100 * penn:.1f}%")
    for check, ok in verdict["checks"].items():
        print(f"  {'pass' if ok else 'FAIL'}  {check}")
    print(f"default: {verdict['default']}")
    if args.json:
        args.json.write_text(json.dumps({"figures": figures, "comparisons": comparisons, "penn_top1": penn,
                                         **verdict}, indent=2))


if __name__ == "__main__":
    main()
