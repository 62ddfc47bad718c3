"""Run a model card's ST-GCN over packed samples and produce class probabilities.

Long samples are cut into the card's windows (``inference.window_frames`` / ``window_stride``)
and the window probabilities are combined as the card's ``inference.aggregate`` says
(:func:`actionpipe.model.aggregates.combine_windows`): ``mean`` (the default: test-time averaging over several crops) or
``motion`` (a mean weighted by each window's :func:`motion_energy`, so windows where the person
stands still — a golfer's address, a pitcher's set position, the idle ends of a long clip — count
less than the action itself). All windows of all samples go through the model in shared batches.

A calibrated card (``actionpipe calibrate``, see :mod:`actionpipe.model.openset`) adds a temperature —
window probabilities are ``softmax(logits / T)``, a sample's are its combined uncalibrated window
probabilities tempered the same way (so calibration never changes its class) — and an open-set rule: each sample's
``open_set_score`` (from its window features / logits; higher = more like the training data) and
whether it is ``rejected`` (score below the card's threshold; never when ``reject=False``). A card
with the background class (:data:`~actionpipe.model.openset.BACKGROUND_CLASS`) rejects the samples
that class tops, calibrated or not.

Scores file (JSON, ``format_version`` 2; version 1, whose window ``end_s`` was the time of the
window's last frame, is still read)::

    {"format": "actionpipe.scores", "format_version": 2,
     "model": {"name": ..., "card": ..., "weights_sha256": ...}, "classes": [...],
     "items": [{"source": "clip.npz", "probabilities": [...],
                "open_set_score": -8.2, "rejected": false,        # calibrated cards only
                "windows": [{"start_s": 0.0, "end_s": 2.1, "probabilities": [...]}, ...]}]}

Windows are half-open, here as in timelines: ``[start_s, end_s)``, ``end_s`` the time just after
the window's last frame (that frame's time plus one frame at the sample's rate).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from actionpipe.model.cards import ModelCard
from actionpipe.core.devices import resolve_device, resolve_stgcn_engine, use_cpu_threads
from actionpipe.model.aggregates import WINDOW_AGGREGATES, combine_windows  # noqa: F401 (also imported from here)
from actionpipe.core.errors import ActionpipeError, about
from actionpipe.core.fields import distinct
from actionpipe.core.fileio import check_keys, is_number, read_json
from actionpipe.pose.layouts import get_layout
from actionpipe.model.openset import OpenSet, rejections, softmax, temper
from actionpipe.skeleton.pack import Sample, fit_length

FORMAT = "actionpipe.scores"
FORMAT_VERSION = 2
READ_VERSIONS = (1, 2)
DEFAULT_BATCH = 16  # windows per forward pass
_KEYS = ("format", "format_version", "model", "classes", "items")
_MODEL_KEYS = ("name", "card", "weights_sha256")
_ITEM_KEYS = ("source", "probabilities", "aggregate", "open_set_score", "rejected", "windows")
SUM_TOLERANCE = 1e-3  # a distribution's probabilities sum to 1 within this (they are rounded to 6 digits)
_WINDOW_KEYS = ("start_s", "end_s", "probabilities")


def window_starts(length: int, window: int, stride: int) -> list[int]:
    """Start frames of windows covering ``length`` frames; the last window ends at the clip's end."""
    if length <= window:
        return [0]
    starts = list(range(0, length - window + 1, stride))
    if starts[-1] != length - window:
        starts.append(length - window)
    return starts


def motion_energy(data: np.ndarray) -> float:
    """How much the people in ``data`` (C, T, V, M) move: per frame step, the mean displacement of
    the joints seen in both frames (the sample's normalised units), squared — an energy, so a still
    window weighs far less than a moving one — and averaged over the steps; 0 when nothing is seen
    twice. Averaging over joints before squaring keeps one flickering joint from dominating."""
    xy, seen = data[:2], data[2] > 0
    both = seen[1:] & seen[:-1]                                   # (T-1, V, M)
    step = np.sqrt(((xy[:, 1:] - xy[:, :-1]) ** 2).sum(0))        # (T-1, V, M)
    counted = both.sum(axis=(1, 2))
    if not counted.any():
        return 0.0
    speed = (step * both).sum(axis=(1, 2))[counted > 0] / counted[counted > 0]
    return float((speed ** 2).mean())


def sample_windows(sample: Sample, window: int, stride: int, pad: str
                   ) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """A sample's model inputs (``window`` frames each; the whole sample when 0), their half-open
    [start, end) times and motion energies (of the frames before padding)."""
    data = sample.data[0]  # (C, T, V, M)
    length = data.shape[1]
    # One frame's duration: the sample's rate, else (samples made without one) its time step.
    steps = np.diff(sample.times)
    if sample.meta.get("fps"):
        frame_s = 1.0 / float(sample.meta["fps"])
    else:
        frame_s = float(np.median(steps)) if len(steps) else 0.0
    if not window:
        return [data], np.array([[sample.times[0], sample.times[-1] + frame_s]]), np.array([motion_energy(data)])
    crops, times, energies = [], [], []
    for s in window_starts(length, window, stride):
        crop = data[:, s:s + window]
        energies.append(motion_energy(crop))
        crops.append(fit_length(crop, window, pad, axis=1))
        times.append([sample.times[s], sample.times[min(s + window, length) - 1] + frame_s])
    return crops, np.array(times, dtype=np.float64), np.array(energies)


@dataclass
class WindowOutputs:
    """What the model made of one sample's windows."""

    logits: np.ndarray     # (W, num_class)
    features: np.ndarray   # (W, D), pooled, before the classifier
    times: np.ndarray      # (W, 2) start_s, end_s
    motion: np.ndarray     # (W,) motion energies


def mirrored(x: np.ndarray, flip_permutation: np.ndarray) -> np.ndarray:
    """Model input ``x`` (N, C, T, V, M) of the mirrored video: each left joint swapped with its right
    twin, x negated (every normalisation centres x, so mirroring is a sign)."""
    out = x[:, :, :, flip_permutation].copy()
    out[:, 0] = -out[:, 0]
    return out


def torch_windows(model, device):
    """The ``forward`` of :func:`run_windows` for a torch :class:`~actionpipe.model.stgcn.STGCN` (in
    eval mode) on ``device``: numpy windows in, numpy (features, logits) out."""
    import torch

    def forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with torch.inference_mode():
            f = model.features(torch.from_numpy(x).to(device))
            logits = model.fcn(f[:, :, None, None]).flatten(1)
            return f.float().cpu().numpy(), logits.float().cpu().numpy()
    return forward


def run_windows(forward, samples: Sequence[Sample], window: int, stride: int, pad: str,
                batch_size: int = DEFAULT_BATCH, mirror: np.ndarray | None = None) -> list[WindowOutputs]:
    """Cut each sample into windows (:func:`sample_windows`) and run ``forward`` (windows -> pooled
    features and logits: :func:`torch_windows`, or the OpenVINO model's) over all of them in shared
    batches. Training's validation uses it too, so checkpoints are chosen on exactly what inference
    computes. ``mirror``: the layout's flip permutation, to average each window's features (and so
    its logits: the classifier is affine) with its mirror image's."""
    crops, owner, times, motion = [], [], [], []
    for i, sample in enumerate(samples):
        c, t, e = sample_windows(sample, window, stride, pad)
        crops += c
        owner += [i] * len(c)
        times.append(t)
        motion.append(e)
    logits, features = [], []
    step = max(1, batch_size) if window else 1   # without fixed windows, lengths differ
    for b in range(0, len(crops), step):
        x = np.stack(crops[b:b + step]).astype(np.float32, copy=False)
        f, l = forward(x)
        if mirror is not None:
            f_m, l_m = forward(mirrored(x, mirror))
            f, l = (f + f_m) / 2, (l + l_m) / 2
        logits.append(l)
        features.append(f)
    all_logits = np.concatenate(logits) if logits else np.zeros((0, 0), np.float32)
    all_features = np.concatenate(features) if features else np.zeros((0, 0), np.float32)
    owner_arr = np.array(owner)
    return [WindowOutputs(all_logits[owner_arr == i], all_features[owner_arr == i], times[i], motion[i])
            for i in range(len(samples))]


@dataclass
class Prediction:
    """Class probabilities of one sample, and of each window it was cut into.

    ``window_logits`` and ``features`` (the mean pooled feature of the windows) are what the
    open-set score is computed from; ``open_set_score`` is None for a card without an open-set rule.
    ``window_motion``: each window's :func:`motion_energy` (the ``motion`` aggregate's weights).
    """

    probabilities: np.ndarray           # (num_class,)
    window_probabilities: np.ndarray    # (W, num_class)
    window_times: np.ndarray            # (W, 2) start_s, end_s
    window_logits: np.ndarray | None = None   # (W, num_class), before temperature
    features: np.ndarray | None = None        # (D,)
    open_set_score: float | None = None
    rejected: bool = False
    window_motion: np.ndarray | None = None   # (W,)

    def __repr__(self) -> str:
        best = int(np.argmax(self.probabilities))
        said = f", open_set_score={self.open_set_score:.2f}, rejected={self.rejected}" if self.open_set_score is not None else ""
        return (f"Prediction(class {best} p={float(self.probabilities[best]):.3f}, "
                f"{len(self.window_probabilities)} window(s){said})")


class Predictor:
    """A loaded model plus the card that says how to feed it; reuse it for many samples."""

    def __init__(self, card: ModelCard, device: str = "auto", batch_size: int = DEFAULT_BATCH, reject: bool = True,
                 engine: str = "auto"):
        self.card = card
        self.temperature = card.temperature
        self.open_set = OpenSet.from_card(card)
        self.reject = reject
        self.device = resolve_device(device)
        self.engine = resolve_stgcn_engine(engine, self.device)
        self.batch_size = max(1, batch_size)
        if self.engine == "openvino":   # the CPU without torch (a cached export of the same weights)
            from actionpipe.model.openvino_stgcn import OpenVinoSTGCN

            self.forward = OpenVinoSTGCN(card).windows
        else:
            import torch

            torch_device = torch.device(self.device)
            self.forward = torch_windows(card.load_model(torch_device), torch_device)
            if torch_device.type == "cpu":
                # No torch.use_deterministic_algorithms here: it imports torch._dynamo/_inductor (2-3 s
                # of start-up) and changes nothing on the CPU, where these kernels are deterministic.
                use_cpu_threads()
        self.window = card.inference.window_frames or 0
        self.stride = card.inference.stride or 1
        self.aggregate = card.inference.aggregate
        self.mirror = get_layout(card.preprocessing.layout).flip_permutation() if card.inference.mirror_average else None

    def _check(self, sample: Sample, source: Any) -> None:
        want = get_layout(self.card.preprocessing.layout)
        got = sample.meta.get("layout")
        if got != want.name or sample.data.shape[3] != want.num_joints:
            raise ActionpipeError(source, f"sample layout {got} ({sample.data.shape[3]} joints) does not "
                                          f"match model {self.card.name} ({want.name}, {want.num_joints} joints)")

    def predict(self, samples: Sequence[Sample], sources: Sequence[Any] | None = None,
                window: int | None = None, stride: int | None = None) -> list[Prediction]:
        """Probabilities (and open-set scores) for each sample; all windows share batches of ``batch_size``.

        ``window`` / ``stride`` (frames) replace the card's windows for this call (e.g. a timeline's);
        ``window=0`` runs each sample whole, and a window without a stride steps by the window.
        """
        sources = sources or [None] * len(samples)
        for sample, source in zip(samples, sources):
            self._check(sample, source)
        if window is None:
            window, stride = self.window, stride or self.stride
        outputs = run_windows(self.forward, samples, window, stride or window or 1, self.card.preprocessing.pad,
                              self.batch_size, self.mirror)
        return self._predictions(outputs, [[s] for s in samples], sources)

    def predict_windows(self, clips: Sequence[Sequence[Sample]], sources: Sequence[Any] | None = None,
                        window: int = 1) -> list[Prediction]:
        """:meth:`predict` of clips given as their windows, each packed on its own (``window``
        frames; a shorter one is padded as the card says): one Prediction per clip, all windows in
        shared batches."""
        sources = sources or [None] * len(clips)
        for clip, source in zip(clips, sources):
            for sample in clip:
                self._check(sample, source)
        outputs = run_windows(self.forward, [w for clip in clips for w in clip], window, window,
                              self.card.preprocessing.pad, self.batch_size, self.mirror)
        merged, at = [], 0
        for clip in clips:
            part, at = outputs[at:at + len(clip)], at + len(clip)
            merged.append(WindowOutputs(*(np.concatenate([getattr(o, name) for o in part])
                                          for name in ("logits", "features", "times", "motion"))))
        return self._predictions(merged, clips, sources)

    def _predictions(self, outputs: list[WindowOutputs], inputs: Sequence[Sequence[Sample]],
                     sources: Sequence[Any]) -> list[Prediction]:
        """Each sample's Prediction from its windows' outputs; ``inputs``: the samples each came
        from, for the message when the model's output is not finite."""
        out = []
        with np.errstate(over="ignore", invalid="ignore"):  # garbage input is caught below, in one line
            for w in outputs:
                wp = temper(softmax(w.logits), self.temperature).astype(np.float32)
                out.append(Prediction(self.combine(w.logits, w.motion), wp, w.times, w.logits, w.features.mean(0),
                                      window_motion=w.motion))
            out = self.judge(out)
        for pred, given, source in zip(out, inputs, sources):
            scores = (pred.probabilities, pred.window_probabilities, pred.open_set_score or 0.0)
            if not all(np.isfinite(v).all() for v in scores):  # e.g. data far outside the normalised range
                peak = max(float(np.abs(sample.data).max()) for sample in given)
                raise ActionpipeError(source, f"the model's output is not finite (data values up to "
                                              f"{peak:.3g}: not keypoints "
                                              "packed by `actionpipe pack`?)")
        return out

    def combine(self, window_logits: np.ndarray, window_motion: np.ndarray, method: str | None = None) -> np.ndarray:
        """A sample's probabilities from its windows: their softmax combined by ``method`` (default:
        the card's aggregate), then tempered — combine first, temper after, so calibration never
        changes the sample's class. ``max`` (not a distribution) takes the tempered windows' maximum."""
        method = method or self.aggregate
        if method == "max":
            return combine_windows(temper(softmax(window_logits), self.temperature), None, "max").astype(np.float32)
        return temper(combine_windows(softmax(window_logits), window_motion, method),
                      self.temperature).astype(np.float32)

    def judge(self, predictions: list[Prediction]) -> list[Prediction]:
        """The card's open-set score of each prediction, and whether it is rejected: below the
        threshold, or its top class the background class (:func:`~actionpipe.model.openset.rejections`)."""
        if not predictions:
            return predictions
        scores, threshold = None, None
        if self.open_set is not None:
            scores = self.open_set.score(np.stack([p.features for p in predictions]),
                                         [p.window_logits for p in predictions], self.temperature)
            threshold = self.open_set.threshold
        rejected = rejections(self.card.classes, np.stack([p.probabilities for p in predictions]), scores, threshold)
        return [replace(p, open_set_score=p.open_set_score if scores is None else float(scores[i]),
                        rejected=bool(self.reject and rejected[i])) for i, p in enumerate(predictions)]


def scores_document(card: ModelCard, items: list[dict[str, Any]]) -> dict[str, Any]:
    """The scores file's JSON object for ``items`` (each with source, probabilities, windows)."""
    return {"format": FORMAT, "format_version": FORMAT_VERSION,
            "model": {"name": card.name, "card": str(card.card_path), "weights_sha256": card.weights_sha256},
            "classes": card.classes, "items": items}


def prediction_item(source: str, pred: Prediction, aggregate: str | None = None) -> dict[str, Any]:
    """A scores file's item; ``aggregate`` ``max`` is recorded (its probabilities do not sum to 1)."""
    opened = {} if pred.open_set_score is None else {"open_set_score": round(pred.open_set_score, 4)}
    if pred.open_set_score is not None or pred.rejected:   # a background answer is rejected without a score
        opened["rejected"] = pred.rejected
    return {"source": source,
            "probabilities": [round(float(p), 6) for p in pred.probabilities],
            **({"aggregate": "max"} if aggregate == "max" else {}), **opened,
            "windows": [{"start_s": round(float(s), 3), "end_s": round(float(e), 3),
                         "probabilities": [round(float(p), 6) for p in wp]}
                        for (s, e), wp in zip(pred.window_times, pred.window_probabilities)]}


def infer_files(sample_paths: Sequence[str | Path], card: ModelCard, device: str = "auto",
                batch_size: int = DEFAULT_BATCH) -> dict[str, Any]:
    """``actionpipe infer``: sample files → the scores document (write it with ``fileio.write_json``)."""
    samples = [Sample.load(p) for p in sample_paths]
    preds = Predictor(card, device, batch_size).predict(samples, sample_paths)
    return scores_document(card, [prediction_item(str(p), pr) for p, pr in zip(sample_paths, preds)])


def load_scores(path: str | Path) -> dict[str, Any]:
    """Read and validate a scores file."""
    doc = read_json(path, "scores file")
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ActionpipeError(path, f"not a scores file (missing \"format\": \"{FORMAT}\")")
    if doc.get("format_version") not in READ_VERSIONS:
        raise ActionpipeError(path, f"scores format_version {doc.get('format_version')!r} is not supported")
    check_keys(doc, _KEYS, path, "scores file")
    check_keys(doc.get("model") or {}, _MODEL_KEYS, path, "model")
    classes, items = doc.get("classes"), doc.get("items")
    if not isinstance(classes, list) or not classes or not all(isinstance(c, str) for c in classes):
        raise ActionpipeError(path, "\"classes\" must be a non-empty list of class names")
    with about(path):
        distinct(classes, "classes")
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise ActionpipeError(path, "\"items\" must be a list of objects")
    for item in items:
        check_keys(item, _ITEM_KEYS, path, "item")
        windows = item.get("windows") or []
        if not isinstance(windows, list):
            raise ActionpipeError(path, f"item {item.get('source')!r}: \"windows\" must be a list")
        for window in windows:
            check_keys(window, _WINDOW_KEYS, path, "window")
        if not isinstance(item.get("source"), str):
            raise ActionpipeError(path, "every item needs a \"source\" (the sample's name)")
        if item.get("aggregate", "max") != "max":
            raise ActionpipeError(path, f"item {item['source']!r}: \"aggregate\" can only be \"max\" (or absent)")
        _check_probabilities(path, f"item {item['source']!r}", item.get("probabilities"), len(classes),
                             distribution="aggregate" not in item)
        for window in windows:
            _check_probabilities(path, f"item {item['source']!r}: window", window.get("probabilities"),
                                 len(classes), distribution=True)
    return doc


def _check_probabilities(path, where: str, probs: Any, classes: int, distribution: bool) -> None:
    """One probability per class, each in [0, 1]; for a ``distribution``, summing to 1."""
    if not isinstance(probs, list) or len(probs) != classes or not all(is_number(p) and 0 <= p <= 1 for p in probs):
        raise ActionpipeError(path, f"{where}: \"probabilities\" must be {classes} numbers between 0 and 1, "
                                    "one per class")
    if distribution and abs(sum(probs) - 1) > SUM_TOLERANCE:
        raise ActionpipeError(path, f"{where}: \"probabilities\" sum to {sum(probs):.6g}, not 1 (only an "
                                    "item with \"aggregate\": \"max\" may)")
