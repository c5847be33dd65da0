"""A real HTTP server on 127.0.0.1 playing the outside world in tests: a media host, a podcast
feed whose items the test changes between checks, and a webhook receiver.

    with MediaServer() as server:
        server.serve("/talk.mp4", path.read_bytes(), "video/mp4")
        server.fail("/talk.mp4", [500, 500])          # the next two requests get 500
        server.slow("/feed.xml", 2.0)                 # every answer waits 2 s (a slow feed host)
        server.rss("/feed.xml", [("guid-1", "Episode 1", "/talk.mp4")])
        server.url("/feed.xml")                       # http://127.0.0.1:<port>/feed.xml
        server.received("/hook")                      # POST bodies and headers recorded

Range requests are honoured (yt-dlp resumes partial downloads with them).
"""

from __future__ import annotations

import email.utils
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        """yt-dlp drops connections on purpose (it reads the headers, then fetches again); stay quiet."""


@dataclass
class Route:
    body: bytes
    content_type: str
    status: int = 200
    headers: dict = field(default_factory=dict)
    endless: bool = False   # repeat body forever, announcing no length


@dataclass
class Request:
    method: str
    path: str
    headers: dict
    body: bytes = b""


@dataclass
class MediaServer:
    routes: dict[str, Route] = field(default_factory=dict)
    failures: dict[str, list[int]] = field(default_factory=dict)
    cuts: dict[str, list[int]] = field(default_factory=dict)   # path -> [requests to let through, bytes]
    requests: list[Request] = field(default_factory=list)
    delays: dict[str, float] = field(default_factory=dict)   # path -> seconds before answering

    def __post_init__(self):
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                server._answer(self, "GET")

            def do_HEAD(self):
                server._answer(self, "HEAD")

            def do_POST(self):
                server._answer(self, "POST")

            def log_message(self, *args):
                pass

        self._httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    # --- test API ---
    def __enter__(self) -> MediaServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}{path}"

    def serve(self, path: str, body: bytes, content_type: str = "application/octet-stream", status: int = 200):
        with self._lock:
            self.routes[path] = Route(body, content_type, status)

    def redirect(self, path: str, location: str, status: int = 302) -> None:
        with self._lock:
            self.routes[path] = Route(b"", "text/plain", status, {"Location": location})

    def endless(self, path: str, chunk: bytes, content_type: str = "video/mp4") -> None:
        """``chunk`` repeated until the client hangs up, with no Content-Length (a hostile media host)."""
        with self._lock:
            self.routes[path] = Route(chunk, content_type, endless=True)

    def slow(self, path: str, seconds: float) -> None:
        """Every answer for ``path`` waits ``seconds`` first (the request is recorded at once)."""
        with self._lock:
            self.delays[path] = seconds

    def fail(self, path: str, statuses: list[int]) -> None:
        """The next len(statuses) requests to ``path`` get these status codes, then the route answers."""
        with self._lock:
            self.failures[path] = list(statuses)

    def cut(self, path: str, after_bytes: int, skip: int = 0) -> None:
        """After ``skip`` normal answers, one response for ``path`` announces the full length but drops the
        connection after ``after_bytes`` (yt-dlp's generic extractor first GETs a URL just for its headers)."""
        with self._lock:
            self.cuts[path] = [skip, after_bytes]

    def rss(self, path: str, items: list[tuple[str, str, str]], title: str = "Test Show") -> None:
        """An RSS 2.0 feed of (guid, title, media path) items, newest first, with enclosures."""
        xml_items = "".join(
            f"<item><title>{escape(name)}</title><guid>{escape(guid)}</guid>"
            f"<pubDate>{email.utils.formatdate(1_790_000_000 + 86400 * (len(items) - i), usegmt=True)}</pubDate>"
            f'<enclosure url="{escape(self.url(media))}" type="video/mp4" length="1"/></item>'
            for i, (guid, name, media) in enumerate(items))
        body = (f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>{escape(title)}</title>'
                f"<link>{escape(self.url('/'))}</link><description>test</description>{xml_items}</channel></rss>")
        self.serve(path, body.encode(), "application/rss+xml")

    def received(self, path: str, method: str = "POST") -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.path == path and r.method == method]

    # --- handler ---
    def _answer(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        path = handler.path
        with self._lock:
            self.requests.append(Request(method, path, dict(handler.headers), body))
            pending = self.failures.get(path)
            forced = pending.pop(0) if pending else None
            cut = None
            if forced is None and path in self.cuts:
                self.cuts[path][0] -= 1
                if self.cuts[path][0] < 0:
                    cut = self.cuts.pop(path)[1]
            route = self.routes.get(path) or self.routes.get(path.split("?", 1)[0])
            delay = self.delays.get(path.split("?", 1)[0], 0.0)
        time.sleep(delay)
        if forced is not None:
            return self._send(handler, forced, b"", "text/plain", method)
        if route is None:
            return self._send(handler, 404, b"not found", "text/plain", method)
        if route.endless:
            return self._stream_forever(handler, route, method)
        if route.headers:
            return self._send(handler, route.status, route.body, route.content_type, method, route.headers)
        payload, status, extra = route.body, route.status, {"Accept-Ranges": "bytes"}
        ranged = handler.headers.get("Range", "")
        if status == 200 and ranged.startswith("bytes="):
            start_text, _, end_text = ranged[6:].partition("-")
            start = int(start_text or 0)
            end = min(int(end_text) if end_text else len(payload) - 1, len(payload) - 1)
            if start >= len(payload):
                return self._send(handler, 416, b"", "text/plain", method,
                                  {"Content-Range": f"bytes */{len(payload)}"})
            extra["Content-Range"] = f"bytes {start}-{end}/{len(payload)}"
            payload, status = payload[start:end + 1], 206
        self._send(handler, status, payload, route.content_type, method, extra, cut)

    @staticmethod
    def _stream_forever(handler, route: Route, method: str) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", route.content_type)
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.close_connection = True
        if method == "HEAD":
            return
        try:
            while True:
                handler.wfile.write(route.body)
        except (BrokenPipeError, ConnectionResetError):   # the client stopped reading: the test's point
            pass

    @staticmethod
    def _send(handler, status: int, payload: bytes, content_type: str, method: str, headers: dict | None = None,
              cut: int | None = None):
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(payload)))
        for key, value in (headers or {}).items():
            handler.send_header(key, value)
        handler.end_headers()
        if method != "HEAD":
            try:
                handler.wfile.write(payload if cut is None else payload[:cut])
            except (BrokenPipeError, ConnectionResetError):   # the client gave up (cancel test)
                pass
        if cut is not None:
            handler.wfile.flush()
            handler.close_connection = True
