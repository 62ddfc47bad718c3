"""render: a playable video of the same frames, size and rate, with skeletons where the people are;
H.264 (yuv420p, faststart) with the source's audio, probed with FFmpeg's own demuxer (PyAV), and
mp4v only when no H.264 encoder is installed."""
from __future__ import annotations

import json
from fractions import Fraction

import av
import cv2
import numpy as np
import pytest

from actionpipe.video import writer as videowriter
from actionpipe.core.errors import ActionpipeError
from actionpipe.pose.posefile import PoseFile
from actionpipe.outputs.render import load_result
from actionpipe.video.reader import probe
from actionpipe.video.writer import CODECS, H264, open_video_writer
from helpers import make_side_by_side, write_card


@pytest.fixture(scope="module")
def clip(demo_video, tmp_path_factory):
    return make_side_by_side(demo_video, tmp_path_factory.mktemp("clips") / "side.mp4")


@pytest.fixture(scope="module")
def rendered(clip, tmp_path_factory):
    """Render with everything computed (pose, 0.8 s windows, per person), saving pose and scores."""
    from click.testing import CliRunner

    from actionpipe.cli.main import main

    out = tmp_path_factory.mktemp("render")
    card = write_card(out / "tiny")
    r = CliRunner().invoke(main, ["render", str(clip), "-o", str(out / "out.mp4"), "--model", str(card.directory),
                                  "--device", "cpu", "--imgsz", "320", "--fps", "15", "--window", "0.8",
                                  "--min-track-s", "0.3", "--save-pose", str(out / "pose.json"),
                                  "--save-scores", str(out / "scores.json"), "--json"])
    assert r.exit_code == 0, r.stderr
    return out, json.loads(r.stdout), r.stderr


def frames_of(path):
    cap = cv2.VideoCapture(str(path))
    out = []
    while True:
        ok, frame = cap.read()
        if not ok:
            return out
        out.append(frame)


def test_render_keeps_frames_size_and_rate(clip, rendered):
    out, summary, stderr = rendered
    src, dst = probe(clip), probe(out / "out.mp4")
    assert (dst.width, dst.height, dst.fps) == (src.width, src.height, src.fps)
    assert len(frames_of(out / "out.mp4")) == len(frames_of(clip)) == summary["frames"] == 72
    assert summary["codec"] == H264 and "H.264" in stderr
    assert not list(out.glob(".*part*"))


def drawn_at_keypoints(src, dst, pose):
    """How many confident keypoints there are, and the share of them where the frame was drawn on."""
    changed = []
    for pose_frame in pose.frames:
        i = round(pose_frame.time_s * 30)  # the video frame the pose frame was taken from
        diff = np.abs(dst[i].astype(int) - src[i].astype(int)).sum(-1)
        for person in pose_frame.people:
            for x, y, conf in person.keypoints:
                x, y = round(float(x)), round(float(y))
                if conf >= 0.5 and 2 <= x < diff.shape[1] - 2 and 2 <= y < diff.shape[0] - 2:
                    changed.append(diff[y - 2:y + 3, x - 2:x + 3].max() > 120)
    return len(changed), float(np.mean(changed))


def test_skeletons_are_drawn_on_the_people(clip, rendered):
    out, _, _ = rendered
    pose = PoseFile.load(out / "pose.json")
    scores = json.loads((out / "scores.json").read_text())
    assert {p["track_id"] for p in scores["per_person"]} == set(pose.track_ids())
    src, dst = frames_of(clip), frames_of(out / "out.mp4")
    checked, share = drawn_at_keypoints(src, dst, pose)
    assert checked > 50 and share > 0.9
    # Away from people and panels the picture is the source's, up to compression.
    middle = np.abs(dst[30].astype(int) - src[30].astype(int))[150:200, 400:500]
    assert middle.mean() < 8


def test_render_from_saved_pose_and_scores_needs_no_model(clip, rendered, run_cli, tmp_path, monkeypatch):
    out, _, _ = rendered
    monkeypatch.setattr("actionpipe.model.cards.SHIPPED_MODELS", tmp_path / "none")
    monkeypatch.delenv("ACTIONPIPE_MODELS", raising=False)
    again = tmp_path / "again.mp4"
    r = run_cli("render", clip, "-o", again, "--pose", out / "pose.json", "--scores", out / "scores.json")
    assert r.exit_code == 0, r.stderr
    a, b = frames_of(out / "out.mp4"), frames_of(again)
    # The same picture. Not bit-identical: the saved pose is rounded (0.01 px, 1 ms), so a line may
    # move by a pixel, a video frame exactly between two pose frames (every second one at 30 vs
    # 15 fps) may show the other neighbour, and the lossy inter-frame codec spreads such changes.
    diffs = [np.abs(x.astype(int) - y.astype(int)).mean() for x, y in zip(a, b)]
    assert len(a) == len(b) and np.mean(diffs) < 3 and max(diffs) < 8
    assert drawn_at_keypoints(frames_of(clip), b, PoseFile.load(out / "pose.json"))[1] > 0.9


def test_pose_of_another_video_is_refused(clip, rendered, run_cli, tmp_path):
    out, _, _ = rendered
    pose = PoseFile.load(out / "pose.json")
    pose.width = 640
    pose.save(tmp_path / "other.json")
    r = run_cli("render", clip, "-o", tmp_path / "x.mp4", "--pose", tmp_path / "other.json",
                "--scores", out / "scores.json")
    assert r.exit_code == 1 and "640x360" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not list(tmp_path.glob("*.mp4*")) and not list(tmp_path.glob(".x.mp4*"))


def test_load_result_picks_the_video_from_jsonl_and_json(tmp_path):
    lines = [{"video": "dir/a.mp4", "status": "ok", "label": "wave"},
             {"video": "dir/b.mp4", "status": "error", "error": "broken"}]
    jsonl = tmp_path / "r.jsonl"
    jsonl.write_text("".join(json.dumps(d) + "\n" for d in lines))
    assert load_result(jsonl, "elsewhere/a.mp4")["label"] == "wave"
    with pytest.raises(ActionpipeError, match="is an error"):
        load_result(jsonl, "b.mp4")
    with pytest.raises(ActionpipeError, match="no result for c.mp4"):
        load_result(jsonl, "c.mp4")
    doc = tmp_path / "r.json"
    doc.write_text(json.dumps({"model": "m", "results": lines[:1]}))
    assert load_result(doc, "any.mp4")["video"] == "dir/a.mp4"
    (tmp_path / "bad.json").write_text("{nope")
    with pytest.raises(ActionpipeError, match="not classify JSON"):
        load_result(tmp_path / "bad.json", "a.mp4")


def test_writer_codec_is_detected(tmp_path):
    writer = open_video_writer(tmp_path / "w.mp4", 10, (64, 48))
    for i in range(5):
        writer.write(np.full((48, 64, 3), i * 40, np.uint8))
    writer.close()
    assert writer.codec in CODECS and len(frames_of(tmp_path / "w.mp4")) == 5


def test_render_of_a_missing_video_fails_first_and_leaves_nothing(rendered, run_cli, tmp_path):
    out, saved = tmp_path / "r.mp4", tmp_path / "saved.json"
    r = run_cli("render", tmp_path / "missing.mp4", "-o", out, "--pose", rendered[0] / "pose.json",
                "--save-scores", saved)
    assert r.exit_code == 1 and "missing.mp4: file not found" in r.stderr
    assert not out.exists() and not saved.exists() and not list(tmp_path.glob(".*part"))


def test_scores_are_matched_to_the_same_file_before_the_same_name(tmp_path):
    from actionpipe.outputs.render import load_result

    (tmp_path / "jump").mkdir()
    (tmp_path / "run").mkdir()
    results = [{"video": str(tmp_path / d / "001.mp4"), "status": "ok", "label": d} for d in ("jump", "run")]
    path = tmp_path / "results.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in results))
    assert load_result(path, tmp_path / "jump" / "001.mp4")["label"] == "jump"
    assert load_result(path, tmp_path / "run" / "001.mp4")["label"] == "run"
    assert load_result(path, tmp_path / "elsewhere" / "001.mp4")["label"] == "run"  # same name: the last


# --- the codec -------------------------------------------------------------------------------------

def probe_streams(path):
    """Per stream: type, codec, pixel format, frames (decoded, for video), duration in seconds."""
    with av.open(str(path)) as c:
        out = []
        for s in c.streams:
            out.append({"type": s.type, "codec": s.codec_context.name,
                        "pix_fmt": getattr(s.codec_context, "pix_fmt", None),
                        "duration": float(s.duration * s.time_base) if s.duration is not None else None})
        decoded = sum(1 for _ in c.decode(video=0))
    video = next(s for s in out if s["type"] == "video")
    video["frames"] = decoded
    return out


def with_audio(video, path, freq=440.0):
    """``video``'s picture (packets copied) plus a sine tone as AAC, as long as the picture: a real
    source with a sound track, made with the same FFmpeg that render encodes with."""
    with av.open(str(video)) as src, av.open(str(path), "w") as out:
        vin = src.streams.video[0]
        vout = out.add_stream_from_template(vin)
        duration = vin.frames / vin.average_rate
        aout = out.add_stream("aac", rate=44100, layout="mono")
        for packet in src.demux(vin):
            if packet.dts is not None:
                packet.stream = vout
                out.mux(packet)
        samples = int(44100 * duration)
        tone = (0.3 * np.sin(2 * np.pi * freq * np.arange(samples) / 44100)).astype(np.float32)
        for start in range(0, samples, 1024):
            frame = av.AudioFrame.from_ndarray(tone[None, start:start + 1024], format="flt", layout="mono")
            frame.sample_rate, frame.pts = 44100, start
            out.mux(aout.encode(frame))
        out.mux(aout.encode(None))
    return path


def test_render_writes_h264_with_the_sources_frames_and_duration(clip, rendered):
    out, summary, _ = rendered
    (src,) = probe_streams(clip)
    (dst,) = probe_streams(out / "out.mp4")  # the source has no sound, so neither has the output
    assert summary["codec"] == "h264" and summary["audio"] is None
    assert (dst["codec"], dst["pix_fmt"]) == ("h264", "yuv420p")
    assert dst["frames"] == src["frames"] == 72
    assert dst["duration"] == pytest.approx(src["duration"], abs=1e-3)
    data = (out / "out.mp4").read_bytes()
    assert 0 <= data.find(b"moov") < data.find(b"mdat")  # +faststart: the index before the media


def test_render_copies_the_audio_track(clip, rendered, run_cli, tmp_path):
    out, _, _ = rendered
    source = with_audio(clip, tmp_path / "talking.mp4")
    r = run_cli("render", source, "-o", tmp_path / "r.mp4", "--pose", out / "pose.json",
                "--scores", out / "scores.json", "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["audio"] == "aac" and "audio aac" in r.stderr
    src, dst = probe_streams(source), probe_streams(tmp_path / "r.mp4")
    assert [s["type"] for s in dst] == ["video", "audio"] and dst[0]["codec"] == "h264"
    assert dst[0]["frames"] == src[0]["frames"] and dst[0]["duration"] == pytest.approx(src[0]["duration"], abs=1e-3)
    assert dst[1]["codec"] == "aac" and dst[1]["duration"] == pytest.approx(src[1]["duration"], abs=0.03)
    # Copied packet for packet: the same bytes as the source's track.
    def audio_bytes(path):
        with av.open(str(path)) as c:
            return b"".join(bytes(p) for p in c.demux(audio=0) if p.size)
    assert audio_bytes(tmp_path / "r.mp4") == audio_bytes(source)


def test_audio_that_mp4_cannot_carry_is_reencoded_and_odd_sizes_padded(tmp_path):
    """PCM in Matroska at 25 fps and 321x241: AAC audio, 322x242 picture, same frames and length."""
    src = tmp_path / "pcm.mkv"
    with av.open(str(src), "w") as out:
        v = out.add_stream("libx264", rate=25)
        v.width, v.height, v.pix_fmt = 321, 241, "yuv444p"
        a = out.add_stream("pcm_s16le", rate=16000, layout="mono")
        for i in range(20):
            frame = av.VideoFrame.from_ndarray(np.full((241, 321, 3), i * 10, np.uint8), format="bgr24")
            frame.pts = i
            out.mux(v.encode(frame))
        out.mux(v.encode(None))
        tone = (np.sin(np.arange(16000 * 20 // 25) / 5) * 10000).astype(np.int16)
        for start in range(0, len(tone), 800):
            frame = av.AudioFrame.from_ndarray(tone[None, start:start + 800], format="s16", layout="mono")
            frame.sample_rate, frame.pts = 16000, start
            out.mux(a.encode(frame))
        out.mux(a.encode(None))
    writer = videowriter.open_video_writer(tmp_path / "o.mp4", 25, (321, 241), audio_from=src)
    for i in range(20):
        writer.write(np.full((241, 321, 3), i * 10, np.uint8))
    writer.close()
    video, audio = probe_streams(tmp_path / "o.mp4")
    assert (video["codec"], video["frames"], video["duration"]) == ("h264", 20, 0.8)
    assert audio["codec"] == "aac" and audio["duration"] == pytest.approx(0.8, abs=0.1)
    with av.open(str(tmp_path / "o.mp4")) as c:
        assert (c.streams.video[0].width, c.streams.video[0].height) == (322, 242)


def test_ntsc_rate_is_kept_exactly(tmp_path):
    writer = videowriter.open_video_writer(tmp_path / "n.mp4", 30000 / 1001, (64, 48))
    for i in range(30):
        writer.write(np.full((48, 64, 3), i, np.uint8))
    writer.close()
    with av.open(str(tmp_path / "n.mp4")) as c:
        assert c.streams.video[0].average_rate == Fraction(30000, 1001)
    (video,) = probe_streams(tmp_path / "n.mp4")
    assert video["duration"] == pytest.approx(30 * 1001 / 30000, abs=1e-6)


def test_without_an_h264_encoder_it_falls_back_to_mp4v_and_says_so_once(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(videowriter, "h264_available", lambda: False)
    monkeypatch.setattr(videowriter, "_said", set())
    for name in ("a.mp4", "b.mp4"):
        writer = videowriter.open_video_writer(tmp_path / name, 10, (64, 48))
        for i in range(3):
            writer.write(np.full((48, 64, 3), i * 40, np.uint8))
        writer.close()
        assert writer.codec == "mp4v" and writer.audio_codec is None
    assert capsys.readouterr().err.count("no H.264 encoder") == 1
    (video,) = probe_streams(tmp_path / "a.mp4")
    assert video["codec"] == "mpeg4" and video["frames"] == 3
