"""Real ``huey_consumer`` subprocesses for queue tests: start, kill, stop, and wait on jobs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml
from conftest import ROOT

from pipeline import jobs
from pipeline.config import Settings, load_settings
from pipeline.ops.serve import consumer_command

# Fast recovery for tests: heartbeats every 0.3 s, a job is orphaned after 3 s of silence.
FAST_WORKER = {"heartbeat_seconds": 0.3, "stale_after_seconds": 3.0, "reap_seconds": 1.0,
               "poll_max_seconds": 0.5, "retry_base_seconds": 0.5, "retry_factor": 2.0}
FAST_RENDER = {"preset": "ultrafast"}   # same outputs, a fraction of the encode time


def write_config(tmp_path: Path, **sections) -> Path:
    """A config YAML with the fast worker settings plus ``sections`` (enrich={...}, ...); point
    CLIPDESK_CONFIG at it and ``load_settings()`` / the consumer read it."""
    config = {"worker": dict(FAST_WORKER, **sections.pop("worker", {})),
              "render": dict(FAST_RENDER, **sections.pop("render", {})),
              # tests act as the operator: media from temp folders, their own servers on 127.0.0.1
              "paths": dict({"allowed_source_dirs": ["*"]}, **sections.pop("paths", {})),
              "network": dict({"allowed_hosts": ["127.0.0.1"]}, **sections.pop("network", {})), **sections}
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def use_config(tmp_path: Path, monkeypatch, **sections) -> Settings:
    """Point this process (and the consumers it starts) at a fast test config and a temp data dir."""
    monkeypatch.setenv("CLIPDESK_CONFIG", str(write_config(tmp_path, **sections)))
    monkeypatch.setenv("CLIPDESK_DATA_DIR", str(tmp_path / "data"))
    return load_settings()


class Consumer:
    """One consumer process over the data dir and config the test's environment points at."""

    def __init__(self, settings: Settings, workers: int = 1, name: str = "consumer", env: dict | None = None):
        """``name`` names its log file (several consumers on one data dir); ``env`` adds variables
        (``CLIPDESK_HOST_ID``...)."""
        self.settings, self.workers = settings, workers
        self.env = dict(os.environ, CLIPDESK_DATA_DIR=str(settings.data_dir), CLIPDESK_CONFIG=str(settings.source),
                        **(env or {}))
        self.log_path = Path(settings.data_dir).parent / f"{name}.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> Consumer:
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(consumer_command(self.settings, self.workers), cwd=ROOT, env=self.env,
                                            stdout=log, stderr=subprocess.STDOUT)
        return self

    @property
    def pid(self) -> int:
        return self.process.pid

    def kill(self) -> None:
        """SIGKILL: the worker dies without any chance to clean up, like an OOM kill."""
        self.process.kill()
        self.process.wait(timeout=10)

    def stop(self, sig: int = signal.SIGINT, timeout: float = 60) -> int:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.wait_ready()   # a signal that lands while Python is still importing can be swallowed
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise

    def enqueue_many(self, sources: list, priorities: list[int] | None = None, options: dict | None = None) -> list[int]:
        """Enqueue several sources through the worker's own dispatch in one process (faster than N CLI runs,
        and like them free to name any file: ``trusted_path``), each with the job ``options``."""
        script = ("import json, sys, queue_worker\nfrom pipeline import jobs\n"
                  "pairs, options = json.loads(sys.argv[1]), json.loads(sys.argv[2])\n"
                  "print(json.dumps([jobs.enqueue(queue_worker.settings, s, queue_worker.dispatch, priority=p,"
                  " options=options, trusted_path=True)[1] for s, p in pairs]))")
        pairs = [[str(s), p] for s, p in zip(sources, priorities or [jobs.PRIORITY_INTERACTIVE] * len(sources),
                                             strict=True)]
        out = subprocess.run([sys.executable, "-c", script, json.dumps(pairs), json.dumps(options)], cwd=ROOT, env=self.env,
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout.strip().splitlines()[-1])

    def wait_ready(self, timeout: float = 30) -> None:
        """Until Huey has started (and installed its signal handlers) in this process."""
        deadline = time.monotonic() + timeout
        while f"PID {self.process.pid} " not in self.log() and self.process.poll() is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"consumer {self.process.pid} did not start: {self.log()[-2000:]}")
            time.sleep(0.05)
        time.sleep(0.2)   # Huey sets its handlers just after that line, once its threads have started

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def cli(self, *args: str, expect_ok: bool = True) -> dict:
        out = subprocess.run([sys.executable, "-m", "pipeline", *args, "--json"], cwd=ROOT, env=self.env,
                             capture_output=True, text=True, timeout=60)
        if expect_ok:
            assert out.returncode == 0, out.stderr
        return json.loads(out.stdout) if out.stdout.strip() else {"error": out.stderr, "returncode": out.returncode}


def wait_until(predicate, timeout: float = 120, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def wait_for_end(settings, job_id: int, timeout: float = 240) -> dict:
    return wait_until(lambda: (job := jobs.get(settings, job_id))["status"] in jobs.FINAL_STATUSES and job,
                      timeout, 0.2, f"job {job_id} to finish")


def ffmpeg_pids(marker: str) -> list[int]:
    """Running ffmpeg processes whose command line mentions ``marker`` (e.g. a temp data dir)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and cmdline and b"ffmpeg" in Path(cmdline[0].decode(errors="replace")).name.encode() \
                and any(marker.encode() in part for part in cmdline):
            pids.append(int(proc.name))
    return pids
