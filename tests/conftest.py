"""Shared test fixtures: the sample video and a short clip of it, real photos, a CLI runner.
Plain builders (pose files, cards, videos, ``shared_path``) are in helpers.py."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from helpers import REPO

os.environ.setdefault("YOLO_OFFLINE", "1")


@pytest.fixture(scope="session", autouse=True)
def own_cache(tmp_path_factory) -> Path:
    """The OpenVINO pose export goes into a cache of the test session's own, never the user's."""
    path = tmp_path_factory.mktemp("cache")
    os.environ["ACTIONPIPE_CACHE"] = str(path)
    return path


@pytest.fixture(scope="session")
def demo_video() -> Path:
    path = REPO / "samples" / "demo.mp4"
    if not path.is_file():
        pytest.skip("samples/demo.mp4 missing: run `make samples`")
    return path


@pytest.fixture(scope="session")
def ultralytics_assets() -> Path:
    import ultralytics
    return Path(ultralytics.__file__).parent / "assets"


@pytest.fixture(scope="module")
def short_clip(demo_video, tmp_path_factory):
    """The first 24 frames of the sample video (two real people), shrunk to 640 px."""
    import cv2

    path = tmp_path_factory.mktemp("clips") / "two_people.mp4"
    cap = cv2.VideoCapture(str(demo_video))
    writer = None
    for _ in range(24):
        ok, frame = cap.read()
        assert ok
        frame = cv2.resize(frame, (640, 360), interpolation=cv2.INTER_AREA)
        if writer is None:
            writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30, (640, 360))
        writer.write(frame)
    writer.release()
    return path


@pytest.fixture
def run_cli():
    """Invoke the click CLI in-process; returns the click Result (stdout and stderr separate)."""
    from click.testing import CliRunner

    from actionpipe.cli.main import main

    def run(*args: str):
        return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)

    return run
