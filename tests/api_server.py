"""A real API server for tests and benchmarks: uvicorn in a subprocess on a free 127.0.0.1 port,
over the data dir and config the given settings point at; plus a small Server-Sent Events reader."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
from conftest import ROOT

from pipeline.config import Settings
from pipeline.ops.serve import api_command


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ApiServer:
    def __init__(self, settings: Settings, address: str = "127.0.0.1"):
        self.settings, self.address, self.port = settings, address, free_port()
        self.env = dict(os.environ, CLIPDESK_DATA_DIR=str(settings.data_dir), CLIPDESK_CONFIG=str(settings.source),
                        CLIPDESK_API_ADDRESS=address)
        self.log_path = Path(settings.data_dir).parent / f"api-{self.port}.log"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> ApiServer:
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(api_command(self.settings, self.address, self.port), cwd=ROOT,
                                            env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the API exited with {self.process.returncode}: {self.log()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"the API did not start: {self.log()}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:] if self.log_path.exists() else ""

    def __enter__(self) -> ApiServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def sse(client: httpx.Client, url: str, headers: dict | None = None, timeout: float = 240) -> Iterator[dict]:
    """Parse a text/event-stream into {"id", "event", "data"} dicts (comments skipped) until the caller stops."""
    deadline = time.monotonic() + timeout
    with client.stream("GET", url, headers=headers, timeout=httpx.Timeout(10, read=timeout)) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        message: dict = {}
        for line in response.iter_lines():
            if time.monotonic() > deadline:
                raise AssertionError(f"no end of stream within {timeout} s")
            if not line:
                if "data" in message:
                    message["data"] = json.loads(message["data"])
                    yield message
                message = {}
            elif not line.startswith(":"):
                field, _, value = line.partition(":")
                message[field] = value[1:] if value.startswith(" ") else value
