"""How YOLO11n-pose sees real footage, against what training's augmentation makes of ground-truth joints.

For each source, the main person (ranked as the cards rank: ``area``) in COCO-17, at the clip's rate:

* ``low_conf``: share of joint-frames below confidence 0.3 (YOLO's misses, occlusions), per joint group;
* ``conf_median``: the median confidence of the other joint-frames;
* ``jitter``: median |second difference| of x, y over confident joints, per frame at 15 fps, as a share
  of the person's height (a pose estimator's frame-to-frame noise plus real motion);
* ``edge``: share of frames whose confident joints reach the frame's outer 2 % (a person cut by the
  frame edge);
* ``height``: the person's median height as a share of the frame's;
* ``hip/shoulder``: median hip width over shoulder width (where the hips sit differs by dataset:
  Kinect's and COCO's hip joints are not at the same place);
* ``nose/torso``: the nose's distance from the shoulders' midpoint over the torso length (Penn's
  and JHMDB's head joint stands in for the nose);
* ``fps``: median source rate.

Real: the pose files of ``realclips`` train (``--poses DIR``, the training pose cache or an
``eval --pose-cache`` folder). Simulated: the train clips of the recipe's ground-truth skeleton sets
through the training augmentation of ``--config`` (seeded), with the recipe's joint alignment
(``--raw``: without it, to measure the factors). Usage::

    python benchmarks/pose_domain.py --poses ~/.cache/actionpipe/poses --config benchmarks/recipes/footage-stgcn.json
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from actionpipe.pose.layouts import COCO17
from actionpipe.pose.posefile import PoseFile
from actionpipe.training.augment import person_height
from actionpipe.training.config import load_config, load_dataset, parse_override
from actionpipe.training.datasets import clip_from_pose
from actionpipe.training.model_input import augmented_keypoints

GROUPS = {"face": ["nose", "left_eye", "right_eye", "left_ear", "right_ear"],
          "arms": ["left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist"],
          "hips": ["left_hip", "right_hip"], "legs": ["left_knee", "right_knee", "left_ankle", "right_ankle"]}
LOW = 0.3
RATE = 15.0


def at_rate(kp: np.ndarray, fps: float) -> np.ndarray:
    """(T, V, 3) keypoints resampled to :data:`RATE` by nearest frame."""
    step = max(fps / RATE, 1.0)
    return kp[np.round(np.arange(0, len(kp), step)).astype(int).clip(0, len(kp) - 1)]


def clip_stats(kp: np.ndarray, width: int, height: int, fps: float) -> dict[str, float] | None:
    """The statistics of one person's (T, V, 3) keypoints in pixels."""
    kp = at_rate(kp, fps)
    conf = kp[..., 2]
    if (conf > LOW).sum() < 10:
        return None
    h = float(person_height(kp[None])[0])
    ok = conf > LOW
    out = {f"low_conf_{g}": float((conf[:, [COCO17.index(j) for j in js]] <= LOW).mean()) for g, js in GROUPS.items()}
    out["conf_median"] = float(np.median(conf[ok]))
    if len(kp) >= 3:
        both = ok[2:] & ok[1:-1] & ok[:-2]
        second = np.abs(kp[2:, :, :2] - 2 * kp[1:-1, :, :2] + kp[:-2, :, :2]).max(-1)
        out["jitter"] = float(np.median(second[both]) / h) if both.any() else np.nan
    x, y = np.where(ok, kp[..., 0], np.nan), np.where(ok, kp[..., 1], np.nan)
    with np.errstate(all="ignore"):
        edge = ((np.nanmin(x, 1) < 0.02 * width) | (np.nanmax(x, 1) > 0.98 * width)
                | (np.nanmin(y, 1) < 0.02 * height) | (np.nanmax(y, 1) > 0.98 * height))
    out["edge"] = float(edge[ok.any(1)].mean())
    out["height"] = h / height
    hips = ok[:, COCO17.index("left_hip")] & ok[:, COCO17.index("right_hip")]
    shoulders = ok[:, COCO17.index("left_shoulder")] & ok[:, COCO17.index("right_shoulder")]
    pair = hips & shoulders
    if pair.any():
        hw = np.linalg.norm(kp[pair, COCO17.index("left_hip"), :2] - kp[pair, COCO17.index("right_hip"), :2], axis=-1)
        sw = np.linalg.norm(kp[pair, COCO17.index("left_shoulder"), :2] - kp[pair, COCO17.index("right_shoulder"), :2],
                            axis=-1)
        out["hip/shoulder"] = float(np.median(hw / np.maximum(sw, 1.0)))
    nose = ok[:, COCO17.index("nose")] & pair
    if nose.any():   # how far the nose (Penn: the head) sits above the shoulders, per torso length
        s_mid = (kp[nose, COCO17.index("left_shoulder"), :2] + kp[nose, COCO17.index("right_shoulder"), :2]) / 2
        h_mid = (kp[nose, COCO17.index("left_hip"), :2] + kp[nose, COCO17.index("right_hip"), :2]) / 2
        torso = np.maximum(np.linalg.norm(s_mid - h_mid, axis=-1), 1.0)
        out["nose/torso"] = float(np.median(np.linalg.norm(kp[nose, COCO17.index("nose"), :2] - s_mid, axis=-1) / torso))
    out["fps"] = fps
    return out


def summarise(rows: list[dict[str, float]]) -> dict[str, float]:
    """Shares (``low_conf_*``, ``edge``) as means over clips, the rest as medians over clips."""
    keys = sorted({k for r in rows for k in r})
    average = {k: np.nanmean if k.startswith("low_conf") or k == "edge" else np.nanmedian for k in keys}
    return {k: round(float(average[k]([r[k] for r in rows if k in r])), 4) for k in keys} | {"clips": len(rows)}


def real_stats(poses: Path, names: set[str] | None) -> dict[str, float]:
    rows = []
    for path in sorted(poses.rglob("*.json")):
        if names is not None and path.parent.name not in names and path.name.split("-")[0] not in names:
            continue
        try:
            pose = PoseFile.load(path)
        except Exception:   # a manifest or other JSON beside the pose files
            continue
        clip = clip_from_pose(pose, path.stem, "?", 1, "area")
        found = clip_stats(clip.keypoints[0], pose.width, pose.height, pose.fps)
        if found:
            rows.append(found)
    return summarise(rows)


def simulated_stats(cfg, source, aligned: bool, seed: int = 0, limit: int = 300) -> dict[str, float]:
    clips, _ = load_dataset(source.dataset, source.split, None, cfg.spec, cfg.label_map,
                            align=source.align if aligned else None)
    rng = np.random.default_rng(seed)
    rows = []
    for i in rng.permutation(len(clips))[:limit]:
        clip = clips[i]
        kp, _ = augmented_keypoints(clip, cfg.augment, rng)
        found = clip_stats(kp[0], clip.width, clip.height, clip.fps)
        if found:
            rows.append(found)
    return summarise(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--poses", required=True, type=Path, help="folder of pose files of real clips")
    parser.add_argument("--config", default="benchmarks/recipes/footage-stgcn.json")
    parser.add_argument("--json", type=Path, help="write the table as JSON here")
    parser.add_argument("--raw", action="store_true",
                        help="without the recipe's joint alignment (to measure the factors it needs)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a recipe key, as train --set does (e.g. augment.noise=0.004)")
    args = parser.parse_args()
    cfg = load_config(args.config, dict(parse_override(o) for o in args.overrides))
    table = {"real (YOLO11n-pose, realclips train)": real_stats(args.poses, None)}
    state = "raw" if args.raw else "aligned"
    for source in cfg.sources:
        kind = source.dataset.split(":")[0]
        if kind not in ("videos", "poses", "kinetics"):   # the ground-truth skeleton sets
            table[f"simulated ({kind}, augmented, {state})"] = simulated_stats(cfg, source, not args.raw)
    keys = sorted({k for row in table.values() for k in row})
    print("| source | " + " | ".join(keys) + " |")
    print("|---|" + "---|" * len(keys))
    for name, row in table.items():
        print(f"| {name} | " + " | ".join(f"{row.get(k, float('nan')):.3g}" for k in keys) + " |")
    if args.json:
        args.json.write_text(json.dumps(table, indent=2))


if __name__ == "__main__":
    main()
