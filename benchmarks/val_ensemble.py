"""What averaging several models would give on the real-footage `val` clips, before the product runs ensembles.

The members (same classes, e.g. one recipe's seeds, each calibrated) are scored on the cached poses
of ``benchmarks/data/real_val.csv``; the ensemble's clip probabilities are the members' mean, and
its open-set margin the mean of each member's score minus its own threshold (rejected below 0; the
background class on top answers ``unknown`` as in one model). Printed: top-1 on the clips of the
classes the reference model has too and the honest rate, paired against the reference. Usage::

    python benchmarks/val_ensemble.py --members runs/E-0 runs/E-1 runs/E-2 --pose-cache /tmp/val-poses
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from actionpipe.model.cards import find_card
from actionpipe.training.evaluate import Evaluation, evaluate_videos
from actionpipe.training.footage import compare

VAL = Path(__file__).resolve().parent / "data" / "real_val.csv"


def ensemble(members: list[Evaluation]) -> Evaluation:
    """The members' mean probabilities and mean open-set margin, as one evaluation (threshold 0)."""
    first = members[0]
    if any(m.classes != first.classes or m.names != first.names for m in members):
        raise SystemExit("the members must have the same classes and be scored on the same clips")
    calibrated = all(m.open_set_scores is not None for m in members)   # else no open-set rule
    margin = np.mean([m.open_set_scores - m.open_set_threshold for m in members], 0) if calibrated else None
    return Evaluation(first.classes, first.names, first.labels, np.mean([m.probabilities for m in members], 0),
                      margin, 0.0 if calibrated else None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", nargs="+", required=True)
    parser.add_argument("--reference", default="general-stgcn")
    parser.add_argument("--pose-cache", required=True)
    args = parser.parse_args()
    scored = {name: evaluate_videos(find_card(name), VAL, "cpu", args.pose_cache, split="val")
              for name in dict.fromkeys([*args.members, args.reference])}   # the reference may be a member
    reference, members = scored[args.reference], [(name, scored[name]) for name in args.members]
    for name, evaluation in [*members, ("ensemble", ensemble([e for _, e in members]))]:
        c = compare(evaluation, reference)
        print(f"{name}: " + "; ".join(
            f"{key} {100 * c[key]['first']['value']:.1f}% ({100 * c[key]['difference']:+.1f} points "
            f"[{100 * c[key]['ci95'][0]:+.1f}, {100 * c[key]['ci95'][1]:+.1f}] on {c[key]['n']} clips)"
            for key in ("top1_shared", "honest_rate")))


if __name__ == "__main__":
    main()
