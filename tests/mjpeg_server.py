"""A local MJPEG-over-HTTP server (``multipart/x-mixed-replace``, as IP cameras serve) playing the
frames of a real clip, for the live tests and ``benchmarks/bench_live.py``. Loopback only.

    with MjpegServer("samples/squat.mp4", loop=True) as server:
        ...  # server.url is http://127.0.0.1:PORT/stream.mjpg

``speed``: frames are sent at the clip's rate times this. ``drop_after``: the first connection is
closed after that many frames (a camera that drops), the next one goes on where it stopped.
``loop``: play the clip over and over (else one pass per connection, then the connection closes).
``max_side``: frames shrunk to at most this many pixels a side before JPEG encoding (None: as is).
"""
from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

BOUNDARY = b"frame"


def encode_clip(video: str | Path, max_side: int | None = None, quality: int = 90) -> tuple[list[bytes], float]:
    """The clip's frames as JPEG bytes, and its frame rate."""
    import cv2

    cap = cv2.VideoCapture(str(video))
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    frames = []
    while True:
        ok, image = cap.read()
        if not ok:
            break
        h, w = image.shape[:2]
        if max_side and max(h, w) > max_side:
            scale = max_side / max(h, w)
            image = cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        frames.append(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes())
    cap.release()
    if not frames:
        raise RuntimeError(f"{video}: no frames")
    return frames, float(fps)


class MjpegServer:
    def __init__(self, video: str | Path, *, speed: float = 1.0, loop: bool = False, drop_after: int | None = None,
                 max_side: int | None = None):
        self.frames, self.fps = encode_clip(video, max_side)
        self.speed, self.loop, self.drop_after = speed, loop, drop_after
        self.connections = 0
        self.sent = 0          # frames sent over all connections
        self.position = 0      # where the next connection starts (after a drop)
        self._httpd: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/stream.mjpg"

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):
                server.connections += 1
                first = server.connections == 1
                self.send_response(200)
                self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY.decode()}")
                self.send_header("Cache-Control", "no-cache")
                self.end_headers()
                start, i = time.monotonic(), 0
                while True:
                    k = server.position + i
                    if k >= len(server.frames) and not server.loop:
                        return
                    if first and server.drop_after is not None and i >= server.drop_after:
                        server.position += i
                        return  # the connection closes mid-stream
                    delay = start + i / (server.fps * server.speed) - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    jpeg = server.frames[k % len(server.frames)]
                    head = (b"--" + BOUNDARY + b"\r\nContent-Type: image/jpeg\r\nContent-Length: "
                            + str(len(jpeg)).encode() + b"\r\n\r\n")
                    try:
                        self.wfile.write(head + jpeg + b"\r\n")
                        self.wfile.flush()
                    except (BrokenPipeError, ConnectionResetError):
                        return  # the client went away
                    server.sent += 1
                    i += 1

        return Handler

    def start(self) -> "MjpegServer":
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, name="mjpeg-server", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()

    def __enter__(self) -> "MjpegServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
