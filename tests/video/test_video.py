"""Video decoding: PyAV gives OpenCV's (the default decoder's) frames exactly on the sample; OpenCV takes over
where PyAV cannot (a source it fails to open, a rotated video)."""
from __future__ import annotations

import av
import numpy as np
import pytest

from actionpipe.core.errors import ActionpipeError
from actionpipe.video.reader import probe, read_frames


def frames_of(path, **options) -> tuple[list[int], list[np.ndarray]]:
    frames = list(read_frames(path, **options))
    return [f.source_index for f in frames], [f.image for f in frames]


@pytest.mark.parametrize("options", [
    {"fps": 15, "max_side": 640, "end": 1.5},   # classify's settings: resampled, shrunk by 2.76
    {"start": 0.5, "end": 1.0},                 # every frame, full size
])
def test_pyav_frames_equal_opencv_frames(demo_video, options):
    index, images = frames_of(demo_video, **options)
    pyav_index, pyav_images = frames_of(demo_video, decoder="pyav", **options)
    assert pyav_index == index and len(index) >= 8
    for a, b in zip(images, pyav_images):
        assert a.shape == b.shape and b.flags["C_CONTIGUOUS"] and np.array_equal(a, b)


def test_scaling_in_the_decoder_gives_nearly_the_same_frames(demo_video):
    index, images = frames_of(demo_video, fps=15, max_side=640, end=1.0)
    scaled_index, scaled = frames_of(demo_video, decoder="pyav", fps=15, max_side=640, end=1.0, scale_in_decoder=True)
    assert scaled_index == index
    diffs = [np.abs(a.astype(int) - b.astype(int)) for a, b in zip(images, scaled)]
    assert all(a.shape == b.shape for a, b in zip(images, scaled))
    assert 0 < np.mean([d.mean() for d in diffs]) < 3   # different filters, the same picture


def write_rotated_video(path, frames: int = 6):
    """A 64x48 clip whose metadata says: display it turned by 90 degrees."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.set_display_rotation(90)
        for i in range(frames):
            image = np.full((48, 64, 3), 20 * i, np.uint8)
            image[:10, :20] = 255   # a corner, so that the turn shows
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def test_rotated_video_is_decoded_upright_by_opencv(tmp_path):
    path = write_rotated_video(tmp_path / "rotated.mp4")
    info = probe(path)
    assert (info.width, info.height) == (48, 64)
    index, images = frames_of(path)
    pyav_index, pyav_images = frames_of(path, decoder="pyav")
    assert pyav_index == index == list(range(6))
    assert all(np.array_equal(a, b) and a.shape == (64, 48, 3) for a, b in zip(images, pyav_images))


def test_source_pyav_cannot_open_falls_back_to_opencv(demo_video, monkeypatch):
    def refuse(*args, **kwargs):
        raise av.InvalidDataError(1094995529, "Invalid data found when processing input")

    expected = frames_of(demo_video, fps=5, max_side=320, end=1.0)
    monkeypatch.setattr(av, "open", refuse)
    index, images = frames_of(demo_video, decoder="pyav", fps=5, max_side=320, end=1.0)
    assert index == expected[0] and all(np.array_equal(a, b) for a, b in zip(images, expected[1]))


def test_unknown_decoder_is_refused(demo_video):
    with pytest.raises(ActionpipeError, match="unknown decoder 'ffmpeg'"):
        next(read_frames(demo_video, decoder="ffmpeg"))
