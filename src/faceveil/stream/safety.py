"""Which stream sources faceveil opens, and with which FFmpeg options.

A source is a camera (``0``, ``/dev/video0``), a network URL with an allowed scheme, or (for
tests and demos) a local file played at its real pace. Everything else is refused before FFmpeg
sees it: other schemes and FFmpeg's own pseudo-protocols (``file:``, ``concat:``, ``subfile:``,
``pipe:``, ``async:``...), playlists and reference files (HLS, DASH, SDP, ``ffconcat``), and
URLs that name several protocols. FFmpeg is also told to use only the protocols and demuxers of
the scheme (``protocol_whitelist``/``format_whitelist``), so a redirect or a playlist cannot lead
it to another protocol or a local file.

URLs that come from somebody else (the web app) should go through :func:`check_url` with
``allow_private=False``: loopback, private, link-local and other non-public addresses are then
refused unless an allowlist names the host or its network.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import SplitResult, urlsplit, urlunsplit

from faceveil.errors import UnsafeSourceError
from faceveil.media.video_io import SAFE_DEMUXERS

#: URL schemes a stream source may use.
ALLOWED_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "srt", "http", "https")
#: FFmpeg protocols each scheme may use underneath (nothing that reads local files).
_PROTOCOLS = {
    "rtsp": "rtsp,rtp,srtp,udp,tcp",
    "rtsps": "rtsp,rtsps,rtp,srtp,udp,tcp,tls",
    "rtmp": "rtmp,tcp",
    "rtmps": "rtmps,rtmp,tcp,tls",
    "srt": "srt,udp",
    "http": "http,tcp",
    "https": "https,http,tcp,tls",
}
#: Demuxers a network stream may use: the file demuxers plus the live ones; no hls, dash, concat.
STREAM_DEMUXERS = SAFE_DEMUXERS + ",rtsp,live_flv,mpjpeg,ivf"
#: Path endings of playlists and reference files, refused even when the scheme is allowed.
PLAYLIST_SUFFIXES = (".m3u8", ".m3u", ".pls", ".mpd", ".sdp", ".ffconcat", ".concat", ".xspf", ".asx", ".f4m")
_CAMERA = re.compile(r"^(?:\d{1,2}|/dev/video\d{1,2})$")

SourceKind = Literal["camera", "url", "file"]


@dataclass(frozen=True)
class SourceSpec:
    """A checked source.

    Attributes:
        kind: ``camera``, ``url`` or ``file``.
        target: what FFmpeg opens (``/dev/videoN``, the URL, or the file's path).
        scheme: the URL scheme (``v4l2`` for a camera, ``file`` for a file).
    """

    kind: SourceKind
    target: str
    scheme: str

    @property
    def display(self) -> str:
        """The source for messages and logs, with any password removed."""
        return redact(self.target) if self.kind == "url" else self.target

    def ffmpeg_options(self) -> dict[str, str]:
        """Options that keep FFmpeg on this source's own protocols and demuxers."""
        if self.kind != "url":
            return {}
        options = {"protocol_whitelist": _PROTOCOLS[self.scheme], "format_whitelist": STREAM_DEMUXERS}
        if self.scheme.startswith("rtsp"):
            options["rtsp_transport"] = "tcp"
        return options


def redact(url: str) -> str:
    """``url`` with the password of its user-info replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid url>"
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(SplitResult(parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def redact_in(text: str, url: str) -> str:
    """``text`` (an error message, say) with ``url`` redacted and its password, if any, hidden."""
    text = text.replace(url, redact(url))
    try:
        password = urlsplit(url).password
    except ValueError:
        return text
    if password:
        text = text.replace(password, "***")
        from urllib.parse import quote, unquote

        for form in {quote(password, safe=""), unquote(password)}:
            if form:
                text = text.replace(form, "***")
    return text


def public_url(url: str) -> str:
    """``url`` as a record may show it: no password, no query or fragment (tokens live there),
    and for RTMP no last path element (the stream key)."""
    parts = urlsplit(redact(url))
    path = parts.path
    if parts.scheme.lower().startswith("rtmp") and path.count("/") >= 2:
        path = path.rsplit("/", 1)[0] + "/***"
    return urlunsplit(SplitResult(parts.scheme, parts.netloc, path, "", ""))


def parse_source(text: str, *, allow_files: bool = False, allow_private: bool = True) -> SourceSpec:
    """Check a source given on the command line or in a configuration file.

    Args:
        text: a camera (``0``, ``/dev/video0``), a URL, or a file path.
        allow_files: accept a local file (the caller plays it at its real pace).
        allow_private: accept URLs to loopback and private addresses (the operator's own
            network); the web app passes False.
    """
    text = text.strip()
    if _CAMERA.match(text):
        device = text if text.startswith("/dev/") else f"/dev/video{int(text)}"
        return SourceSpec("camera", device, "v4l2")
    if "://" in text:
        return check_url(text, allow_private=allow_private)
    if ":" in text.split("/", 1)[0]:
        raise UnsafeSourceError(
            f"refused source {text!r}: FFmpeg pseudo-protocols (file:, concat:...) are not opened"
        )
    if not allow_files:
        raise UnsafeSourceError(f"{text!r} is not a camera or a stream URL; files need --realtime")
    path = Path(text)
    if path.suffix.lower() in PLAYLIST_SUFFIXES:
        raise UnsafeSourceError(f"refused source {text!r}: playlists and reference files are not followed")
    return SourceSpec("file", str(path), "file")


def check_url(url: str, *, allow_private: bool = False, allowlist: Iterable[str] = ()) -> SourceSpec:
    """Check a stream URL; the function the web app calls on URLs its users give.

    Args:
        url: ``rtsp``, ``rtsps``, ``rtmp``, ``rtmps``, ``srt``, ``http`` or ``https`` URL.
        allow_private: accept loopback, private, link-local and other non-public addresses.
        allowlist: hosts (``cam.lan``), addresses (``192.168.1.20``) or networks
            (``192.168.1.0/24``) accepted even when ``allow_private`` is False.

    Returns:
        the checked `SourceSpec`.

    Raises:
        UnsafeSourceError: naming why the URL is refused.
    """
    if any(ch in url for ch in "\r\n\t ") or any(ord(ch) < 32 for ch in url):
        raise UnsafeSourceError("refused URL: it contains spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeSourceError(f"refused URL {redact(url)!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        raise UnsafeSourceError(
            f"refused URL scheme {scheme or '(none)'!r}; allowed: {', '.join(ALLOWED_SCHEMES)}"
        )
    host = parts.hostname
    if not host:
        raise UnsafeSourceError(f"refused URL {redact(url)!r}: it names no host")
    if "|" in url or re.search(
        r"(?:^|[/?&=])(?:file|concat|subfile|pipe|async|cache|crypto|data):", url[len(scheme) + 3 :]
    ):
        raise UnsafeSourceError(f"refused URL {redact(url)!r}: it embeds another protocol")
    if parts.path.lower().endswith(PLAYLIST_SUFFIXES) or ".m3u8" in url.lower():
        raise UnsafeSourceError(
            f"refused URL {redact(url)!r}: playlists and reference files are not followed"
        )
    if port is not None and port == 0:
        raise UnsafeSourceError(f"refused URL {redact(url)!r}: port 0")
    if not allow_private:
        _check_public(host, tuple(allowlist))
    return SourceSpec("url", url, scheme)


def _allowed(
    host: str, address: ipaddress.IPv4Address | ipaddress.IPv6Address | None, allowlist: tuple[str, ...]
) -> bool:
    for entry in allowlist:
        entry = entry.strip().lower()
        if entry == host.lower():
            return True
        if address is None:
            continue
        try:
            if address in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


def is_public_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """True for a globally routable unicast address (not loopback, private, link-local...)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return bool(address.is_global) and not (address.is_multicast or address.is_reserved)


def _check_public(host: str, allowlist: tuple[str, ...]) -> None:
    """Refuse ``host`` unless every address it resolves to is public or allowlisted."""
    if _allowed(host, None, allowlist):
        return
    try:
        addresses = {ipaddress.ip_address(host.strip("[]"))}
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
        except (OSError, UnicodeError) as exc:
            raise UnsafeSourceError(f"refused host {host!r}: it does not resolve ({exc})") from None
        addresses = {ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos}
    for address in addresses:
        if not is_public_address(address) and not _allowed(host, address, allowlist):
            raise UnsafeSourceError(
                f"refused host {host!r}: {address} is a private or local address; add it to the allowlist"
            )
