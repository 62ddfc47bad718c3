"""Few-shot: fine-tuning a trained model (``train --from``) against training from scratch, on classes
the source model never saw.

Protocol: the source (backbone) is ``--backbone`` (default the shipped Penn Action model); the
target classes are the UTD-MHAD actions it does not know (by name; UTD's ``bowling`` is Penn's
``bowl`` and left out too): 22 actions. For each k (clips per class) and each of ``--draws``
random draws, k training clips per class are drawn from the UTD cross-subject *train* split
(subjects 1, 3, 5, 7: 16 clips per class at most, so a larger k takes all 16) and two models are
trained on exactly those clips, with the same epochs, batch, augmentation and seed:

* scratch: the backbone's own recipe (its config's optimiser: SGD, lr 0.05, cosine, warm-up,
  EMA, label smoothing), random initialisation;
* fine-tuned: ``finetune.source`` = the backbone (its weights, a new head, the fine-tuning
  defaults of :mod:`actionpipe.training.finetune`, ``--freeze`` blocks frozen).

No validation hold-out (too few clips; the last epoch is the model). Both are scored top-1 on the
whole cross-subject *test* split of those classes (subjects 2, 4, 6, 8; frontal view), which no
choice here looked at. Training time is the CPU time (and wall-clock) of
``actionpipe.training.train.train`` with ``--threads`` torch threads: with one thread, CPU seconds are what
an otherwise idle core would take, whatever else the machine runs. UTD actions are all right-handed and swipe_left/swipe_right are mirror
images of each other, so the horizontal flip is off for both.

    python benchmarks/bench_fewshot.py --threads 1 --out build/fewshot.json   # docs/training.md's numbers
    python benchmarks/bench_fewshot.py --k 5 --draws 1 --epochs 3              # a quick look
    python benchmarks/bench_fewshot.py --summary build/fewshot*.json           # the table of several runs

Results are written to ``--out`` after every run (JSON), then summarised on stdout.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from actionpipe import console  # noqa: E402
from actionpipe.model.cards import find_card  # noqa: E402
from actionpipe.model.infer import Predictor  # noqa: E402
from actionpipe.training.model_input import clip_sample  # noqa: E402
from actionpipe.training.train import TrainingData, train  # noqa: E402
from actionpipe.training.config import load_config  # noqa: E402
from actionpipe.training.utd_mhad import ACTIONS, load_utd_mhad  # noqa: E402

SYNONYMS = {"bowling": "bowl"}   # UTD name -> the Penn class it is


def target_classes(backbone_classes: list[str]) -> list[str]:
    return [a for a in ACTIONS if SYNONYMS.get(a, a) not in backbone_classes]


def draw(clips, classes: list[str], k: int, seed: int) -> list:
    rng = np.random.default_rng(seed)
    out = []
    for label in classes:
        own = [c for c in clips if c.label == label]
        out += [own[i] for i in sorted(rng.choice(len(own), min(k, len(own)), replace=False))]
    return out


def top1(run_dir: Path, clips, classes: list[str]) -> float:
    card = find_card(run_dir)
    predictions = Predictor(card, "cpu", 64).predict([clip_sample(c, card.preprocessing) for c in clips],
                                                     [c.name for c in clips])
    predicted = [card.classes[int(p.probabilities.argmax())] for p in predictions]
    return float(np.mean([p == c.label for p, c in zip(predicted, clips)]))


def config(arm: str, args) -> object:
    common = {"optim.epochs": args.epochs, "val_fraction": 0.0, "seed": 0, "augment.flip": 0.0,
              "name": f"fewshot-{arm}", "dataset": f"utd:{args.utd}"}
    if arm == "scratch":   # the backbone's own recipe, from random weights
        return load_config(find_card(args.backbone).directory / "config.json",
                           {**common, "datasets": [], "label_map": {}})
    return load_config(None, {**common, "finetune.source": args.backbone, "finetune.freeze_blocks": args.freeze})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbone", default="penn-action-stgcn")
    parser.add_argument("--utd", default=str(REPO.parent / "shared" / "datasets" / "utd_mhad"))
    parser.add_argument("--k", type=int, nargs="+", default=[10, 5, 20])
    parser.add_argument("--draws", type=int, default=3)
    parser.add_argument("--draw-ids", type=int, nargs="+", help="Only these draws (default 0 .. draws-1): to "
                                                                "spread one protocol over processes")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--freeze", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(REPO / "build" / "fewshot.json"))
    parser.add_argument("--arms", nargs="+", default=["scratch", "finetune"], choices=["scratch", "finetune"])
    parser.add_argument("--summary", nargs="+", metavar="JSON", help="Only print the table of earlier --out files")
    args = parser.parse_args()
    if args.summary:
        summarise([r for path in args.summary for r in json.loads(Path(path).read_text())["runs"]])
        return

    import torch
    torch.set_num_threads(args.threads)
    console.set_quiet(True)
    classes = target_classes(find_card(args.backbone).classes)
    train_pool = [c for c in load_utd_mhad(args.utd, "train") if c.label in classes]
    test = [c for c in load_utd_mhad(args.utd, "test") if c.label in classes]
    results = {"backbone": args.backbone, "classes": classes, "test_clips": len(test), "epochs": args.epochs,
               "freeze_blocks": args.freeze, "threads": args.threads, "command": " ".join(sys.argv), "runs": []}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    print(f"{len(classes)} target classes, {len(train_pool)} train-split clips, {len(test)} test clips", flush=True)
    for k in args.k:
        for d in args.draw_ids or range(args.draws):
            clips = draw(train_pool, classes, k, seed=1000 * k + d)
            for arm in args.arms:
                cfg = config(arm, args)
                data = TrainingData(clips, np.ones(len(clips)), [], sorted(classes), {"clips": len(clips)})
                with tempfile.TemporaryDirectory() as tmp:
                    started, cpu_started = time.perf_counter(), time.process_time()
                    # threads again: the previous evaluation's Predictor set torch to every core
                    run = train(cfg, Path(tmp) / "run", device="cpu", threads=args.threads, data=data)
                    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
                    accuracy = top1(run, test, classes)
                results["runs"].append({"k": k, "draw": d, "arm": arm, "clips": len(clips),
                                        "top1": round(accuracy, 4), "train_s": round(seconds, 1),
                                        "train_cpu_s": round(cpu_seconds, 1)})
                out.write_text(json.dumps(results, indent=2))
                print(f"k={k} draw {d} {arm:8s}: top-1 {100 * accuracy:5.1f} %, {seconds:5.0f} s "
                      f"({cpu_seconds:.0f} CPU s)", flush=True)
    summarise(results["runs"])


def summarise(runs: list[dict]) -> None:
    """Mean ± std over draws of top-1 per k and arm, the gain, and the mean training CPU time."""
    print("\nk    draws  scratch top-1    fine-tuned top-1   gain (points)   train CPU s (scratch / fine-tuned)")
    for k in sorted({r["k"] for r in runs}):
        rows = {arm: [r for r in runs if r["k"] == k and r["arm"] == arm] for arm in ("scratch", "finetune")}
        draws = sorted({r["draw"] for r in rows["scratch"]} & {r["draw"] for r in rows["finetune"]})
        if not draws:
            continue
        acc = {arm: 100 * np.array([r["top1"] for r in rs if r["draw"] in draws]) for arm, rs in rows.items()}
        gain = acc["finetune"] - acc["scratch"]
        secs = {arm: np.mean([r["train_cpu_s"] for r in rs]) for arm, rs in rows.items()}
        print(f"{k:<4} {len(draws):<6} {acc['scratch'].mean():5.1f} ± {acc['scratch'].std():4.1f}     "
              f"{acc['finetune'].mean():5.1f} ± {acc['finetune'].std():4.1f}       "
              f"{gain.mean():+5.1f} (min {gain.min():+.1f})    {secs['scratch']:.0f} / {secs['finetune']:.0f}")


if __name__ == "__main__":
    main()
