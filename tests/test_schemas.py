"""docs/schemas: each documented format's JSON Schema accepts what the stages really write (on a
second of samples/squat.mp4, through the real pose model and the shipped model) and refuses unknown
keys where the readers do; names and choices in the schemas are the library's own."""
from __future__ import annotations

import copy
import dataclasses
import inspect
import json
from pathlib import Path

import numpy as np
import pytest

from actionpipe.model import card_sections

from actionpipe.model import cards

from actionpipe.video import extract

from actionpipe.model import infer

from actionpipe.skeleton import pack

from actionpipe.pose import posefile
from actionpipe.core.errors import ActionpipeError
from helpers import REPO

jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is in the test extras: pip install -e '.[test]'")
from referencing import Registry, Resource  # noqa: E402  (installed with jsonschema)

SCHEMAS = REPO / "docs" / "schemas"
NAMES = ("pose", "frames", "sample-meta", "scores", "card", "result")


def _schema(name: str) -> dict:
    return json.loads((SCHEMAS / f"{name}.schema.json").read_text())


# The schemas refer to each other by file name ("pose.schema.json#/$defs/layout"), as side by side on disk.
REGISTRY = Registry().with_resources(
    (f"{name}.schema.json", Resource.from_contents(_schema(name))) for name in NAMES)


def validator(name: str):
    return jsonschema.Draft202012Validator(_schema(name), registry=REGISTRY)


def errors(name: str, doc) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator(name).iter_errors(doc)]


def test_every_schema_is_valid_and_linked_from_the_stages_page():
    page = (REPO / "docs" / "stages.md").read_text()  # the file formats, stage by stage
    assert sorted(p.name for p in SCHEMAS.glob("*.schema.json")) == sorted(f"{n}.schema.json" for n in NAMES)
    for name in NAMES:
        jsonschema.Draft202012Validator.check_schema(_schema(name))
        assert f"(schemas/{name}.schema.json)" in page


def _props(schema: dict, *path: str) -> dict:
    for key in path:
        schema = schema[key]
    return schema["properties"]


def test_schema_keys_and_choices_are_the_readers():
    from actionpipe.model.aggregates import AGGREGATES, WINDOW_AGGREGATES
    from actionpipe.pipeline.classify import ANSWERS
    from actionpipe.core.devices import POSE_PRECISIONS
    from actionpipe.skeleton.graph import STRATEGIES
    from actionpipe.pose.layouts import LAYOUTS
    from actionpipe.model.stgcn import INPUT_FEATURES, STGCN
    from actionpipe.model.openset import METHODS

    def fields(cls) -> set[str]:
        return {f.name for f in dataclasses.fields(cls)}

    pose, frames, meta, scores, card, result = (_schema(n) for n in NAMES)
    assert pose["$defs"]["layout"]["enum"] == list(LAYOUTS)
    assert set(pose["properties"]) == set(posefile._KEYS)
    frame = pose["properties"]["frames"]["items"]
    assert set(frame["properties"]) == set(posefile._FRAME_KEYS)
    assert set(_props(frame, "properties", "people", "items")) == set(posefile._PERSON_KEYS)

    assert set(frames["properties"]) == set(extract._KEYS) == set(frames["required"])
    assert set(frames["properties"]["source"]["properties"]) == set(extract._SOURCE_KEYS)
    assert set(_props(frames, "properties", "frames", "items")) == set(extract._FRAME_KEYS)
    assert frames["properties"]["image_format"]["enum"] == list(extract.IMAGE_FORMATS)

    assert set(meta["properties"]) == set(pack._META_KEYS)
    preprocessing = card["$defs"]["preprocessing"]["properties"]
    assert set(preprocessing) == fields(pack.PackSpec)
    assert preprocessing["normalization"]["enum"] == list(pack.NORMALIZATIONS)
    assert preprocessing["rank"]["enum"] == list(pack.RANKINGS)
    assert preprocessing["pad"]["enum"] == list(pack.PADDINGS)

    assert set(scores["properties"]) == set(infer._KEYS)
    assert set(scores["properties"]["model"]["properties"]) == set(infer._MODEL_KEYS)
    item = scores["properties"]["items"]["items"]
    assert set(item["properties"]) == set(infer._ITEM_KEYS)
    assert set(_props(item, "properties", "windows", "items")) == set(infer._WINDOW_KEYS)
    assert scores["properties"]["format_version"]["enum"] == list(infer.READ_VERSIONS)

    sections = card["properties"]
    assert set(sections) == set(cards.CARD_KEYS)
    for section in (card_sections.PoseSection, card_sections.InferenceSection,
                    card_sections.CalibrationSection, card_sections.OpenSetSection):
        assert set(sections[section.key]["properties"]) == fields(section), section.key
    assert set(sections["calibration"]["properties"]["held_out"]["properties"]) == set(card_sections.HELD_OUT_KEYS)
    assert (set(sections["open_set"]["properties"]["validation_negatives"]["properties"])
            == set(card_sections.NEGATIVES_KEYS))
    assert sections["pose"]["properties"]["precision"]["enum"] == [*POSE_PRECISIONS, None]
    assert sections["inference"]["properties"]["aggregate"]["enum"] == list(WINDOW_AGGREGATES)
    assert sections["open_set"]["properties"]["method"]["enum"] == list(METHODS)
    architecture = sections["architecture"]["properties"]
    assert set(architecture) == {"type"} | set(inspect.signature(STGCN).parameters)
    assert architecture["strategy"]["enum"] == list(STRATEGIES)
    assert architecture["input_features"]["enum"] == list(INPUT_FEATURES)

    assert result["properties"]["status"]["enum"] == [*ANSWERS, "error"]
    assert result["$defs"]["timeline"]["properties"]["aggregate"]["enum"] == list(AGGREGATES)


# --- real outputs --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    """One second of samples/squat.mp4 through every stage: extract (15 fps), pose (YOLO11n-pose,
    torch, imgsz 320), then classify with the shipped default model, windows and per person,
    keeping its pose file, sample and scores (what pose, pack and infer write); plus a video with
    nobody in it and a broken one."""
    from actionpipe.pipeline.classify import Classifier
    from actionpipe.pose.posefile import PoseFrame

    work = tmp_path_factory.mktemp("schemas")
    video = REPO / "samples" / "squat.mp4"
    extract.extract_frames(video, work / "frames", fps=15, end=1.0, max_side=320)
    classifier = Classifier(cards.default_card(), device="cpu", imgsz=320, pose_backend="torch", window_s=0.6,
                            per_person=True, min_track_s=0.5)
    pose = classifier.pose.estimate_path(work / "frames")
    nobody = dataclasses.replace(pose, frames=[PoseFrame(f.index, f.time_s, []) for f in pose.frames])
    (work / "broken.mp4").write_bytes(b"not a video")
    results = [classifier.classify_pose(pose, video, work, "kept").to_dict(3),
               classifier.classify_pose(nobody, "empty.mp4").to_dict(),
               *(r.to_dict() for r in classifier.classify_many([work / "broken.mp4"]))]
    kept = work / "kept"
    with np.load(kept / "sample.npz", allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
    return {"dir": kept, "frames": json.loads((work / "frames" / "frames.json").read_text()),
            "pose": json.loads((kept / "pose.json").read_text()), "sample-meta": meta,
            "scores": json.loads((kept / "scores.json").read_text()), "results": results}


def test_each_stages_real_output_is_valid(outputs):
    pose = outputs["pose"]
    assert any(frame["people"] for frame in pose["frames"])   # the schema is tried on real people
    for name in ("frames", "pose", "sample-meta", "scores"):
        assert errors(name, outputs[name]) == [], name
    statuses = [r["status"] for r in outputs["results"]]
    assert statuses[0] in ("ok", "unknown") and statuses[1:] == ["no_person", "error"]
    assert outputs["results"][0]["timeline"]["windows"] and "per_person" in outputs["results"][0]
    for line in outputs["results"]:
        assert errors("result", json.loads(json.dumps(line))) == [], line["status"]


def test_every_shipped_card_and_its_round_trip_are_valid():
    shipped = cards.list_cards()
    assert {c.name for c in shipped} >= {cards.DEFAULT_MODEL}
    for card in shipped:
        assert errors("card", json.loads(card.card_path.read_text())) == [], card.name
        assert errors("card", card.to_dict()) == [], card.name
        assert cards.ModelCard.from_dict(card.to_dict(), card.directory) == card


# --- unknown keys: refused by the schema and by the reader ---------------------------------------

def _with_key(doc, *path):
    """A copy of ``doc`` with an unknown key added to the object at ``path``."""
    doc = copy.deepcopy(doc)
    target = doc
    for key in path:
        target = target[key]
    target["bogus"] = 1
    return doc


def _person_path(pose: dict) -> tuple:
    return ("frames", next(i for i, f in enumerate(pose["frames"]) if f["people"]), "people", 0)


def _read_sample_with_meta(meta: dict, work: Path):
    src = work / "sample.npz"
    with np.load(src, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    path = work / "edited.npz"
    np.savez(path, **dict(arrays, meta=np.array(json.dumps(meta))))
    return pack.Sample.load(path)


def _read_scores(doc: dict, work: Path):
    path = work / "edited_scores.json"
    path.write_text(json.dumps(doc))
    return infer.load_scores(path)


READERS = {
    "pose": lambda doc, work: posefile.PoseFile.from_dict(doc, work / "pose.json"),
    "frames": lambda doc, work: extract.FramesManifest.from_dict(doc, work / "frames.json"),
    "sample-meta": _read_sample_with_meta,
    "scores": _read_scores,
    "card": lambda doc, work: cards.ModelCard.from_dict(doc, work),
}


def _shipped_card_doc() -> dict:
    # The general model's card has every section, validation_negatives too.
    card = cards.find_card("general-stgcn")
    return json.loads(card.card_path.read_text())


UNKNOWN = r"unknown key\(s\) 'bogus'"


@pytest.mark.parametrize("name, path, problem", [
    *((name, path, UNKNOWN) for name, path in [
        ("pose", ()), ("pose", ("frames", 0)), ("pose", "person"),
        ("frames", ()), ("frames", ("source",)), ("frames", ("frames", 0)),
        ("sample-meta", ()), ("sample-meta", ("pack",)),
        ("scores", ()), ("scores", ("model",)), ("scores", ("items", 0)), ("scores", ("items", 0, "windows", 0)),
        ("card", ()), ("card", ("pose",)), ("card", ("inference",)), ("card", ("calibration",)),
        ("card", ("calibration", "held_out")), ("card", ("open_set",)),
        ("card", ("open_set", "validation_negatives")), ("card", ("weights",)), ("card", ("preprocessing",))]),
    ("card", ("label_map", "utd"), "label_map.utd: expected a dataset kind"),
])
def test_unknown_keys_are_refused_by_schema_and_reader(outputs, name, path, problem):
    doc = _shipped_card_doc() if name == "card" else outputs[name]
    READERS[name](doc, outputs["dir"])   # as it is: read
    edited = _with_key(doc, *(_person_path(doc) if path == "person" else path))
    assert any("'bogus' was unexpected" in e for e in errors(name, edited)), errors(name, edited)
    with pytest.raises(ActionpipeError, match=problem) as raised:
        READERS[name](edited, outputs["dir"])
    assert raised.value.path and "\n" not in str(raised.value)   # one line naming the file


@pytest.mark.parametrize("path", [(), ("timeline",), ("timeline", "windows", 0), ("timeline", "segments", 0),
                                  ("per_person", 0), ("top", 0)])
def test_result_schema_refuses_unknown_keys(outputs, path):
    line = outputs["results"][0]
    assert any("'bogus' was unexpected" in e for e in errors("result", _with_key(line, *path)))


def test_card_sections_refuse_bad_values_in_one_line_naming_the_card(tmp_path):
    card = cards.default_card()
    for section, value, problem in [
            ("pose", {"imgsz": "640"}, "pose.imgsz must be a whole number from 32 to 2048, got '640'"),
            ("inference", {"aggregate": "median"}, "inference.aggregate must be one of mean, motion, got 'median'"),
            ("calibration", {"temperature": 0}, "calibration.temperature must be a positive number, got 0"),
            ("calibration", {"ece_after": 0.1}, "calibration: missing temperature"),
            ("open_set", {"method": "mahalanobis", "threshold": 1.0},
             "open_set.file must name the statistics file"),
            ("open_set", {"method": "energy", "threshold": 1.0, "file": "../x.npz"},
             "open_set.file must be a file name beside the card, got '../x.npz'")]:
        doc = dict(card.to_dict(), **{section: value})
        assert errors("card", doc), (section, value)   # the schema says so too
        with pytest.raises(ActionpipeError, match=problem) as raised:
            cards.ModelCard.from_dict(doc, tmp_path)
        assert raised.value.path == str(tmp_path / "card.json") and "\n" not in str(raised.value)
