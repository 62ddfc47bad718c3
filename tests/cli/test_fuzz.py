"""Fuzz: random bytes, random JSON, valid documents with one value replaced, and random npz arrays
thrown at pack, infer, report, convert and pose (frames folder), in-process. Never an uncaught
exception; a refusal is exit 1 or 2 with one line on stderr and no output file; what is accepted
gives output the next stage reads. Bounded and derandomised, so it is quick and repeatable."""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as npst

from actionpipe.cli.main import main
from actionpipe.skeleton.convert import kinetics_dict
from actionpipe.video.extract import FrameRecord, FramesManifest
from actionpipe.core.fileio import parse_json, read_json
from actionpipe.model.infer import FORMAT as SCORES_FORMAT
from actionpipe.skeleton.pack import Sample, pack_people
from actionpipe.video.reader import VideoInfo
from helpers import moving_pose, write_card

FUZZ = settings(max_examples=30, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# Values that broke readers before, drawn often: non-finite and huge numbers, empty containers.
edge_values = st.sampled_from([float("nan"), float("inf"), -1e308, 1e308, 2 ** 64, -1, 0, 0.5, "", None, [], {}])
json_values = edge_values | st.recursive(
    st.none() | st.booleans() | st.integers(-2 ** 70, 2 ** 70) | st.floats() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8)


def _nodes(doc, path=()):
    """Every place in a JSON document, as the path of keys and indices to it."""
    yield path
    items = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else ()
    for key, value in items:
        yield from _nodes(value, path + (key,))


def _replaced(doc, path, value):
    doc = json.loads(json.dumps(doc))
    if not path:
        return value
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    return doc


def mutations(doc) -> st.SearchStrategy[str]:
    """The document as JSON text with one value (or the whole) replaced by random JSON."""
    replaced = st.tuples(st.sampled_from(list(_nodes(doc))), json_values).map(lambda pv: _replaced(doc, *pv))
    return replaced.map(lambda d: json.dumps(d, allow_nan=True))


def documents(doc) -> st.SearchStrategy[bytes]:
    """Random bytes, random JSON, JSON nested 100,000 deep, or a valid document with one value replaced."""
    return st.one_of(st.binary(max_size=200), json_values.map(lambda d: json.dumps(d, allow_nan=True).encode()),
                     st.just(b"[" * 100_000 + b"]" * 100_000), mutations(doc).map(str.encode))


@pytest.fixture(scope="module")
def valid(tmp_path_factory):
    """A tiny model and one valid document of each input format."""
    card = write_card(tmp_path_factory.mktemp("models") / "tiny")
    pose = moving_pose(4)
    frames = [FrameRecord(i, i, i / 30, f"{i + 1:06d}.jpg") for i in range(2)]
    manifest = FramesManifest(VideoInfo("v.mp4", 30.0, 64, 48, 2), 30.0, 64, 48, "jpg", frames)
    scores = {"format": SCORES_FORMAT, "format_version": 1, "model": {"name": "tiny"}, "classes": ["a", "b"],
              "items": [{"source": "s.npz", "probabilities": [0.25, 0.75],
                         "windows": [{"start_s": 0.0, "end_s": 1.0, "probabilities": [0.25, 0.75]}]}]}
    return {"card": card, "pose": pose.to_dict(), "kinetics": kinetics_dict(pose), "frames": manifest.to_dict(),
            "scores": scores, "sample": pack_people(pose, card.preprocessing)}


def run(args, folder: Path):
    """Run the CLI in-process and check the contract for what it was given."""
    before = sorted(p.name for p in folder.iterdir())
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    if result.exit_code == 0:
        return result
    assert result.exit_code in (1, 2), (args, result.exit_code, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(("actionpipe: error: ", "Error: ")), result.stderr
    assert sorted(p.name for p in folder.iterdir()) == before, "a refused run left a file behind"
    return result


@pytest.mark.parametrize("command", ["pack", "convert", "report"])
def test_json_inputs(valid, command):
    doc = {"pack": valid["pose"], "convert": valid["kinetics"], "report": valid["scores"]}[command]

    @FUZZ
    @given(content=documents(doc), fmt=st.sampled_from(["table", "json", "csv"]))
    def check(content, fmt):
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            (folder / "in.json").write_bytes(content)
            out = folder / ("out.npz" if command == "pack" else "out.json")
            args = {"pack": ["pack", folder / "in.json", "-o", out],
                    "convert": ["convert", folder / "in.json", "-o", out],
                    "report": ["report", folder / "in.json", "--format", fmt]}[command]
            result = run(args, folder)
            if result.exit_code == 0:  # what a stage accepts, the next one reads
                if command == "pack":
                    Sample.load(out)
                elif command == "convert":
                    read_json(out)
                elif fmt == "json":
                    parse_json(result.stdout)

    check()


_names = st.sampled_from(["data", "track_ids", "frame_indices", "times", "meta", "extra"])
_arrays = npst.arrays(npst.scalar_dtypes() | npst.unicode_string_dtypes(max_len=4),
                      npst.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=3))


def test_npz_inputs(valid):
    s = valid["sample"]
    arrays = {"data": s.data, "track_ids": s.track_ids, "frame_indices": s.frame_indices, "times": s.times,
              "meta": np.array(json.dumps(s.meta))}
    npz = st.one_of(st.dictionaries(_names, _arrays, max_size=6),
                    st.tuples(_names, _arrays).map(lambda kv: {**arrays, kv[0]: kv[1]}),
                    mutations(s.meta).map(lambda m: {**arrays, "meta": np.array(m)}))

    @FUZZ
    @given(contents=npz, cut=st.none() | st.integers(0, 400))
    def check(contents, cut):
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            path = folder / "in.npz"
            np.savez(path, **contents)
            if cut is not None:  # a truncated archive
                path.write_bytes(path.read_bytes()[:cut])
            out = folder / "scores.json"
            result = run(["infer", path, "--model", valid["card"].directory, "--device", "cpu", "-o", out], folder)
            if result.exit_code == 0:
                read_json(out)

    check()


def test_frames_folder_inputs(valid):
    """Pose on a frames folder whose manifest is fuzzed; the folder holds no images, so a manifest
    that passes fails on its first frame and the pose model never runs."""
    @FUZZ
    @given(content=documents(valid["frames"]))
    def check(content):
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            (folder / "frames").mkdir()
            (folder / "frames" / "frames.json").write_bytes(content)
            out = folder / "pose.json"
            result = run(["pose", folder / "frames", "-o", out, "--pose-backend", "torch"], folder)
            assert result.exit_code != 0

    check()
