"""Shared test fixtures: the sample video, real photos, the shared datasets, a CLI runner."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("YOLO_OFFLINE", "1")

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"


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


def shared_path(*parts: str) -> Path:
    """A path under ../shared, or skip the test with the reason when it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not present (../shared holds the real datasets; CI has it)")
    return path


@pytest.fixture
def run_cli():
    """Invoke the click CLI in-process; returns the click Result (stdout and stderr separate)."""
    from click.testing import CliRunner

    from actionpipe.cli import main

    def run(*args: str):
        return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)

    return run
