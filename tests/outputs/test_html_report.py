"""The HTML report and timeline plots of a real run, checked as files and in a real browser.

One real run (pose model, a tiny ST-GCN card) classifies two short real clips and a missing file
with windows and per person, writing --jsonl, --keep, --html and --plot-dir; `render` draws one
clip; `report RESULTS.jsonl --html` embeds that rendered video; `eval --html` makes the eval page.
Headless Chromium (the Debian package) then loads the pages from disk over the DevTools protocol
(no port, no network): the DOM, console errors, sorting and filtering, the embedded H.264 video's
duration, and a screenshot kept under build/test-artifacts/.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import cv2
import pytest
from click.testing import CliRunner

from actionpipe.cli.main import main
from actionpipe.video.writer import Mp4vWriter
from cdp import Browser, find_chromium
from helpers import CLASSES, make_side_by_side, squat_excerpt, write_card

pytestmark = pytest.mark.slow  # the pose model end to end, then a browser

from helpers import REPO
ARTIFACTS = REPO / "build" / "test-artifacts"
ANALYSIS = ["--device", "cpu", "--imgsz", "320", "--fps", "15"]


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def run(demo_video, tmp_path_factory):
    d = tmp_path_factory.mktemp("report")
    card = write_card(d / "tiny")
    (d / "clips").mkdir()
    make_side_by_side(demo_video, d / "clips" / "walk.mp4", frames=48)
    squat_excerpt(d / "clips" / "squat.mp4")
    r = cli("classify", d / "clips", d / "missing.mp4", "--model", card.directory, *ANALYSIS, "--window", "0.8",
            "--per-person", "--min-track-s", "0.3", "--keep", d / "keep", "--jsonl", d / "r.jsonl",
            "--html", d / "page.html", "--plot-dir", d / "plots")
    assert r.exit_code == 1 and "missing.mp4: file not found" in r.stderr  # the missing video fails alone
    (d / "rendered").mkdir()
    r = cli("render", d / "clips" / "walk.mp4", "-o", d / "rendered" / "walk.mp4", "--pose",
            d / "keep" / "clips" / "walk" / "pose.json", "--scores", d / "r.jsonl")
    assert r.exit_code == 0, r.stderr
    r = cli("report", d / "r.jsonl", "--html", d / "page2.html", "--rendered", d / "rendered", "--poses", d / "keep")
    assert r.exit_code == 0, r.stderr
    (d / "labels.csv").write_text(f"file,label\nclips/walk.mp4,{CLASSES[0]}\nclips/squat.mp4,{CLASSES[1]}\n")
    r = cli("eval", "--model", card.directory, "--dataset", f"videos:{d / 'labels.csv'}", "--imgsz", "320",
            "--fps", "15", "--device", "cpu", "--pose-cache", d / "poses", "--html", d / "eval.html")
    assert r.exit_code == 0, r.stderr
    results = [json.loads(line) for line in (d / "r.jsonl").read_text().splitlines()]
    return d, results


def rows(page: str) -> list[dict[str, str]]:
    return [dict(re.findall(r'data-(\w+)="([^"]*)"', m)) for m in re.findall(r'<tr class="item"([^>]*)>', page)]


def test_page_has_a_row_per_video_and_nothing_from_the_network(run):
    d, results = run
    page = (d / "page.html").read_text()
    assert [r["name"] for r in rows(page)] == [r["video"] for r in results]
    assert [r["video"].rsplit("/", 1)[-1] for r in results] == ["squat.mp4", "walk.mp4", "missing.mp4"]
    assert [r["status"] for r in rows(page)] == ["ok", "ok", "error"]
    assert page.count('src="data:image/jpeg;base64,') == 2  # the two readable videos' pictures
    assert "missing.mp4: file not found" in page
    # Self-contained: every src/href is inline data (no rendered videos were given to classify).
    assert re.findall(r'(?:src|href)="([^"]*)"', page) and all(
        u.startswith("data:") for u in re.findall(r'(?:src|href)="([^"]*)"', page))
    assert not re.search(r"https?://", page.replace("http://www.w3.org", ""))
    for r in results[:2]:  # labels, the timeline's segments and the per-person strips are all there
        assert r["timeline"]["segments"] and r["per_person"]
        assert f'data-label="{r["label"]}"' in page
        for seg in r["timeline"]["segments"]:
            assert f'{seg["start_s"]:.1f}–{seg["end_s"]:.1f} s {seg["label"]}' in page
        for p in r["per_person"]:
            assert f'#{p["track_id"]} ' in page


def test_report_from_the_jsonl_gives_the_same_rows_and_links_the_rendered_video(run):
    d, _ = run
    first, second = (d / "page.html").read_text(), (d / "page2.html").read_text()
    strip = ("seconds",)
    assert [{k: v for k, v in r.items() if k not in strip} for r in rows(first)] == \
           [{k: v for k, v in r.items() if k not in strip} for r in rows(second)]
    assert second.count('src="rendered/walk.mp4"') == 1 and second.count("<video ") == 1


def test_a_timeline_plot_per_video(run):
    d, results = run
    plots = sorted(p.relative_to(d / "plots").as_posix() for p in (d / "plots").rglob("*.png"))
    assert plots == ["clips/squat.png", "clips/walk.png"]  # the failed video has no timeline
    image = cv2.imread(str(d / "plots" / "clips" / "walk.png"))
    assert image is not None and image.shape[:2] == (320, 900)
    assert len(set(map(tuple, image.reshape(-1, 3)[::97]))) > 20  # lines and shading, not a blank canvas


def test_eval_page_has_the_confusion_matrix_and_per_class_accuracy(run):
    d, _ = run
    page = (d / "eval.html").read_text()
    assert page.count('<img class="confusion"') == 1 and 'src="data:image/png;base64,' in page
    assert [r["label"] for r in rows(page)] == CLASSES[:2]
    assert all(f'title="{c}">{c}</span>' in page for c in CLASSES)  # one accuracy bar per class


def test_the_pages_in_a_real_browser(run, tmp_path):
    binary = find_chromium()
    if binary is None:
        pytest.skip("chromium is not installed (Debian: apt-get install -y chromium); CI installs it in .ci/run")
    d, results = run
    mp4v = Mp4vWriter(d / "rendered" / "old.mp4", 30, (64, 48))  # what render wrote before: no browser plays it
    for _ in range(30):
        mp4v.write(cv2.UMat(48, 64, cv2.CV_8UC3, (40, 90, 160)).get())
    mp4v.close()
    (d / "rendered" / "old.html").write_text('<video src="old.mp4" preload="metadata"></video>')
    browser = Browser(binary, tmp_path / "profile")
    try:
        browser.open((d / "page2.html").as_uri())
        dom = browser.evaluate("""(function () {
          var rows = Array.prototype.slice.call(document.querySelectorAll("tr.item"));
          return {rows: rows.map(function (r) { return r.querySelector(".name").textContent; }),
                  answers: rows.map(function (r) { return r.querySelector(".answer").textContent; }),
                  strips: document.querySelectorAll(".strip").length,
                  pictures: document.querySelectorAll("td.thumb img").length,
                  broken: Array.prototype.filter.call(document.images, function (i) { return !i.naturalWidth; }).length};
        })()""")
        assert dom["rows"] == [r["video"] for r in results]
        assert dom["answers"][:2] == [f'{r["label"]}{r["probability"]:.2f}' for r in results[:2]]
        assert dom["answers"][2] == "error" and dom["pictures"] == 2 and dom["broken"] == 0
        assert dom["strips"] == sum(1 + len(r["per_person"]) for r in results[:2])
        video = browser.evaluate(_VIDEO_METADATA)
        assert video["error"] is None and video["duration"] == pytest.approx(48 / 30, abs=0.05)
        assert video["width"] == 828
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        browser.screenshot(ARTIFACTS / "html_report.png")
        assert (ARTIFACTS / "html_report.png").stat().st_size > 10_000
        # The filter and the sort work in the page.
        shown = browser.evaluate("""(function () {
          var f = document.getElementById("filter"); f.value = "walk"; f.dispatchEvent(new Event("input"));
          var visible = Array.prototype.filter.call(document.querySelectorAll("tr.item"), function (r) { return !r.hidden; });
          f.value = ""; f.dispatchEvent(new Event("input"));
          var s = document.getElementById("sort"); s.value = "status"; s.dispatchEvent(new Event("change"));
          return {visible: visible.map(function (r) { return r.querySelector(".name").textContent; }),
                  sorted: Array.prototype.map.call(document.querySelectorAll("tr.item"), function (r) { return r.getAttribute("data-status"); }),
                  count: document.getElementById("shown").textContent};
        })()""")
        assert shown == {"visible": [results[1]["video"]], "sorted": ["error", "ok", "ok"], "count": "3 of 3 shown"}
        browser.open((d / "eval.html").as_uri())
        assert browser.evaluate("document.querySelectorAll('tr.item').length") == 2
        assert browser.evaluate("document.querySelector('img.confusion').naturalWidth") > 300
        assert browser.errors() == []
        # The contrast that makes the duration check mean something: mp4v does not play.
        browser.open((d / "rendered" / "old.html").as_uri())
        assert browser.evaluate(_VIDEO_METADATA)["error"] is not None
    finally:
        browser.close()


_VIDEO_METADATA = """new Promise(function (resolve) {
  var v = document.querySelector("video");
  function done() { resolve({duration: v.duration || null, width: v.videoWidth, error: v.error && v.error.code}); }
  if (v.readyState >= 1 || v.error) { done(); return; }
  v.addEventListener("loadedmetadata", done); v.addEventListener("error", done); setTimeout(done, 30000);
})"""


def test_report_html_of_an_infer_scores_file_and_its_usage_errors(tmp_path):
    """pack -> infer -> report --html: a row per sample (no picture, no timeline); wrong option
    combinations are usage errors that write nothing."""
    from helpers import moving_pose

    card = write_card(tmp_path / "tiny")
    for i in range(2):
        moving_pose(frames=20, seed=i).save(tmp_path / f"p{i}.json")
        assert cli("pack", tmp_path / f"p{i}.json", "-o", tmp_path / f"s{i}.npz", "--model", card.directory).exit_code == 0
    r = cli("infer", tmp_path / "s0.npz", tmp_path / "s1.npz", "-o", tmp_path / "scores.json", "--model", card.directory)
    assert r.exit_code == 0, r.stderr
    r = cli("report", tmp_path / "scores.json", "--html", tmp_path / "page.html")
    assert r.exit_code == 0, r.stderr
    page = (tmp_path / "page.html").read_text()
    scores = json.loads((tmp_path / "scores.json").read_text())
    assert [r["name"] for r in rows(page)] == [item["source"] for item in scores["items"]]
    assert "model tiny" in page and page.count('<div class="none">no picture</div>') == 2
    for args, said in ((["--rendered", tmp_path], "--rendered goes with --html"),
                       (["--poses", tmp_path, "--plot-dir", tmp_path / "plots"], "--poses goes with --html"),
                       (["--html", tmp_path / "scores.json"], "is also an input")):
        r = cli("report", tmp_path / "scores.json", *args)
        assert r.exit_code == 2 and said in r.stderr and not (tmp_path / "plots").exists()
    assert json.loads((tmp_path / "scores.json").read_text()) == scores
