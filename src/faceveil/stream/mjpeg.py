"""An HTTP MJPEG preview of anonymized frames, for a browser or a player on this machine.

``mjpeg://127.0.0.1:8090`` serves ``/`` (a small page), ``/stream.mjpg``
(``multipart/x-mixed-replace``, one JPEG per frame) and ``/snapshot.jpg`` (the newest frame).
It binds to loopback unless another address is named; it never serves anything but the newest
anonymized frame.
"""

from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import numpy.typing as npt

from faceveil.errors import ConfigError, OutputError
from faceveil.stream.sinks import OutputFrame

RGBImage = npt.NDArray[np.uint8]
log = logging.getLogger("faceveil.stream")
_BOUNDARY = "faceveilframe"
_PAGE = b"""<!doctype html><meta charset="utf-8"><title>faceveil preview</title>
<body style="margin:0;background:#111">
<img src="/stream.mjpg" style="max-width:100%;display:block;margin:auto">
"""


class MjpegSink:
    """Serves the newest anonymized frame as MJPEG over HTTP.

    Args:
        address: ``mjpeg://HOST:PORT`` (an empty host is 127.0.0.1; port 0 picks a free port).
        quality: JPEG quality (1-100).
    """

    def __init__(self, address: str, quality: int = 80) -> None:
        if not 1 <= quality <= 100:
            raise ConfigError(f"JPEG quality must lie in [1, 100], got {quality}")
        parts = urlsplit(address)
        host = parts.hostname or "127.0.0.1"
        try:
            port = parts.port or 0
        except ValueError as exc:
            raise ConfigError(f"bad preview address {address!r}: {exc}") from None
        self.quality = quality
        self._cond = threading.Condition()
        self._image: RGBImage | None = None
        self._seq = 0
        self._jpeg: tuple[int, bytes] = (-1, b"")
        self._closed = False
        try:
            self.server = ThreadingHTTPServer((host, port), _handler(self))
        except OSError as exc:
            raise OutputError(f"cannot serve the preview on {host}:{port}: {exc}") from None
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.host = host
        self.name = f"mjpeg://{host}:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, name="faceveil-mjpeg", daemon=True)
        self._thread.start()
        log.info("preview on http://%s:%d/", host, self.port)

    def write(self, frame: OutputFrame) -> None:
        """Make ``frame`` the one served (encoded once, when somebody asks for it)."""
        with self._cond:
            self._image = frame.image
            self._seq += 1
            self._cond.notify_all()

    def jpeg(self, after: int = -1, timeout: float = 5.0) -> tuple[int, bytes] | None:
        """The newest frame as ``(sequence, JPEG)``, waiting for one newer than ``after``."""
        with self._cond:
            if not self._cond.wait_for(
                lambda: self._closed or (self._image is not None and self._seq > after), timeout
            ):
                return None
            if self._closed or self._image is None:
                return None
            if self._jpeg[0] != self._seq:
                self._jpeg = (self._seq, _encode(self._image, self.quality))
            return self._jpeg

    def close(self) -> None:
        """Stop serving; open streams end."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)


class PreviewSink:
    """Keeps the newest anonymized frame for a preview served by somebody else (the web app).

    Args:
        name: the sink's label.
        quality: JPEG quality (1-100).
    """

    def __init__(self, name: str = "preview", quality: int = 75) -> None:
        if not 1 <= quality <= 100:
            raise ConfigError(f"JPEG quality must lie in [1, 100], got {quality}")
        self.name = name
        self.quality = quality
        self.faces = 0
        self._lock = threading.Lock()
        self._frame: OutputFrame | None = None
        self._seq = 0
        self._jpeg: tuple[int, bytes] = (-1, b"")

    def write(self, frame: OutputFrame) -> None:
        """Make ``frame`` the newest (encoded only when asked for)."""
        with self._lock:
            self._frame = frame
            self._seq += 1
            self.faces = frame.faces

    def jpeg(self) -> tuple[int, bytes] | None:
        """``(sequence, JPEG)`` of the newest frame, or None before the first one."""
        with self._lock:
            frame, seq = self._frame, self._seq
            if frame is None:
                return None
            if self._jpeg[0] == seq:
                return self._jpeg
        data = _encode(frame.image, self.quality)
        with self._lock:
            self._jpeg = (seq, data)
        return seq, data

    def close(self) -> None:
        """Forget the last frame (a stopped stream shows nothing)."""
        with self._lock:
            self._frame = None


def _encode(image: RGBImage, quality: int) -> bytes:
    import cv2

    ok, data = cv2.imencode(".jpg", image[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise OutputError("JPEG encoding failed")
    return bytes(data.tobytes())


def _handler(sink: MjpegSink) -> Any:
    class Handler(BaseHTTPRequestHandler):
        server_version = "faceveil"
        sys_version = ""

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("preview: " + format, *args)

        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            if path == "/":
                self._send(200, "text/html; charset=utf-8", _PAGE)
            elif path == "/snapshot.jpg":
                got = sink.jpeg(timeout=5.0)
                if got is None:
                    self._send(503, "text/plain", b"no frame yet\n")
                else:
                    self._send(200, "image/jpeg", got[1])
            elif path == "/stream.mjpg":
                self._stream()
            else:
                self._send(404, "text/plain", b"not found\n")

        def _send(self, code: int, kind: str, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def _stream(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={_BOUNDARY}")
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            seq = -1
            try:
                while (got := sink.jpeg(after=seq, timeout=10.0)) is not None:
                    seq, data = got
                    head = f"--{_BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(data)}\r\n\r\n"
                    self.wfile.write(head.encode() + data + b"\r\n")
                    self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                return

    return Handler
