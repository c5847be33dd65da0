"""A real OpenAI-compatible chat server on 127.0.0.1 with scripted answers, for tests.

    server = FakeLLM([Reply(503), Reply(503), Reply.completion('{"title": "x", ...}')]).start()
    settings.llm.base_url = server.url          # http://127.0.0.1:PORT/v1
    ...
    server.requests[0].body["response_format"]  # what the client sent; .at = arrival time (monotonic)
    server.stop()

Replies are served in order; when the queue is empty the ``default`` answers (a ``Reply``, or a
callable taking the request body and returning one). ``Reply.delay`` holds the answer back
(to trigger client timeouts). For another process (e.g. a real huey consumer test), run
``python tests/llm_server.py --script replies.json [--record requests.jsonl]``: it prints its
base URL on the first line of stdout and serves until terminated. The script is a JSON list of
``{"status", "body", "headers", "delay"}`` (``"content"`` instead of ``"body"`` wraps a chat completion),
and an optional ``{"default": {...}}`` as the last item.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Reply:
    status: int = 200
    body: object = None            # dict -> JSON; str -> sent as is
    headers: dict = field(default_factory=dict)
    delay: float = 0.0

    @classmethod
    def completion(cls, content: str | dict, finish_reason: str = "stop", **kwargs) -> Reply:
        """A chat completion whose message content is ``content`` (a dict is sent as its JSON)."""
        text = content if isinstance(content, str) else json.dumps(content)
        return cls(200, {"id": "chatcmpl-test", "object": "chat.completion", "model": "test-model",
                         "choices": [{"index": 0, "finish_reason": finish_reason,
                                      "message": {"role": "assistant", "content": text}}],
                         "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}}, **kwargs)

    @classmethod
    def from_json(cls, item: dict) -> Reply:
        if "content" in item:
            return cls.completion(item["content"], item.get("finish_reason", "stop"),
                                  headers=item.get("headers", {}), delay=item.get("delay", 0.0))
        return cls(item.get("status", 200), item.get("body"), item.get("headers", {}), item.get("delay", 0.0))


@dataclass
class Request:
    path: str
    headers: dict
    body: dict | None
    at: float                      # time.monotonic() on arrival

    @property
    def prompt(self) -> str:
        """All message contents joined (what the model would read)."""
        return "\n".join(m.get("content", "") for m in (self.body or {}).get("messages", []))


class FakeLLM:
    def __init__(self, replies: list | None = None, default: Reply | Callable[[dict], Reply] | None = None,
                 record_path: str | None = None):
        self.replies = list(replies or [])
        self.default = default
        self.requests: list[Request] = []
        self.record_path = record_path
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def push(self, *replies) -> None:
        with self._lock:
            self.replies.extend(replies)

    def start(self) -> FakeLLM:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):   # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = None
                reply = fake._next(Request(self.path, dict(self.headers), body, time.monotonic()))
                if reply.delay:
                    time.sleep(reply.delay)
                payload = reply.body if isinstance(reply.body, str) else json.dumps(
                    reply.body if reply.body is not None else {"error": {"message": f"scripted {reply.status}"}})
                data = payload.encode("utf-8")
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for name, value in reply.headers.items():
                        self.send_header(name, str(value))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):   # the client gave up (timeout test)
                    pass

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="fake-llm", daemon=True)
        self._thread.start()
        return self

    def _next(self, request: Request) -> Reply:
        with self._lock:
            self.requests.append(request)
            if self.record_path:
                with open(self.record_path, "a", encoding="utf-8") as out:
                    out.write(json.dumps({"path": request.path, "body": request.body, "at": request.at,
                                          "wall": time.time()}) + "\n")
            if self.replies:
                return self.replies.pop(0)
        if callable(self.default):
            return self.default(request.body or {})
        return self.default or Reply(500, {"error": {"message": "no scripted reply left"}})

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeLLM:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve scripted OpenAI-compatible chat answers on 127.0.0.1.")
    parser.add_argument("--script", required=True, help="JSON list of replies (see the module docstring)")
    parser.add_argument("--record", help="append every request as a JSON line to this file")
    args = parser.parse_args(argv)
    with open(args.script, encoding="utf-8") as handle:
        items = json.load(handle)
    default = None
    if items and isinstance(items[-1], dict) and "default" in items[-1]:
        default = Reply.from_json(items.pop()["default"])
    server = FakeLLM([Reply.from_json(i) for i in items], default, record_path=args.record).start()
    print(server.url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
