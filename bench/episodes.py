"""Shared parts of the end-to-end benchmarks (``bench/e2e.py``, ``bench/workers.py``).

- long speech episodes: the committed speech sample (~40 s) under a ``testsrc2`` picture,
  encoded once as a chunk and looped with stream copy to any length (cached between runs);
- a real ``huey_consumer`` through ``tests/workers.Consumer`` on a bench data dir with the
  default ``config/pipeline.yaml`` (or ``--config``);
- a poller that reads the job rows every ~0.5 s (status, stage, progress, ETA) together
  with how many jobs run and how many ffmpeg processes work at that moment;
- figures taken from the app DB afterwards: per-stage wall time from the job events, ETA
  accuracy at progress marks, CPU time of the consumer and its reaped children.

Not a benchmark by itself; the two scripts import it.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import ffmpeg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))   # first: ``workers`` must be tests/workers.py, not bench/workers.py

from workers import Consumer, ffmpeg_pids  # noqa: E402

from pipeline import db, jobs, media  # noqa: E402
from pipeline.config import Settings, load_settings  # noqa: E402
from pipeline.jobs.states import ALL_STAGES  # noqa: E402

SPEECH = ROOT / "tests" / "data" / "speech.opus"
MEDIA_CACHE = Path(tempfile.gettempdir()) / "clipdesk-bench-media"
POLL_SECONDS = 0.5
MARKS = (0.0, 0.1, 0.5, 0.9)   # 0.0: the first ETA the job showed (its whole predicted run)


# --- media ----------------------------------------------------------------------------------

def episode_media(minutes: float, cache: Path = MEDIA_CACHE, width: int = 1280, height: int = 720,
                  fps: int = 25) -> Path:
    """An episode ``minutes`` long: the speech sample looped under a test pattern, H.264 + AAC mp4.

    Built from one speech-long chunk (encoded once) looped with stream copy, so an hour takes
    seconds to make. Files are cached in ``cache`` by length and size.
    """
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"speech-{minutes:g}min-{width}x{height}-{fps}fps.mp4"
    if not path.exists():
        chunk = speech_chunk(cache / f"speech-chunk-{width}x{height}-{fps}fps.mp4", width, height, fps)
        seconds = minutes * 60
        partial = path.with_suffix(".partial.mp4")
        media.run(ffmpeg.input(str(chunk), stream_loop=-1).output(str(partial), c="copy", t=seconds,
                                                                    movflags="+faststart"), seconds)
        partial.rename(path)
    return path


def speech_chunk(path: Path, width: int, height: int, fps: int) -> Path:
    """One copy of the speech sample under ``testsrc2``, 2-second GOPs so the loop joins on a keyframe."""
    if path.exists():
        return path
    seconds = media.probe(SPEECH).duration
    video = ffmpeg.input(f"testsrc2=size={width}x{height}:rate={fps}", f="lavfi", t=seconds)
    audio = ffmpeg.input(str(SPEECH))
    partial = path.with_suffix(".partial.mp4")
    media.run(ffmpeg.output(video, audio, str(partial), vcodec="libx264", preset="veryfast", pix_fmt="yuv420p",
                            g=2 * fps, acodec="aac", audio_bitrate="96k", ar=48000, shortest=None), seconds)
    partial.rename(path)
    return path


# --- settings and consumers -----------------------------------------------------------------

def bench_settings(data_dir: Path, config: Path | None = None) -> Settings:
    """Settings for a bench data dir: the default config unless ``config`` is given.

    Sets CLIPDESK_DATA_DIR / CLIPDESK_CONFIG in this process; consumers and CLI calls inherit them.
    """
    os.environ["CLIPDESK_DATA_DIR"] = str(data_dir)
    if config:
        os.environ["CLIPDESK_CONFIG"] = str(Path(config).resolve())
    else:
        os.environ.pop("CLIPDESK_CONFIG", None)
    return load_settings()


@contextlib.contextmanager
def running(consumer: Consumer) -> Iterator[Consumer]:
    """Start the consumer; stop it (SIGINT, graceful) whatever happens inside."""
    consumer.start()
    try:
        yield consumer
    finally:
        consumer.stop()


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and of its children it has waited for (ffmpeg, once it exited)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(v) for v in fields[11:15])
    return (utime + stime + cutime + cstime) / os.sysconf("SC_CLK_TCK")


def enqueue(consumer: Consumer, source: Path, max_clips: int | None = None) -> tuple[str, int]:
    """Enqueue one file through the CLI (``python -m pipeline enqueue``); returns (episode_id, job_id)."""
    flags = ["--max-clips", str(max_clips)] if max_clips else []
    out = consumer.cli("enqueue", str(source), *flags)
    return out["episode_id"], out["job_id"]


# --- polling ----------------------------------------------------------------------------------

@dataclass
class Sample:
    """One poll: every watched job's JSON, plus how much ran at that moment."""
    at: float
    jobs: dict[int, dict]
    running: int
    running_stages: tuple[str, ...]
    render_units: int   # clips rendering now (the render stage fans out one unit per clip)
    ffmpeg: int


@dataclass
class Watch:
    samples: list[Sample] = field(default_factory=list)

    def of(self, job_id: int) -> list[tuple[float, dict]]:
        return [(s.at, s.jobs[job_id]) for s in self.samples if job_id in s.jobs]

    @property
    def last(self) -> Sample:
        return self.samples[-1]


def watch(settings: Settings, job_ids: list[int], timeout: float, interval: float = POLL_SECONDS,
          on_sample: Callable[[Sample], None] | None = None) -> Watch:
    """Poll the jobs until all are final (or ``timeout``); every sample also counts running jobs
    and the ffmpeg processes working in this data dir."""
    result = Watch()
    deadline = time.monotonic() + timeout
    marker = str(settings.data_dir)
    while True:
        rows = {job_id: jobs.get(settings, job_id) for job_id in job_ids}   # the job JSON, forecast included
        units = sum(running_units(settings, job_id) for job_id, job in rows.items() if job["stage"] == "render")
        running = [job for job in rows.values() if job["status"] == "running"]
        sample = Sample(time.time(), rows, len(running), tuple(sorted(job["stage"] or "?" for job in running)),
                        units, len(ffmpeg_pids(marker)))
        result.samples.append(sample)
        if on_sample:
            on_sample(sample)
        if all(job["status"] in jobs.FINAL_STATUSES for job in rows.values()):
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"jobs {job_ids} not finished after {timeout:.0f} s")
        time.sleep(interval)


def running_units(settings: Settings, job_id: int) -> int:
    """Render units (one per clip) of a job running now; 0 on a core without the per-clip fan-out."""
    if not hasattr(jobs, "units"):
        return 0
    return sum(1 for unit in jobs.units(settings, job_id) if unit["status"] == "running")


def ticker(every: float, say: Callable[[str], None]) -> Callable[[Sample], None]:
    """An ``on_sample`` that prints one line about the running jobs every ``every`` seconds."""
    last = [0.0]

    def tick(sample: Sample) -> None:
        if sample.at - last[0] < every:
            return
        last[0] = sample.at
        parts = [f"job {job_id} {job['status']} {job['stage'] or '-'} {job['progress'] * 100:.0f}%"
                 + (f" eta {job['eta_seconds']:.0f}s" if job.get("eta_seconds") is not None else "")
                 for job_id, job in sample.jobs.items() if job["status"] not in jobs.FINAL_STATUSES]
        say(f"  [{time.strftime('%H:%M:%S')}] " + ("; ".join(parts) or "all done")
            + f"  (clips rendering {sample.render_units}, ffmpeg {sample.ffmpeg}, load {os.getloadavg()[0]:.1f})")

    return tick


# --- figures from the app DB ------------------------------------------------------------------

def job_times(settings: Settings, job_id: int) -> dict:
    """The job's raw timestamps (epoch seconds) and its episode's media duration."""
    with db.session(settings.app_db) as conn:
        job = db.get_job(conn, job_id)
        episode = db.get_episode(conn, job["episode_id"])
    return {"created_at": job["created_at"], "started_at": job["started_at"], "finished_at": job["finished_at"],
            "status": job["status"], "error": job["error"], "episode_id": job["episode_id"],
            "media_seconds": episode["duration"] or 0.0}


def stage_times(settings: Settings, job_id: int) -> list[dict]:
    """Per stage, in run order: wall seconds from its first 'started' to its last 'finished' event,
    the seconds the 'finished' event recorded, the wait since the previous stage ended (queue gap),
    and for render the seconds of each clip ('clip_finished' events, summed: the work done in parallel)."""
    with db.session(settings.app_db) as conn:
        events = db.list_events(conn, job_id)
    spans: dict[str, dict] = {}
    for event in events:
        stage = event["stage"]
        if not stage:
            continue
        span = spans.setdefault(stage, {"stage": stage, "start": None, "end": None, "recorded": None, "units": []})
        if event["kind"] == "started" and span["start"] is None:
            span["start"] = event["created_at"]
        elif event["kind"] == "finished":
            span["end"], span["recorded"] = event["created_at"], event["seconds"]
        elif event["kind"] == "clip_finished" and event["seconds"] is not None:
            span["units"].append(event["seconds"])
    order = {stage: n for n, stage in enumerate(ALL_STAGES)}
    ordered = sorted((s for s in spans.values() if s["start"] is not None and s["end"] is not None),
                     key=lambda s: (order.get(s["stage"], len(order)), s["start"]))
    result, previous_end = [], None
    for span in ordered:
        result.append({"stage": span["stage"], "wall": span["end"] - span["start"], "recorded": span["recorded"],
                       "gap_before": None if previous_end is None else span["start"] - previous_end,
                       "units": len(span["units"]), "unit_seconds": sum(span["units"]) if span["units"] else None})
        previous_end = span["end"]
    return result


def eta_checks(history: list[tuple[float, dict]], finished_at: float, marks=MARKS) -> list[dict]:
    """At the first poll where progress reached each mark (and an ETA was shown): the ETA the job
    showed then against the time it really took from then on; error % = (predicted - actual) / actual."""
    checks = []
    for mark in marks:
        hit = next(((at, job) for at, job in history
                    if job["progress"] >= mark and job.get("eta_seconds") is not None), None)
        if hit is None:
            checks.append({"mark": mark, "progress": None, "stage": None, "predicted": None, "actual": None,
                           "error_pct": None})
            continue
        at, job = hit
        actual = finished_at - at
        checks.append({"mark": mark, "progress": job["progress"], "stage": job["stage"],
                       "predicted": job["eta_seconds"], "actual": actual,
                       "error_pct": (job["eta_seconds"] - actual) / actual * 100 if actual > 0 else None})
    return checks


def rendered(consumer: Consumer, episode_id: str) -> tuple[int, int]:
    """(clips, render files on disk) of an episode, from its summary JSON."""
    summary = consumer.cli("episode", episode_id)
    clips = summary.get("clips") or []
    files = sum(1 for clip in clips for path in (clip.get("renders") or {}).values() if path and Path(path).exists())
    return len(clips), files


# --- printing ---------------------------------------------------------------------------------

def table(headers: list[str], rows: list[list]) -> str:
    """A plain text table: first column left-aligned, the others right-aligned."""
    cells = [headers] + [[_cell(value) for value in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for n, row in enumerate(cells):
        lines.append("  ".join(value.ljust(widths[i]) if i == 0 else value.rjust(widths[i])
                               for i, value in enumerate(row)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def num(value: float | None, divide: float = 1.0, spec: str = ".1f") -> str:
    """``value / divide`` formatted, or "-" when unknown."""
    return "-" if value is None else format(value / divide, spec)


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def machine() -> dict:
    return {"cpus": os.cpu_count(), "load_average": round(os.getloadavg()[0], 2)}
