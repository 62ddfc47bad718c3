"""One self-contained HTML page for a run: what a person looks at instead of reading JSON.

:func:`video_report` takes ``classify`` results (the JSON objects, as ``--json``/``--jsonl`` give
them) and makes a page with, at the top, counts per status and per class, the failed videos with
their errors and the total time; then one row per video (``tr.item``): a thumbnail (the middle
frame with the kept people's skeletons, when the pose is at hand), the answer, the top-k as bars,
the timeline of windows as a coloured strip of segments, a strip per person (``--per-person``) and
the rendered video (``render``'s output) embedded when one is found. :func:`eval_report` makes the
same page for ``eval``: top-1/top-5, the confusion matrix (PNG), per-class accuracy and a row per
clip. Rows sort and filter in the page (a few lines of inline JavaScript).

Nothing on the page is fetched: CSS and script are inline, images are ``data:`` URIs, and only a
rendered video is a relative link (it is a separate file already).
"""
from __future__ import annotations

import base64
import html
import os
import time
from pathlib import Path
from typing import Any, Iterable

import cv2

from actionpipe.core.fileio import atomic_path
from actionpipe.outputs.plots import class_colours, result_colours
from actionpipe.outputs.results import ANSWERS

THUMB_WIDTH = 240
STATUSES = ANSWERS + ("error",)

_CSS = """
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1d232a;background:#f5f6f8}
header{background:#1d232a;color:#fff;padding:14px 24px}header h1{margin:0;font-size:20px}
header p{margin:4px 0 0;color:#b9c1ca}main{padding:16px 24px}
section.summary{display:flex;flex-wrap:wrap;gap:16px;margin-bottom:16px}
.card{background:#fff;border:1px solid #dde1e6;border-radius:8px;padding:10px 14px;min-width:220px}
.card h2{font-size:13px;text-transform:uppercase;letter-spacing:.04em;color:#5b6670;margin:0 0 6px}
.chip{display:inline-block;border-radius:10px;padding:1px 9px;margin:2px 4px 2px 0;background:#e8ebef;cursor:pointer;
border:1px solid transparent}.chip:hover{border-color:#1d232a}.chip b{margin-left:4px}
.swatch{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:5px;vertical-align:-1px}
.failed li{color:#a3261b}.controls{margin:8px 0 12px;display:flex;gap:12px;align-items:center}
.controls input{padding:5px 8px;width:280px;border:1px solid #c4cad1;border-radius:5px}
table.items{border-collapse:collapse;width:100%;background:#fff;border:1px solid #dde1e6}
table.items th{text-align:left;font-size:12px;color:#5b6670;border-bottom:2px solid #dde1e6;padding:6px 8px}
table.items td{border-top:1px solid #eceef1;padding:8px;vertical-align:top}
td.thumb img{width:THUMBpx;border-radius:4px;display:block}td.thumb .none{width:THUMBpx;height:60px;background:#e8ebef;
border-radius:4px;color:#8a949e;display:flex;align-items:center;justify-content:center}
.name{font-weight:600;word-break:break-all;min-width:150px}.answer{font-size:16px;font-weight:600}.prob{color:#5b6670;margin-left:4px}
.status{display:inline-block;border-radius:4px;padding:0 6px;font-size:12px;background:#e8ebef}
.status.ok{background:#d8f0df}.status.unknown{background:#fbecc8}.status.error{background:#f8d4d0}
.err{color:#a3261b;font-size:12px}.bars{min-width:200px}.bar{display:flex;align-items:center;gap:6px;font-size:12px}
.bar .cls{width:110px;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.bar .track{flex:1;height:9px;background:#eceef1;border-radius:3px;min-width:80px}.bar .fill{height:9px;border-radius:3px}
.bar .v{width:38px;text-align:right;color:#5b6670}.strips{min-width:280px}
.strip{display:flex;align-items:center;gap:6px;margin:2px 0;font-size:11px}.strip .who{width:92px;color:#5b6670;
white-space:nowrap;overflow:hidden;text-overflow:ellipsis}.strip .line{position:relative;flex:1;height:16px;
background:#eceef1;border-radius:3px;overflow:hidden}.seg{position:absolute;top:0;bottom:0;color:#fff;font-size:10px;
line-height:16px;padding-left:3px;overflow:hidden;white-space:nowrap;text-overflow:clip;border-right:1px solid #fff}
.axis{font-size:10px;color:#8a949e;display:flex;justify-content:space-between;margin-left:98px}
video{width:200px;border-radius:4px;display:block}.muted{color:#8a949e}img.confusion{max-width:min(100%,760px)}
"""

_SCRIPT = """
(function () {
  var body = document.getElementById("items");
  var rows = Array.prototype.slice.call(body.querySelectorAll("tr.item"));
  var filter = document.getElementById("filter"), sort = document.getElementById("sort");
  var shown = document.getElementById("shown");
  function value(row, key) { return row.getAttribute("data-" + key) || ""; }
  function compare(a, b) {
    var key = sort.value, order = value(a, "order") - value(b, "order");
    if (key === "order") return order;
    if (key === "probability" || key === "seconds")
      return (parseFloat(value(b, key)) || -1) - (parseFloat(value(a, key)) || -1) || order;
    return value(a, key).localeCompare(value(b, key)) || order;
  }
  function apply() {
    var q = filter.value.trim().toLowerCase(), n = 0;
    rows.slice().sort(compare).forEach(function (row) { body.appendChild(row); });
    rows.forEach(function (row) {
      var keep = !q || value(row, "search").indexOf(q) >= 0;
      row.hidden = !keep; if (keep) n += 1;
    });
    shown.textContent = n + " of " + rows.length + " shown";
  }
  filter.addEventListener("input", apply);
  sort.addEventListener("change", apply);
  Array.prototype.forEach.call(document.querySelectorAll("[data-filter]"), function (el) {
    el.addEventListener("click", function () { filter.value = el.getAttribute("data-filter"); apply(); });
  });
  apply();
})();
"""


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def thumbnail(video: str | Path, pose=None, result: dict[str, Any] | None = None) -> bytes | None:
    """A JPEG of the video's middle frame, with the skeletons of the people the answer was made
    from (``result["tracks_used"]``) when ``pose`` is given: then the pose frame nearest the middle
    that shows one of them. None when the video cannot be read."""
    from actionpipe.core.errors import ActionpipeError
    from actionpipe.pose.layouts import get_layout
    from actionpipe.outputs.render import PALETTE, draw_person
    from actionpipe.video.reader import probe, read_frames

    try:
        info = probe(video)
        middle = info.frame_count / info.fps / 2
        people, when = [], middle
        if pose is not None and pose.frames:
            kept = set((result or {}).get("tracks_used") or pose.track_ids())
            candidates = [f for f in pose.frames if any(p.track_id in kept for p in f.people)] or pose.frames
            frame = min(candidates, key=lambda f: abs(f.time_s - middle))
            people, when = [p for p in frame.people if p.track_id in kept], frame.time_s
        image = next(read_frames(video, start=max(0.0, when), info=info)).image
    except (ActionpipeError, StopIteration):
        return None
    if people:
        # Drawn at full size, thick enough to read once shrunk to the thumbnail.
        bones, s = get_layout(pose.layout).bones, max(1.0, 0.9 * image.shape[1] / THUMB_WIDTH)
        for person in people:
            draw_person(image, person, bones, PALETTE[person.track_id % len(PALETTE)], s, f"#{person.track_id}")
    height = round(image.shape[0] * THUMB_WIDTH / image.shape[1])
    small = cv2.resize(image, (THUMB_WIDTH, max(1, height)), interpolation=cv2.INTER_AREA)
    ok, jpeg = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 82])
    return jpeg.tobytes() if ok else None


def find_rendered(folder: str | Path | None, video: str | Path, name: str) -> Path | None:
    """``render``'s output for ``video`` in ``folder``: NAME.mp4 (the classify --keep name), STEM.mp4
    or STEM_annotated.mp4 (as the README's render example names it)."""
    if folder is None:
        return None
    stem = Path(video).stem
    for candidate in (f"{name}.mp4", f"{stem}.mp4", f"{stem}_annotated.mp4"):
        path = Path(folder) / candidate
        if path.is_file() and os.path.realpath(path) != os.path.realpath(video):
            return path
    return None


def _page(title: str, subtitle: str, summary: str, header_cells: list[str], rows: list[str],
          sort_keys: list[tuple[str, str]], after: str = "") -> str:
    options = "".join(f'<option value="{k}">{_e(label)}</option>' for k, label in sort_keys)
    head = "".join(f"<th>{_e(c)}</th>" for c in header_cells)
    css = _CSS.replace("THUMB", str(THUMB_WIDTH))
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{_e(title)}</title><style>{css}</style></head><body>"
            f"<header><h1>{_e(title)}</h1><p>{subtitle}</p></header><main>"
            f'<section class="summary">{summary}</section>{after}'
            f'<div class="controls"><input id="filter" type="search" placeholder="filter: name, class, status"'
            f' aria-label="filter"><label>sort <select id="sort">{options}</select></label>'
            f'<span id="shown" class="muted"></span></div>'
            f'<table class="items"><thead><tr>{head}</tr></thead><tbody id="items">{"".join(rows)}</tbody></table>'
            f"</main><script>{_SCRIPT}</script></body></html>\n")


def _chips(title: str, counts: dict[str, int], colours: dict[str, str] | None = None) -> str:
    chips = "".join(
        f'<span class="chip" data-filter="{_e(name)}">'
        + (f'<span class="swatch" style="background:{colours[name]}"></span>' if colours and name in colours else "")
        + f"{_e(name)}<b>{n}</b></span>" for name, n in counts.items())
    return f'<div class="card"><h2>{_e(title)}</h2>{chips or "<span class=muted>none</span>"}</div>'


def _bars(top: list[dict[str, Any]], colours: dict[str, str]) -> str:
    return "".join(
        f'<div class="bar"><span class="cls" title="{_e(t["class"])}">{_e(t["class"])}</span><span class="track">'
        f'<span class="fill" style="display:block;width:{100 * t["probability"]:.1f}%;'
        f'background:{colours.get(t["class"], "#8a949e")}"></span></span>'
        f'<span class="v">{t["probability"]:.2f}</span></div>' for t in top)


def _strip(who: str, duration: float, segments: Iterable[dict[str, Any]], colours: dict[str, str]) -> str:
    parts = []
    for seg in segments:
        left = 100 * seg["start_s"] / duration
        width = 100 * (min(seg["end_s"], duration) - seg["start_s"]) / duration
        said = f'{seg["start_s"]:.1f}–{seg["end_s"]:.1f} s {seg["label"]}' + (
            f' {seg["probability"]:.2f}' if seg.get("probability") is not None else "")
        parts.append(f'<span class="seg" style="left:{left:.2f}%;width:{width:.2f}%;'
                     f'background:{colours.get(seg["label"], "#8a949e")}" title="{_e(said)}">{_e(seg["label"])}</span>')
    return f'<div class="strip"><span class="who">{_e(who)}</span><span class="line">{"".join(parts)}</span></div>'


def _answer(r: dict[str, Any]) -> str:
    status = r["status"]
    badge = f'<span class="status {_e(status)}">{_e(status)}</span>'
    if r.get("label"):
        return f'<div class="answer">{_e(r["label"])}<span class="prob">{r["probability"]:.2f}</span></div>{badge}'
    if status == "unknown" and r.get("closest"):
        c = r["closest"]
        return f'<div class="answer">unknown</div>{badge} <span class="muted">closest {_e(c["class"])} {c["probability"]:.2f}</span>'
    if status == "error":
        return f'<div class="answer">error</div><div class="err">{_e(r.get("error", ""))}</div>'
    return f'<div class="answer">{_e(status.replace("_", " "))}</div>{badge}'


def _timelines(r: dict[str, Any], colours: dict[str, str]) -> str:
    duration = float(r.get("duration_s") or 0)
    if duration <= 0:
        return '<span class="muted">-</span>'
    strips = []
    if r.get("timeline"):
        strips.append(_strip("all", duration, r["timeline"]["segments"], colours))
    for p in r.get("per_person") or []:
        said = f'#{p["track_id"]} {p.get("label") or "unknown"}'
        segments = (p["timeline"]["segments"] if p.get("timeline") else
                    [{"start_s": p["start_s"], "end_s": p["end_s"], "label": p.get("label") or "unknown",
                      "probability": p.get("probability")}])
        strips.append(_strip(said, duration, segments, colours))
    if not strips:
        return '<span class="muted">no timeline (classify with --window)</span>'
    return "".join(strips) + f'<div class="axis"><span>0 s</span><span>{duration:.1f} s</span></div>'


def _lengths(r: dict[str, Any]) -> str:
    said = [f'{r["duration_s"]:.1f} s video'] if r.get("duration_s") else []
    said += [f'{r["seconds"]:.1f} s to classify'] if r.get("seconds") else []
    return ", ".join(said)


def _rendered_cell(path: Path | None, page_dir: Path) -> str:
    if path is None:
        return '<span class="muted">-</span>'
    rel = _e(Path(os.path.relpath(path, page_dir)).as_posix())
    return (f'<video controls muted preload="metadata" src="{rel}"></video>'
            f'<a href="{rel}">{_e(path.name)}</a>')


def video_report(results: list[dict[str, Any]], *, page_path: str | Path, title: str = "actionpipe report",
                 model: str | None = None, thumbnails: dict[str, bytes | None] | None = None,
                 rendered: dict[str, Path | None] | None = None, wall_s: float | None = None) -> str:
    """The page for ``classify`` results (see the module docstring); ``thumbnails`` and ``rendered``
    by the result's ``video``; ``page_path``: where the page goes (rendered videos are linked
    relative to it)."""
    thumbnails, rendered = thumbnails or {}, rendered or {}
    page_dir = Path(os.path.abspath(page_path if str(page_path) != "-" else "x")).parent
    colours = result_colours(results)
    status_counts = {s: n for s in STATUSES if (n := sum(r["status"] == s for r in results))}
    class_counts: dict[str, int] = {}
    for r in results:
        if r.get("label"):
            class_counts[r["label"]] = class_counts.get(r["label"], 0) + 1
    failed = [r for r in results if r["status"] == "error"]
    seconds = sum(float(r.get("seconds") or 0) for r in results)
    video_s = sum(float(r.get("duration_s") or 0) for r in results)
    timing = (f"{len(results)} video(s), {video_s:.1f} s of video; classified in {seconds:.1f} s"
              + (f" ({wall_s:.1f} s wall clock)" if wall_s is not None else ""))
    summary = (_chips("status", status_counts) + _chips("class", dict(sorted(class_counts.items(), key=lambda kv: -kv[1])), colours)
               + f'<div class="card"><h2>time</h2>{_e(timing)}</div>')
    if failed:
        summary += ('<div class="card failed"><h2>failed</h2><ul>'
                    + "".join(f'<li>{_e(r.get("error") or r["video"])}</li>' for r in failed) + "</ul></div>")
    rows = []
    for i, r in enumerate(results):
        thumb = thumbnails.get(r["video"])
        thumb_html = (f'<img alt="{_e(Path(r["video"]).name)}" src="{_data_uri(thumb, "image/jpeg")}">' if thumb
                      else '<div class="none">no picture</div>')
        answer = r.get("label") or (r.get("closest") or {}).get("class") or ""
        search = " ".join([r["video"], r["status"], r.get("label") or ""] + [t["class"] for t in r.get("top", [])]).lower()
        prob = r.get("probability") if r.get("probability") is not None else (r.get("closest") or {}).get("probability")
        rows.append(
            f'<tr class="item" data-order="{i}" data-name="{_e(r["video"])}" data-label="{_e(answer)}" '
            f'data-status="{_e(r["status"])}" data-probability="{"" if prob is None else prob}" '
            f'data-seconds="{r.get("seconds", "")}" data-search="{_e(search)}">'
            f'<td class="thumb">{thumb_html}</td>'
            f'<td><div class="name">{_e(r["video"])}</div><span class="muted">{_e(_lengths(r))}</span></td>'
            f"<td>{_answer(r)}</td><td class=\"bars\">{_bars(r.get('top', []), colours)}</td>"
            f'<td class="strips">{_timelines(r, colours)}</td>'
            f"<td>{_rendered_cell(rendered.get(r['video']), page_dir)}</td></tr>")
    subtitle = _e(f"{'model ' + model + ', ' if model else ''}{len(results)} video(s), made {time.strftime('%Y-%m-%d %H:%M')}")
    return _page(title, subtitle, summary, ["picture", "video", "answer", "top classes", "timeline", "rendered"],
                 rows, [("order", "as run"), ("name", "name"), ("label", "class"), ("probability", "probability"),
                        ("status", "status"), ("seconds", "time taken")])


def eval_report(metrics: dict[str, Any], names: list[str], labels: list[str], predicted: list[str | None],
                probabilities: list[float | None], *, title: str, confusion_png: bytes | None) -> str:
    """The page for ``eval``: top-1/top-5, the confusion matrix, per-class accuracy, a row per clip."""
    from actionpipe.outputs.report import percent

    colours = class_colours(metrics["classes"])
    summary = (f'<div class="card"><h2>accuracy</h2>{metrics["clips"]} clips: top-1 <b>{percent(metrics["top1"])}</b>, '
               f'top-5 <b>{percent(metrics["top5"])}</b>; {metrics["unanswered"]} without an answer</div>')
    correct = {"right": sum(p == l for p, l in zip(predicted, labels)), "wrong": sum(p != l for p, l in zip(predicted, labels))}
    summary += _chips("clips", correct)
    per_class = "".join(
        f'<div class="bar"><span class="cls" title="{_e(c)}">{_e(c)}</span><span class="track"><span class="fill" '
        f'style="display:block;width:{100 * (v["accuracy"] or 0):.1f}%;background:{colours[c]}"></span></span>'
        f'<span class="v">{percent(v["accuracy"])}</span><span class="muted">{v["clips"]} clips</span></div>'
        for c, v in metrics["per_class"].items())
    summary += f'<div class="card" style="min-width:360px"><h2>per-class accuracy</h2>{per_class}</div>'
    after = (f'<div class="card"><h2>confusion matrix</h2><img class="confusion" alt="confusion matrix" '
             f'src="{_data_uri(confusion_png, "image/png")}"></div>' if confusion_png else "")
    rows = []
    for i, (name, label, pred, prob) in enumerate(zip(names, labels, predicted, probabilities)):
        verdict = "right" if pred == label else "wrong"
        rows.append(
            f'<tr class="item" data-order="{i}" data-name="{_e(name)}" data-label="{_e(label)}" data-status="{verdict}" '
            f'data-probability="{"" if prob is None else prob}" data-search="{_e(" ".join([name, label, pred or "", verdict]).lower())}">'
            f'<td class="name">{_e(name)}</td><td>{_e(label)}</td><td>{_e(pred or "no answer")}</td>'
            f'<td>{"" if prob is None else f"{prob:.2f}"}</td><td><span class="status {"ok" if verdict == "right" else "error"}">'
            f"{verdict}</span></td></tr>")
    return _page(title, _e(f"made {time.strftime('%Y-%m-%d %H:%M')}"), summary,
                 ["clip", "true class", "predicted", "probability", ""], rows,
                 [("order", "as listed"), ("name", "name"), ("label", "true class"), ("probability", "probability"),
                  ("status", "right / wrong")], after=after)


def write_page(path: str | Path, page: str) -> None:
    """Write the page atomically (``-``: stdout)."""
    with atomic_path(path) as tmp:
        tmp.write_text(page, encoding="utf-8")
