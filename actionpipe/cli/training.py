"""``actionpipe train``, ``eval`` and ``calibrate``: the click layer over :mod:`actionpipe.training.train`,
:mod:`actionpipe.training.evaluate` and :mod:`actionpipe.training.calibrate` (registered on the main group in :mod:`actionpipe.cli.main`)."""
from __future__ import annotations

from pathlib import Path

import click

from actionpipe.core import console
from actionpipe.cli.options import (BATCH, COUNT, FPS, IMGSZ, POSITIVE, PROBABILITY, THREADS, VIEWS, LibraryChoice,
                                    LibraryDefault, card_from_option, check_dataset_option, check_stdout_once,
                                    device_option, model_option, pose_backend_option, pose_precision_option,
                                    speed_option)


# --- train / eval --------------------------------------------------------------------------------

@click.command("train")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="Training config (JSON or YAML). Default: the ST-GCN paper's recipe; see actionpipe.training.config.")
@click.option("-o", "--output", "run_dir", required=True, type=click.Path(file_okay=False),
              help="Run directory: card.json + weights.pt (the model), checkpoint.pt, log.jsonl, config.json.")
@click.option("--dataset", help="videos:DIR (one folder per class), videos:LABELS.csv (file,label[,group][,split]), "
                                "penn:DIR, utd:DIR, jhmdb:DIR/splitK.npz, urfd:DIR, msr:DIR, utk:DIR, kinetics:DIR or poses:LABELS.csv "
                                "(replaces the config's datasets).")
@click.option("--from", "source", metavar="MODEL",
              help="Fine-tune this model (card name or folder): its preprocessing, backbone and pose settings, "
                   "a new head for the dataset's classes (shared classes keep their rows).")
@click.option("--freeze", type=click.IntRange(0, 10), help="With --from: keep the first N of the 10 ST-GCN blocks "
                                                          "(and the input batch norm) as they are.")
@click.option("--pose-cache", type=click.Path(file_okay=False),
              help="videos: where pose files are cached (default $ACTIONPIPE_CACHE/poses, ~/.cache/actionpipe/poses).")
@click.option("--labels", help="Kinetics label JSON (default: DIR_label.json beside DIR).")
@click.option("--epochs", type=COUNT, help="Override optim.epochs.")
@click.option("--batch-size", type=BATCH, help="Override optim.batch_size.")
@click.option("--lr", type=POSITIVE, help="Override optim.lr.")
@click.option("--seed", type=int, help="Override seed (same seed, same run).")
@click.option("--name", help="Model name written to the card.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Override any config key, JSON value: --set augment.rotation=15 --set optim.ema=0.99; "
                   "a number indexes a list (the next number adds an item): --set datasets.5.weight=2 "
                   "--set datasets.0.align=null")
@click.option("--resume", is_flag=True, help="Continue the run in -o from its last checkpoint.")
@click.option("--stop-after", type=COUNT, help="Stop after this many epochs (continue later with --resume).")
@device_option
@click.option("--threads", type=THREADS, help="CPU threads for torch (default: torch's).")
def train_cmd(config_path, run_dir, dataset, source, freeze, pose_cache, labels, epochs, batch_size, lr, seed, name,
              sets, resume, stop_after, device, threads):
    """Train an ST-GCN on labelled videos or skeleton clips, from scratch or fine-tuning a model (--from);
    writes a model directory usable as --model."""
    from actionpipe.training.train import train
    from actionpipe.training.config import load_config, parse_override

    if resume and config_path is None and (Path(run_dir) / "config.json").is_file():
        config_path = str(Path(run_dir) / "config.json")  # the run's own config, as it was saved
    check_dataset_option(dataset)
    overrides = dict(parse_override(s) for s in sets)
    flags = {}   # the option that set each override, for its messages (the others are --set KEY)
    if dataset is not None:
        overrides["datasets"], flags["datasets"] = [], "--dataset"   # --dataset replaces the config's sources
    for key, value, flag in (("dataset", dataset, "--dataset"), ("finetune.source", source, "--from"),
                             ("finetune.freeze_blocks", freeze, "--freeze"), ("pose_cache", pose_cache, "--pose-cache"),
                             ("labels", labels, "--labels"), ("optim.epochs", epochs, "--epochs"),
                             ("optim.batch_size", batch_size, "--batch-size"), ("optim.lr", lr, "--lr"),
                             ("seed", seed, "--seed"), ("name", name, "--name")):
        if value is not None:
            overrides[key], flags[key] = value, flag
    cfg = load_config(config_path, overrides, flags)
    if not cfg.dataset and not cfg.datasets:
        from actionpipe.core.errors import UsageError
        raise UsageError(None, "no dataset: pass --dataset (e.g. penn:../shared/datasets/penn_action) or set it in --config")
    out = train(cfg, run_dir, resume=resume, device=device, threads=threads, stop_after=stop_after)
    console.info(f"{out}: model written (card.json, weights.pt)")


@click.command("eval")
@model_option
@click.option("--dataset", required=True,
              help="penn:DIR, utd:DIR[@YAW], jhmdb:DIR/splitK.npz, urfd:DIR, msr:DIR, utk:DIR, kinetics:DIR, poses:LABELS.csv "
                   "(skeletons) or "
                   "videos:DIR (one folder per class), "
                   "videos:LABELS.csv / a video folder with --labels (end to end: pose, pack, model).")
@click.option("--split", type=LibraryChoice("training.datasets:SPLITS"), help="Dataset split (Penn: test is the benchmark).")
@click.option("--labels", help="Kinetics label JSON, or the labels CSV (file,label) of a video folder.")
@click.option("--json", "as_json", is_flag=True, help="Metrics as JSON on stdout (tables go to stderr).")
@click.option("--plot", type=click.Path(dir_okay=False), help="Write the confusion matrix as a PNG.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False), metavar="FILE",
              help="Write one self-contained HTML page: accuracy, confusion matrix, per-class accuracy, a row per clip.")
@click.option("--record", is_flag=True, help="Add the result (with this command line) to the model's card.json.")
@click.option("--compare", "compare_model", metavar="MODEL",
              help="Videos: score a second model on the same (cached) poses, with a paired bootstrap of the difference.")
@click.option("--label-map", "label_map_path", type=click.Path(dir_okay=False),
              help="Videos: a JSON object mapping the dataset's labels to the model's class names "
                   "(synonyms such as bicep_curl/arm_curl are known without it).")
@click.option("--pose-cache", type=click.Path(file_okay=False),
              help="Videos: keep each video's pose.json here and reuse it on the next run (posed again when made with other pose settings).")
@click.option("--imgsz", type=IMGSZ, help="Videos: pose model input size (default: the card's).")
@click.option("--fps", type=FPS, help="Videos: pose frame rate (default: the card's).")
@pose_backend_option
@pose_precision_option
@speed_option
@device_option
@click.option("--batch", default=LibraryDefault("training.evaluate:DEFAULT_BATCH"), show_default=True, type=BATCH,
              help="Windows per forward pass.")
def eval_cmd(model, dataset, split, labels, as_json, plot, html_path, record, compare_model, label_map_path, pose_cache,
             imgsz, fps, pose_backend, pose_precision, speed, device, batch):
    """Accuracy of a model on a labelled dataset: top-1/top-5, per class, confusion matrix."""
    import json
    import shlex

    from rich.console import Console

    from actionpipe.core.errors import UsageError
    from actionpipe.training.evaluate import (evaluate_dataset, evaluate_videos, percent, plot_confusion, record_metrics,
                                              render_metrics)
    from actionpipe.training.footage import compare, footage_metrics, render_footage

    for option, path in (("--html", html_path), ("--plot", plot)):
        check_stdout_once(as_json, option, path)
    card = card_from_option(model)
    kind, _, rest = dataset.partition(":")
    videos = kind == "videos" or (Path(dataset).is_dir() and labels and labels.endswith(".csv"))
    if videos:
        csv_path, video_root = (rest, None) if kind == "videos" else (labels, dataset)
        if pose_cache:
            Path(pose_cache).mkdir(parents=True, exist_ok=True)
        synonyms = read_synonyms(label_map_path)
        options = dict(imgsz=imgsz, fps=fps, batch=batch, pose_backend=pose_backend, pose_precision=pose_precision,
                       speed=speed)
        result = evaluate_videos(card, csv_path, device, pose_cache, video_root, split, synonyms, **options)
        second = card_from_option(compare_model) if compare_model else None
        other = (evaluate_videos(second, csv_path, device, pose_cache, video_root, split, synonyms, **options)
                 if second else None)
    elif compare_model or label_map_path:
        raise UsageError(None, "--compare and --label-map are for video datasets (videos:LABELS.csv)")
    else:
        check_dataset_option(dataset)
        result, other = evaluate_dataset(card, dataset, split, labels, device, batch), None
    metrics = result.metrics()
    out = console.stderr if as_json else Console()
    render_metrics(metrics, out)
    if videos:
        metrics["footage"] = footage_metrics(result)
        comparison = compare(result, other) if other is not None else None
        if comparison:
            metrics["comparison"] = {"model": second.name, **comparison}
        render_footage(metrics["footage"], out, comparison, (card.name, second.name if second else ""))
    title = f"{card.name} on {dataset}{' ' + split if split else ''}: top-1 {percent(metrics['top1'])}"
    if plot:
        plot_confusion(metrics, plot, title)
    if html_path:
        from actionpipe.cli.report import write_eval_page

        write_eval_page(html_path, result, metrics, title)
    if record:
        footage = metrics.get("footage")
        record_metrics(card, {"dataset": dataset, "split": split, "clips": metrics["clips"], "top1": metrics["top1"],
                              "top5": metrics["top5"],
                              "per_class": {c: v["accuracy"] for c, v in metrics["per_class"].items()},
                              **({"footage": {k: footage[k] for k in ("top1", "honest_rate", "per_label", "operating_curve",
                                                                         "clip_answers")}}
                                 if footage else {}),
                              **({"pose_precision": result.pose_precision} if result.pose_precision else {}),
                              "command": shlex.join(["actionpipe", "eval", "--model", str(model or card.name),
                                                     "--dataset", dataset] + (["--split", split] if split else [])
                                                    + (["--labels", labels] if labels else []))})
    if as_json:
        click.echo(json.dumps({"model": card.name, "dataset": dataset, "split": split, **metrics}, indent=2))


def read_synonyms(path: str | None) -> dict[str, str] | None:
    """``--label-map``: a JSON object of dataset label -> model class, or None."""
    if not path:
        return None
    from actionpipe.core.errors import UsageError
    from actionpipe.core.fileio import read_json

    found = read_json(path)
    if not isinstance(found, dict) or not all(isinstance(k, str) and isinstance(v, str) and v for k, v in found.items()):
        raise UsageError(path, "--label-map: expected a JSON object mapping dataset labels to class names")
    return found


# --- calibrate -----------------------------------------------------------------------------------

@click.command("calibrate")
@click.option("--model", required=True, help="Model directory (or card name) whose card.json is updated.")
@click.option("--dataset", help="Its training data: penn:DIR, utd:DIR, jhmdb:DIR/splitK.npz, urfd:DIR, msr:DIR, utk:DIR, kinetics:DIR, "
                                "poses:LABELS.csv or videos:DIR. Default: the datasets named in the card's "
                                "training config.")
@click.option("--method", default=LibraryDefault("training.calibrate:DEFAULT_METHOD"), show_default=True,
              type=LibraryChoice("model.openset:METHODS"),
              help="Open-set score (see actionpipe.model.openset).")
@click.option("--views", default=LibraryDefault("training.calibrate:DEFAULT_VIEWS"), show_default=True, type=VIEWS,
              help="Augmented copies of each validation clip added to the fit (training augmentation).")
@click.option("--accept", default=LibraryDefault("training.calibrate:DEFAULT_ACCEPT"), show_default=True,
              type=PROBABILITY,
              help="Share of validation clips the open-set threshold accepts.")
@device_option
@click.option("--batch", default=LibraryDefault("training.evaluate:DEFAULT_BATCH"), show_default=True, type=BATCH,
              help="Windows per forward pass.")
@click.option("--json", "as_json", is_flag=True, help="Print the written sections (and test-split measurements) as JSON.")
def calibrate_cmd(model, dataset, method, views, accept, device, batch, as_json):
    """Fit temperature scaling and the open-set rule on the validation split; write them into the card.

    Uses the validation clips the trainer held out (the card's val_fraction and split_seed); the
    test split, when the dataset has one, is only measured. Running it again gives the same card.
    """
    import json

    from actionpipe.training.calibrate import calibrate
    from actionpipe.model.cards import find_card

    check_dataset_option(dataset)
    card = find_card(model)
    out = calibrate(card, dataset, method=method, accept=accept, views=views, device=device, batch_size=batch)
    if as_json:
        click.echo(json.dumps(out, indent=2))
    cal, rule, held = out["calibration"], out["open_set"], out["calibration"].get("held_out")
    console.info(f"{card.card_path}: temperature {cal['temperature']:.3f} (validation ECE {cal['ece_before']:.3f} "
                 f"-> {cal['ece_after']:.3f}); open set {rule['method']}, threshold {rule['threshold']:.3f}")
    if held:
        console.info(f"test split ({held['clips']} clips): ECE {held['ece_before']:.3f} -> {held['ece_after']:.3f}, "
                     f"{held['rejection_rate']:.1%} rejected as unknown")
