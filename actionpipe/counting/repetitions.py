"""Class-agnostic repetition counting from one person's COCO-17 skeleton sequence.

1. Body-normalise: joints relative to the shoulders/hips centre, in torso lengths (one median
   scale per sequence); the centre's own path is two more channels. Gaps are interpolated,
   glitches removed (short running median, robust clipping).
2. Period: the autocorrelation summed over channels (joints moving in different phases still
   add up), searched in 0.4-10 s; its first strong peak is the period.
3. Turning points: the channels, smoothed and high-passed at that period, projected on their
   first principal component; a peak detector with the period as minimum distance and a
   prominence rule (against the local and the overall swing) finds one peak per repetition, so
   pauses and changes of pace are followed. Long sequences are also counted in half-overlapping
   15 s windows, each with its own period, and the larger of the two counts is kept.
4. Gate: the repetitions found must be alike (each one's course over all joints, resampled,
   against the others': ``confidence``) and stand above the frame-to-frame jitter, else none.
   A peak cut by the sequence's edge is a partial repetition, not counted. Without periodicity
   a single clean excursion from a still rest and back counts 1; anything else 0.
"""
from __future__ import annotations

import math
import warnings
from collections import deque
from dataclasses import dataclass, field

import numpy as np
from scipy.ndimage import (gaussian_filter1d, maximum_filter1d, median_filter,
                           minimum_filter1d)
from scipy.signal import find_peaks

# COCO-17 joint indices; CENTRE is a pseudo-joint, the shoulders/hips centre's own path.
(NOSE, L_EYE, R_EYE, L_EAR, R_EAR, L_SH, R_SH, L_EL, R_EL, L_WR, R_WR,
 L_HIP, R_HIP, L_KN, R_KN, L_AN, R_AN) = range(17)
CENTRE = 17
X, Y = 0, 1

# Parameters chosen on the tune half of RepCount-A only (benchmarks/bench_reps.py).
MIN_PERIOD_S, MAX_PERIOD_S = 0.4, 10.0
KEYPOINT_MIN_CONF = 0.3    # below it a joint counts as missing (YOLO's occluded joints drift)
MIN_VALID_SHARE = 0.4      # a joint seen in fewer frames than this is dropped, not invented
DESPIKE_S = 0.2            # running median: shorter blips are pose-estimation glitches
CLIP_SPREADS = 4.0         # channel values beyond this many robust spreads are glitches
DETREND_S = 6.0            # running-median baseline for the period: posture changes go
OCTAVE_FRAC = 0.3          # the first lag with this share of the best strength is the period
SMOOTH_FRAC = 0.07         # Gaussian sigma of the counted signal, in periods
HIGHPASS_FRAC = 1.5        # its high-pass (running median) width, in periods
MIN_DIST_FRAC = 0.5        # turning points at least this many periods apart (pace may double)
PROMINENCE_FRAC = 0.3      # a turning point rises this share of the local swing on both sides
GLOBAL_PROM_FRAC = 0.2     # ... and this share of the exercise's swing (its 90th percentile)
LOCAL_WINDOW = 2.5         # the local swing's window, in periods
WINDOW_S = 15.0            # window length of the windowed count (longer sequences only)
COMPLETE_FRAC = 0.5        # an edge repetition needs half a typical height on each side
MIN_CONSISTENCY = 0.33     # repetitions less alike are not counted (white noise: 0.1-0.3)
MIN_CONSISTENCY_2 = 0.6    # the same when only two were found (weak evidence)
MIN_SNR = 7.0              # typical prominence over the frame-to-frame jitter (noise: 3-6)
MIN_AMPLITUDE = 0.05       # torso lengths: smaller motion is pose-estimation jitter
MIN_SINGLE_AMPLITUDE = 0.2  # torso lengths: a lone repetition must be a clear movement
MAX_REST_JITTER = 0.03     # torso lengths: the most a body at rest moves (smoothed 0.1 s)

_ALL = tuple((j, None, a) for j in range(18) for a in (X, Y))
_LEGS = tuple((j, None, a) for j in (NOSE, L_SH, R_SH, L_HIP, R_HIP, L_KN, R_KN, L_AN, R_AN,
                                     CENTRE) for a in (X, Y))
_ARMS = tuple((j, None, a) for j in (NOSE, L_SH, R_SH, L_EL, R_EL, L_WR, R_WR, CENTRE)
              for a in (X, Y))
_CURL = tuple((w, e, a) for w, e in ((L_WR, L_EL), (R_WR, R_EL)) for a in (X, Y)) + tuple(
    (j, None, a) for j in (L_WR, R_WR) for a in (X, Y))
_SPREAD = tuple((j, None, a) for j in (L_WR, R_WR, L_EL, R_EL, L_AN, R_AN, L_KN, R_KN)
                for a in (X, Y)) + ((L_WR, R_WR, X), (L_AN, R_AN, X))
_TORSO = tuple((j, b, a) for j, b in ((L_SH, L_HIP), (R_SH, R_HIP), (NOSE, None), (L_SH, None),
                                      (R_SH, None), (L_KN, None), (R_KN, None), (CENTRE, None))
               for a in (X, Y))

# Channels (joint, minus joint or None, axis) that carry each class's movement.
_CHANNELS = {
    "squat": _LEGS, "lunge": _LEGS, "deadlift": _LEGS, "jump_rope": _LEGS, "box_jump": _LEGS,
    "kettlebell_swing": _ALL, "burpee": _ALL, "clean_and_jerk": _ALL, "pommel_horse": _ALL,
    "pushup": _ARMS, "bench_press": _ARMS, "pullup": _ARMS, "shoulder_press": _ARMS,
    "lateral_raise": _ARMS, "front_raise": _ARMS, "dip": _ARMS, "row": _ARMS,
    "bicep_curl": _CURL, "arm_curl": _CURL, "hammer_curl": _CURL,
    "jumping_jacks": _SPREAD, "situp": _TORSO, "crunch": _TORSO,
}
#: Classes that are repetitions by nature: the only ones :func:`reps_for` counts.
REPETITIVE_CLASSES = frozenset(_CHANNELS)
# Other spellings (RepCount's among them) of the same classes.
_ALIASES = {
    "squats": "squat", "squant": "squat", "lunges": "lunge", "push_up": "pushup",
    "push_ups": "pushup", "pushups": "pushup", "pull_up": "pullup", "pull_ups": "pullup",
    "pullups": "pullup", "chin_up": "pullup", "sit_up": "situp", "situps": "situp",
    "bench_pressing": "bench_press", "benchpressing": "bench_press", "benchpress": "bench_press",
    "biceps_curl": "bicep_curl", "curl": "bicep_curl", "jump_jack": "jumping_jacks",
    "jumpjacks": "jumping_jacks", "jumping_jack": "jumping_jacks", "frontraise": "front_raise",
    "pommelhorse": "pommel_horse", "skipping": "jump_rope", "rope_skipping": "jump_rope",
    "overhead_press": "shoulder_press", "military_press": "shoulder_press", "dips": "dip",
}


def canonical_label(label: str | None) -> str | None:
    """``label`` lower-cased, spaces and hyphens as ``_``, aliases resolved (``None`` stays)."""
    if label is None:
        return None
    name = str(label).strip().lower().replace("-", "_").replace(" ", "_")
    return _ALIASES.get(name, name)


@dataclass(frozen=True)
class Repetition:
    """One counted repetition: it leaves rest, turns, and is back (seconds from the first frame)."""
    start_s: float
    turn_s: float
    end_s: float


@dataclass
class Repetitions:
    """The count of complete repetitions; ``partial`` (0-2) cut by the start or end is not in it.
    ``confidence`` in [0, 1] is the periodicity strength: how alike the repetitions are (each
    one's course over all joints, resampled to one length, correlated with the others'; the
    median), for a lone repetition how still the rest around it is; ``period_s`` the period
    found, if any (not in :meth:`to_dict`)."""
    count: int = 0
    partial: int = 0
    times_s: list[float] = field(default_factory=list)
    confidence: float = 0.0
    reps: list[Repetition] = field(default_factory=list)
    period_s: float | None = None

    def to_dict(self) -> dict:
        r3 = lambda v: round(float(v), 3)  # noqa: E731
        return {"count": int(self.count), "partial": int(self.partial),
                "times_s": [r3(t) for t in self.times_s], "confidence": r3(self.confidence),
                "repetitions": [{"start_s": r3(r.start_s), "turn_s": r3(r.turn_s),
                                 "end_s": r3(r.end_s)} for r in self.reps]}


def count_repetitions(keypoints, fps: float, label: str | None = None) -> Repetitions:
    """Count the repetitions in ``keypoints`` ``(T, 17, 3)`` (COCO-17, x, y, confidence; any
    consistent unit; confidence 0 where missing) sampled at ``fps``. ``label``, a class name, only
    chooses which joints find the turning points (unknown or ``None``: all of them)."""
    kp = np.asarray(keypoints, dtype=float)
    if kp.ndim != 3 or kp.shape[1:] != (17, 3):
        raise ValueError(f"keypoints must have shape (T, 17, 3), got {kp.shape}")
    try:
        fps = float(fps)
    except (TypeError, ValueError):
        raise ValueError(f"fps must be a finite number > 0, got {fps!r}") from None
    if not math.isfinite(fps) or fps <= 0:
        raise ValueError(f"fps must be a finite number > 0, got {fps!r}")
    spec = _CHANNELS.get(canonical_label(label), _ALL)
    x = _signals(kp, spec)
    if x is None or len(x) < max(4, int(2 * MIN_PERIOD_S * fps)):
        return Repetitions()
    x = _clean(x, fps)
    # The label's joints find the turning points; all joints judge how alike the repetitions
    # are (noise made into peaks looks alike in the few channels it was picked from).
    judge = x if spec is _ALL else _clean(_signals(kp, _ALL), fps)
    found = _periodic(x, judge, fps)[0]
    if len(x) > 1.5 * WINDOW_S * fps:
        # A whole-sequence period misses repetitions when the pace changes a lot or sets differ
        # in amplitude; it rarely invents them, and every window passes the same gate.
        local = _windowed(x, judge, fps)
        if local.count > found.count:
            found = local
    if found.count >= 2:
        return found
    single = _single(judge, fps)
    # Nothing counted: the consistency that failed the gate, never above the gate itself.
    return single if single.count else Repetitions(
        confidence=min(found.confidence, MIN_CONSISTENCY), period_s=found.period_s)


def reps_for(label: str | None, keypoints, fps: float) -> Repetitions | None:
    """Repetitions of ``label``'s movement, or ``None`` where counting does not apply.

    The rule, in one place: ``None`` exactly when the class (spelling normalised, aliases such as
    ``push_up`` or ``jump_jack`` resolved) is not in :data:`REPETITIVE_CLASSES` (golf swing,
    fall, walk, run, dance, ...). There is no confidence floor here: a repetitive class always
    gets its :class:`Repetitions`; weak periodicity already gives ``count`` 0 with a low
    ``confidence`` inside :func:`count_repetitions` (its gate: ``MIN_CONSISTENCY``, ``MIN_SNR``).
    """
    name = canonical_label(label)
    if name not in REPETITIVE_CLASSES:
        return None
    return count_repetitions(keypoints, fps, name)


def _signals(kp: np.ndarray, spec) -> np.ndarray | None:
    """``(T, C)`` channels in torso lengths, gaps interpolated, or None without a body."""
    xy = kp[..., :2].copy()
    seen = (kp[..., 2] >= KEYPOINT_MIN_CONF) & np.isfinite(xy).all(-1)
    xy[~seen] = np.nan
    with warnings.catch_warnings():
        # An all-missing frame makes nanmean warn; missing frames are expected input.
        warnings.simplefilter("ignore", RuntimeWarning)
        sh = np.nanmean(xy[:, [L_SH, R_SH]], axis=1)
        hip = np.nanmean(xy[:, [L_HIP, R_HIP]], axis=1)
        centre = (sh + hip) / 2
        torso = np.linalg.norm(sh - hip, axis=1)
        scale = np.nanmedian(torso) if np.isfinite(torso).any() else np.nan
        if not scale > 0:
            # No torso seen: the visible joints' spread stands in for it.
            spread = np.nanmax(xy, axis=1) - np.nanmin(xy, axis=1)
            scale = np.nanmedian(np.linalg.norm(spread, axis=1)) / 3
            centre = np.nanmedian(xy, axis=1)
    if not (np.isfinite(scale) and scale > 0):
        return None
    ref = np.nanmedian(centre, axis=0)
    pts = np.concatenate([(xy - centre[:, None]) / scale, ((centre - ref) / scale)[:, None]], 1)
    cols = []
    for j, minus, axis in spec:
        c = pts[:, j, axis] - (pts[:, minus, axis] if minus is not None else 0.0)
        ok = np.isfinite(c)
        if ok.mean() < MIN_VALID_SHARE:
            continue
        t = np.arange(len(c))
        # Linear over gaps, held at the ends: a straight line adds no turning point.
        cols.append(np.interp(t, t[ok], c[ok]))
    return np.stack(cols, 1) if cols else None


def _clean(x: np.ndarray, fps: float) -> np.ndarray:
    """Pose glitches out: a short running median (despiking), then each channel clipped to
    its robust range (a mislabelled joint or a swapped person must not dominate the energy)."""
    width = max(3, int(DESPIKE_S * fps) | 1)
    if len(x) > width:
        x = median_filter(x, size=(width, 1), mode="nearest")
    q5, med, q95 = np.percentile(x, [5, 50, 95], axis=0)
    # A robust spread that a long rest cannot shrink to nothing (the 5-95 % range still holds
    # the exercise when it fills a tenth of the sequence).
    spread = np.maximum(np.median(np.abs(x - med), axis=0) * 1.4826, (q95 - q5) / 3.29)
    spread = np.maximum(spread, 0.01)
    return np.clip(x, med - CLIP_SPREADS * spread, med + CLIP_SPREADS * spread)


def _running_median(x: np.ndarray, width: float) -> np.ndarray:
    """Running median over ``width`` frames: a baseline that follows steps (a change of posture)
    but not oscillations shorter than half the width. Computed on a decimated copy (cheap)."""
    step = max(1, int(width) // 16)
    small = x[::step]
    base = median_filter(small, size=(max(3, int(width / step) | 1), 1), mode="nearest")
    t = np.arange(len(x))
    return np.stack([np.interp(t, t[::step], b) for b in base.T], 1)


def _period(x: np.ndarray, fps: float) -> float | None:
    """The dominant period in frames, from the autocorrelation summed over channels."""
    x = gaussian_filter1d(x, max(1.0, 0.05 * fps), axis=0, mode="nearest")
    x = x - _running_median(x, DETREND_S * fps)
    n = len(x)
    lo, hi = int(math.ceil(MIN_PERIOD_S * fps)), int(min(MAX_PERIOD_S * fps, n // 2))
    if hi <= lo + 1:
        return None
    size = 1 << (2 * n - 1).bit_length()
    spec = np.fft.rfft(x, size, axis=0)
    s = np.fft.irfft((spec * spec.conj()).real.sum(1), size)[:n]
    e = np.cumsum((x * x).sum(1))
    head = e[n - 1 - np.arange(n)]                          # energy of x[0 : n-k]
    tail = e[-1] - np.concatenate([[0.0], e[:-1]])          # energy of x[k : n]
    r = s / np.sqrt(np.maximum(head * tail, 1e-30))
    cands = []
    for k in range(lo, hi):
        if r[k] >= r[k - 1] and r[k] >= r[k + 1] and r[k] > 0:
            floor = r[:k].min()
            # Height above the dip before it: a random walk's autocorrelation is high but flat.
            cands.append((k, r[k] * np.clip((r[k] - floor) / (1 - floor), 0, 1)))
    if not cands:
        return None
    # The first strong lag: multiples of the period score alike, and with a changing pace the
    # longer lags often score best.
    best = max(st for _, st in cands)
    return next(float(k) for k, st in cands if st >= OCTAVE_FRAC * best)


def _project(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The first principal component of ``x`` (columns centred) and its unit weights."""
    x = x - x.mean(0)
    w = np.linalg.eigh(x.T @ x)[1][:, -1]
    return x @ w, w


def _turns_up(s: np.ndarray) -> np.ndarray:
    """``s`` signed so that its turning points are maxima: a body rests longer at the start and
    end of a repetition than at its turn, so the median lies on the rest side."""
    q5, q50, q95 = np.percentile(s, [5, 50, 95])
    return s if q95 - q50 >= q50 - q5 else -s


def _periodic(x: np.ndarray, judge: np.ndarray, fps: float) -> tuple[Repetitions, tuple]:
    """The repetitions at the dominant period if they pass the gate (alike, above the jitter)
    and the partial ones at (start, end); else none, the consistency found as ``confidence``."""
    period = _period(x, fps)
    if period is None:
        return Repetitions(), (0, 0)
    found, snr, edges = _peaks(x, judge, fps, period)
    need = MIN_CONSISTENCY if found.count >= 3 else MIN_CONSISTENCY_2
    if found.count >= 2 and found.confidence >= need and snr >= MIN_SNR:
        return found, edges
    return Repetitions(confidence=found.confidence, period_s=found.period_s), (0, 0)


def _windowed(x: np.ndarray, judge: np.ndarray, fps: float) -> Repetitions:
    """Counted in half-overlapping windows, each with its own period, swing and gate; each
    window keeps the turning points nearest its centre."""
    n, size = len(x), int(WINDOW_S * fps)
    starts = list(range(0, n - size, size // 2)) + [n - size]
    centres = [a + size / 2 for a in starts]
    cuts = [0.0] + [(c + d) / 2 for c, d in zip(centres, centres[1:])] + [float(n)]
    reps, conf, periods = [], [], []
    partial = 0
    for i, a in enumerate(starts):
        found, edges = _periodic(x[a:a + size], judge[a:a + size], fps)
        if not found.count:
            continue
        conf.append(found.confidence)
        periods.append(found.period_s)
        shift = a / fps
        reps += [Repetition(r.start_s + shift, r.turn_s + shift, r.end_s + shift)
                 for r in found.reps if cuts[i] <= a + r.turn_s * fps < cuts[i + 1]]
        # Partial repetitions only at the sequence's own ends.
        partial += (edges[0] if i == 0 else 0) + (edges[1] if i == len(starts) - 1 else 0)
    if not reps:
        return Repetitions()
    # The same turning point seen from both sides of a cut counts once.
    period = float(np.median(periods))
    merged = []
    for r in sorted(reps, key=lambda r: r.turn_s):
        if not merged or r.turn_s - merged[-1].turn_s >= 0.5 * MIN_DIST_FRAC * period:
            merged.append(r)
    return Repetitions(len(merged), partial, [r.turn_s for r in merged],
                       float(np.median(conf)), merged, period)


def _peaks(x: np.ndarray, judge: np.ndarray, fps: float, period: float):
    """The repetitions at ``period`` (ungated), their prominence over the jitter and the
    partial ones at the (start, end)."""
    s, amp, peaks, props, hp, w = _turning_points(x, period)
    if len(peaks) >= 3:
        # The autocorrelation favours the slower reps when the pace changes: the typical
        # spacing of the turning points found is the better period (searched once more).
        spacing = float(np.clip(np.median(np.diff(peaks)), 0.5 * period, period))
        if spacing < 0.9 * period:
            period = spacing
            s, amp, peaks, props, hp, w = _turning_points(x, period)
    if amp < MIN_AMPLITUDE or not len(peaks):
        return Repetitions(period_s=period / fps), 0.0, (0, 0)
    # An edge repetition is cut when one side falls less than half a typical repetition's
    # height (inside, the prominence rule already holds for both sides).
    cut = COMPLETE_FRAC * np.median(props["prominences"])
    reps, complete = [], []
    bounds = np.concatenate([[0], peaks, [len(s) - 1]])
    for i, p in enumerate(peaks):
        left, right = s[bounds[i]:p + 1], s[p:bounds[i + 2] + 1]
        lo_l, lo_r = left.min(), right.min()
        complete.append(i not in (0, len(peaks) - 1) or min(s[p] - lo_l, s[p] - lo_r) >= cut)
        if complete[-1]:
            # Boundaries: where the body leaves and regains the rest level (10 % of the way).
            a = bounds[i] + np.flatnonzero(left <= lo_l + 0.1 * (s[p] - lo_l))[-1]
            b = p + np.flatnonzero(right <= lo_r + 0.1 * (s[p] - lo_r))[0]
            reps.append(Repetition(float(a / fps), float(p / fps), float(b / fps)))
    # Partial at an edge: its peak lacks a side, or the cut came after the turn (the sequence
    # starts high and falls to rest before any turning point; likewise at the end).
    start = not complete[0] or (peaks[0] > 0 and s[0] - s[:peaks[0]].min() >= cut)
    end = (not complete[-1] and (len(peaks) > 1 or complete[0])) or (
        peaks[-1] < len(s) - 2 and s[-1] - s[peaks[-1] + 1:].min() >= cut)
    if judge is not x:
        smooth = gaussian_filter1d(judge, max(1.0, SMOOTH_FRAC * period), axis=0, mode="nearest")
        hp = smooth - _running_median(smooth, HIGHPASS_FRAC * period)
    alike = _consistency(hp, [(round(r.start_s * fps), round(r.end_s * fps)) for r in reps])
    # Frame-to-frame jitter of the same projection, unsmoothed: repetitions stand well above it.
    step = np.diff(x @ w)
    jitter = np.median(np.abs(step - np.median(step))) * 1.4826 / math.sqrt(2)
    snr = float(np.median(props["prominences"])) / max(jitter, 1e-12)
    found = Repetitions(len(reps), int(start) + int(end), [r.turn_s for r in reps],
                        float(np.clip(alike, 0, 1)), reps, period / fps)
    return found, snr, (int(start), int(end))


def _consistency(x: np.ndarray, spans) -> float:
    """How alike the repetitions are: each one's multi-channel course (resampled to a fixed
    length, so pace does not matter) correlated with the sum of the others'; the median."""
    if len(spans) < 2:
        return 0.0
    segs = []
    for a, b in spans:
        t, own = np.linspace(a, b, 24), np.arange(a, b + 1)
        seg = np.stack([np.interp(t, own, x[a:b + 1, c]) for c in range(x.shape[1])], 1)
        segs.append((seg - seg.mean(0)).ravel())
    segs = np.array(segs)
    others = segs.sum(0) - segs
    den = np.linalg.norm(segs, axis=1) * np.linalg.norm(others, axis=1)
    return float(np.median(np.where(den > 0, (segs * others).sum(1) / np.maximum(den, 1e-30), 0)))


def _turning_points(x: np.ndarray, period: float):
    """The counted signal (turning points up), its amplitude and its peaks at ``period``."""
    smooth = gaussian_filter1d(x, max(1.0, SMOOTH_FRAC * period), axis=0, mode="nearest")
    hp = smooth - _running_median(smooth, HIGHPASS_FRAC * period)
    s, w = _project(hp)
    s = _turns_up(s)
    # The local swing (peak to trough over a few periods) sets the bar for a turning point: an
    # exercise done with smaller movements for a while still counts, a big non-exercise movement
    # does not hide it, and the exercise's own swing (a high quantile: it may fill only part of
    # the sequence) keeps the jitter of the rest between exercises out.
    span = max(3, int(LOCAL_WINDOW * period) | 1)
    swing = maximum_filter1d(s, span, mode="nearest") - minimum_filter1d(s, span, mode="nearest")
    amp = float(np.percentile(swing, 90))
    peaks, props = find_peaks(s, distance=max(1, int(MIN_DIST_FRAC * period)),
                              prominence=GLOBAL_PROM_FRAC * amp)
    keep = props["prominences"] >= PROMINENCE_FRAC * swing[peaks]
    peaks, props = peaks[keep], {k: v[keep] for k, v in props.items()}
    return s, amp, peaks, props, hp, w


def _single(x: np.ndarray, fps: float) -> Repetitions:
    """One repetition, or none: a clear excursion from a still rest, at least half-way back
    (the same completeness rule as a periodic sequence's edge repetition)."""
    s = _project(gaussian_filter1d(x, max(1.0, 0.1 * fps), axis=0, mode="nearest"))[0]
    n = len(s)
    edge = max(2, int(0.1 * n), int(0.2 * fps))
    none = Repetitions()
    # The rest is whichever end is stiller; the turn is the farthest point from it.
    still_start = s[:edge].std() <= s[-edge:].std()
    rest_part = s[:edge] if still_start else s[-edge:]
    up = s - np.median(rest_part)
    up = up if still_start else up[::-1]  # from here on the rest is at the start
    m = int(np.argmax(np.abs(up)))
    ext = abs(up[m])
    up = up * np.sign(up[m]) if ext > 0 else up
    noise = rest_part.std()
    if ext < MIN_SINGLE_AMPLITUDE or m < edge or noise > min(0.1 * ext, MAX_REST_JITTER):
        return none
    if up[m:].min() > (1 - COMPLETE_FRAC) * ext:
        return none  # it stays away: a change of posture, not a repetition
    peaks, _ = find_peaks(up, prominence=0.3 * ext)
    if len(peaks) != 1:
        return none
    a = np.flatnonzero(up[:m] <= 0.1 * ext)[-1]
    back = np.flatnonzero(up[m:] <= 0.1 * ext)
    b = m + (back[0] if len(back) else int(np.argmin(up[m:])))
    if not MIN_PERIOD_S * fps <= b - a <= MAX_PERIOD_S * fps:
        return none
    if not still_start:
        a, m, b = n - 1 - b, n - 1 - m, n - 1 - a
    rep = Repetition(float(a / fps), float(m / fps), float(b / fps))
    clarity = float(np.clip(1 - noise / min(0.1 * ext, MAX_REST_JITTER), 0, 1))
    return Repetitions(1, 0, [rep.turn_s], clarity, [rep], None)


class RepetitionCounter:
    """Live counting: :meth:`update` with each frame's ``(17, 3)`` keypoints and its time; the
    counter re-runs :func:`count_repetitions` over the last ``window_s`` seconds (at most every
    ``min_interval_s``) and adds each complete repetition whose turning point comes after the last
    one counted, so the count never goes down and rises once the body is about half-way back
    from a turning point."""

    def __init__(self, label: str | None = None, window_s: float = 30.0,
                 min_interval_s: float = 0.2):
        self.label, self.window_s, self.min_interval_s = label, float(window_s), min_interval_s
        self.reset()

    def reset(self) -> None:
        self._frames: deque = deque()
        self._times: deque = deque()
        self._last_run = -math.inf
        self.turns_s: list[float] = []   # the counted repetitions' turning points, stream time

    @property
    def count(self) -> int:
        return len(self.turns_s)

    def update(self, frame_keypoints, t_s: float) -> int:
        """Add one frame (``(17, 3)``, time ``t_s`` in seconds, increasing); the current count."""
        frame = np.asarray(frame_keypoints, dtype=float)
        if frame.shape != (17, 3):
            raise ValueError(f"frame_keypoints must have shape (17, 3), got {frame.shape}")
        t_s = float(t_s)
        if not math.isfinite(t_s) or (self._times and t_s <= self._times[-1]):
            raise ValueError(f"t_s must be finite and increasing, got {t_s!r}")
        self._frames.append(frame)
        self._times.append(t_s)
        while t_s - self._times[0] > self.window_s:
            self._frames.popleft()
            self._times.popleft()
        if t_s - self._last_run < self.min_interval_s or len(self._times) < 3:
            return self.count
        self._last_run = t_s
        times = np.asarray(self._times)
        fps = (len(times) - 1) / (times[-1] - times[0])
        found = count_repetitions(np.stack(self._frames), fps, self.label)
        # Re-runs see the same repetitions again, a little shifted, and where the body never
        # rests they may take the other extreme for the turn (half a period off): only a turning
        # point well after the last one counted is a new repetition.
        gap = 0.6 * (found.period_s or MIN_PERIOD_S)
        for t in found.times_s:
            t = float(np.interp(t * fps, np.arange(len(times)), times))
            if not self.turns_s or t > self.turns_s[-1] + gap:
                self.turns_s.append(t)
        return self.count
