"""Builders shared by the test modules: a test module imports them from here, never from another
test module (fixtures live in conftest.py). Crafted inputs test mechanics; accuracy is measured on
real data (../shared, samples/)."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from actionpipe.pose.layouts import COCO17
from actionpipe.pose.posefile import Person, PoseFile, PoseFrame

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"


def shared_path(*parts: str) -> Path:
    """A path under ../shared, or skip the test with the reason when it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not present (../shared holds the real datasets; CI has it)")
    return path


# --- the command line ----------------------------------------------------------------------------

def one_line_error(result, text: str, at_start: bool = False) -> None:
    """The command's stderr is one line, ``actionpipe: error: ...`` holding ``text`` (right after
    the prefix with ``at_start``: the file named first)."""
    lines = result.stderr.strip().splitlines()
    prefix = "actionpipe: error: "
    assert len(lines) == 1 and lines[0].startswith(prefix + (text if at_start else "")), result.stderr
    assert text in lines[0], result.stderr


# --- pose files ----------------------------------------------------------------------------------

# A standing person in COCO-17, unit torso (shoulder midpoint to hip midpoint = 1), facing the camera.
_STAND = {"nose": (0, -1.5), "left_eye": (0.1, -1.6), "right_eye": (-0.1, -1.6), "left_ear": (0.2, -1.5),
          "right_ear": (-0.2, -1.5), "left_shoulder": (0.4, -1), "right_shoulder": (-0.4, -1),
          "left_elbow": (0.5, -0.5), "right_elbow": (-0.5, -0.5), "left_wrist": (0.5, 0),
          "right_wrist": (-0.5, 0), "left_hip": (0.3, 0), "right_hip": (-0.3, 0),
          "left_knee": (0.3, 0.8), "right_knee": (-0.3, 0.8), "left_ankle": (0.3, 1.6),
          "right_ankle": (-0.3, 1.6)}


def person(track_id, cx, cy, scale, conf=0.9):
    """A standing person centred at (cx, cy), ``scale`` pixels per torso length."""
    kp = np.array([[cx + x * scale, cy + y * scale, conf] for x, y in
                   (_STAND[j] for j in COCO17.joints)], dtype=np.float32)
    box = np.array([kp[:, 0].min(), kp[:, 1].min(), kp[:, 0].max(), kp[:, 1].max()], dtype=np.float32)
    return Person(track_id, conf, box, kp)


def pose_file(frames, fps=30.0, width=640, height=480):
    """A COCO-17 pose file of ``frames`` (each a list of people) at ``fps``."""
    return PoseFile("coco17", width, height, fps,
                    [PoseFrame(i, i / fps, people) for i, people in enumerate(frames)],
                    source={"path": "crafted"})


def moving_pose(frames=20, seed=0):
    """Two people; track 1 (the bigger) jitters from frame to frame."""
    rng = np.random.default_rng(seed)
    return pose_file([[person(1, 300 + rng.normal() * 10, 240, 60), person(2, 100, 200, 30)]
                      for _ in range(frames)])


MADE_WIDTH, MADE_HEIGHT, MADE_FPS = 1768, 994, 25.0   # make_pose's frame size and rate


def make_pose(layout=COCO17, frames=6) -> PoseFile:
    """Two tracks: 1 in every frame but frame 3 (nobody there), 2 from frame 2 on; some joints unseen."""
    rng = np.random.default_rng(7)
    out = []
    for t in range(frames):
        people = []
        for track, first in ((1, 0), (2, 2)):
            if t < first or t == 3:
                continue
            kp = np.zeros((layout.num_joints, 3), dtype=np.float32)
            kp[:, 0] = np.round(rng.uniform(0, MADE_WIDTH, layout.num_joints), 2)
            kp[:, 1] = np.round(rng.uniform(0, MADE_HEIGHT, layout.num_joints), 2)
            kp[:, 2] = np.round(rng.uniform(0.3, 1.0, layout.num_joints), 5)
            kp[(t + track) % layout.num_joints] = 0  # an unseen joint: no position either
            people.append(Person(track, 0.9, np.array([1, 2, 3, 4], np.float32), kp))
        out.append(PoseFrame(t, t / MADE_FPS, people))
    return PoseFile(layout.name, MADE_WIDTH, MADE_HEIGHT, MADE_FPS, out, {"path": "clip.mp4"})


# --- models ---------------------------------------------------------------------------------------

CLASSES = ["wave", "squat", "jump"]


def write_card(directory, layout="coco17", window=8, base_channels=8, seed=0, aggregate=None):
    """A small, randomly initialised model with a real card: mechanics, not accuracy."""
    import torch

    from actionpipe.model.cards import ModelCard, sha256_file
    from actionpipe.model.stgcn import STGCN

    torch.manual_seed(seed)
    directory.mkdir(parents=True, exist_ok=True)
    arch = {"type": "stgcn", "layout": layout, "strategy": "spatial", "in_channels": 3,
            "num_class": len(CLASSES), "base_channels": base_channels, "edge_importance": True}
    model = STGCN(**{k: v for k, v in arch.items() if k != "type"})
    # Move BN statistics off their defaults so data_bn really acts.
    model.train()
    with torch.no_grad():
        model(torch.randn(4, 3, 16, model.layout.num_joints, 1))
    torch.save(model.state_dict(), directory / "weights.pt")
    card = {"format_version": 1, "name": directory.name, "description": "test model",
            "architecture": arch,
            "preprocessing": {"layout": layout, "normalization": "body", "max_people": 2, "rank": "area"},
            "inference": {"window_frames": window, "window_stride": window // 2,
                          **({"aggregate": aggregate} if aggregate else {})},
            "classes": CLASSES,
            "weights": {"file": "weights.pt", "sha256": sha256_file(directory / "weights.pt")}}
    (directory / "card.json").write_text(json.dumps(card))
    return ModelCard.load(directory)


# --- videos ---------------------------------------------------------------------------------------

GREY_FPS, GREY_FRAMES, GREY_SIZE = 10, 30, (160, 120)   # write_video's defaults (size: width, height)


def write_video(path: Path, frames: int = GREY_FRAMES, fps: float = GREY_FPS, size=GREY_SIZE,
                fourcc: str = "mp4v") -> Path:
    """A video whose frame i is flat grey level 8*i (so a decoded frame tells its source index)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, size)
    assert writer.isOpened()
    for i in range(frames):
        writer.write(np.full((size[1], size[0], 3), 8 * i, np.uint8))
    writer.release()
    return path


def bad_videos(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """Per case, a video no stage can read and the problem its one-line error names."""
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n")
    truncated = write_video(tmp_path / "cut.mp4")
    truncated.write_bytes(truncated.read_bytes()[:3000])  # the mp4 index (moov) is at the end: lost
    empty = write_video(tmp_path / "empty.avi", frames=0, fourcc="MJPG")
    return {"missing": (tmp_path / "nope.mp4", "file not found"),
            "not a video": (text, "not a readable video"),
            "truncated": (truncated, "not a readable video"),
            "zero frames": (empty, "no decodable frames")}


def squat_excerpt(path, frames=36, size=(640, 360)):
    """The first ``frames`` frames (at 30 fps) of samples/squat.mp4, a real person squatting, at ``size``."""
    cap = cv2.VideoCapture(str(REPO / "samples" / "squat.mp4"))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30, size)
    for _ in range(frames):
        ok, frame = cap.read()
        assert ok
        writer.write(cv2.resize(frame, size, interpolation=cv2.INTER_AREA))
    writer.release()
    return path


def make_side_by_side(demo_video, path, frames=72):
    """Two real people doing different things, side by side (828x360, 30 fps): left, the man
    jumping on the box (from the start); right, the woman walking, who enters at ~1.3 s."""
    cap = cv2.VideoCapture(str(demo_video))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30, (828, 360))
    for _ in range(frames):
        ok, frame = cap.read()
        assert ok
        left = cv2.resize(frame[0:600, 380:914], (320, 360), interpolation=cv2.INTER_AREA)
        right = cv2.resize(frame[380:994, 900:1768], (508, 360), interpolation=cv2.INTER_AREA)
        writer.write(np.hstack([left, right]))
    writer.release()
    return path
