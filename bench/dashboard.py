"""Dashboard at scale: poll queries, page renders and enqueue-to-start latency over a long history.

Three parts, one run:

- Poll queries: what the pages call every ``dashboard.poll_seconds`` (the Jobs table with each
  status filter and a search, a job's details, the Overview snapshot, the New episode worker
  check) plus ``pipeline stats`` and the reads of a worker's job claim, each timed
  ``--query-repeat`` times (fresh connection per call, as the pages do): p50/p95 against a
  50 ms budget. A call over budget is broken down into its SQL statements, each with its
  time and ``EXPLAIN QUERY PLAN``.
- Page renders: the server-side script run of every real page under ``AppTest`` (median of
  ``--repeat``, 300 ms budget).
- Enqueue -> start: a real ``huey_consumer`` with the default config (config/pipeline.yaml,
  so the default ``worker.poll_max_seconds``) over a DB with the same history. Once it has
  been idle ``--idle-seconds``, a 2-second clip is enqueued ``--latency-runs`` times, each
  after the previous job ended and a random ``--idle-gap``; the delay is started_at -
  created_at of the job row and of its first 'started' event, against a 1 s budget.

Query and page figures stand next to the same on a small DB (``--peer-jobs``, same events
per job), so the ratio shows how they scale with history.

The history is written through ``pipeline.db`` functions in one transaction, the way the
runner leaves it: episodes (some from URLs), jobs in every status, each stage claimed as its
own task (start_job, set_job_stage, release_job, schedule_retry, finish_job, request_cancel...),
stage checkpoints, clips, render units, a worker heartbeat, and events: queued, started/finished
per stage (seconds, media_seconds, host), the render fan-out (fanned_out, then clip_finished or
clip_failed per clip), skipped, retrying, failed, cancelled, succeeded. Job outcomes are drawn
from ``MIX`` (plain runs, re-renders of trimmed clips, retries, bad input, crashes, cancels); to
make the event total exactly ``--events``, some jobs are then turned into early ingest failures
(3 events) or cancels before the start (2), or back. The usual mix makes about 13 events per
job (the line "The usual mix would make ..." says how many), so ``--events 100000`` for 10,000
jobs turns roughly a third of them into such failures. ``--try-sql`` runs extra SQL (say a
``CREATE INDEX``) on both DBs after the fill, to prototype a fix.

    .venv/bin/python bench/dashboard.py [--jobs 10000 --events 100000] [--peer-jobs 100]
        [--query-repeat 50] [--repeat 5] [--latency-runs 10 --idle-gap 1 3] [--try-sql "CREATE INDEX ..."]
    .venv/bin/python bench/dashboard.py --query-repeat 0 --repeat 0 --idle-gap 10 12   # latency only
"""

from __future__ import annotations

import argparse
import importlib
import math
import os
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import mediagen  # noqa: E402
from workers import Consumer, wait_for_end, wait_until  # noqa: E402

from pipeline import db, jobs  # noqa: E402
from pipeline.config import load_settings  # noqa: E402
from pipeline.jobs.progress import DEFAULT_RATES  # noqa: E402
from pipeline.jobs.states import STAGES  # noqa: E402
from pipeline.ops import stats  # noqa: E402

PAGES = ("pages/overview.py", "pages/jobs.py", "pages/episodes.py", "pages/review.py", "pages/new_episode.py",
         "pages/settings.py")
PAGE_BUDGET_MS = 300.0
QUERY_BUDGET_MS = 50.0
SLOW_STATEMENT_MS = 5.0
START_BUDGET_S = 1.0
DEFAULT_CONFIG = ROOT / "config" / "pipeline.yaml"
WORKER_ID = "bench:1"
HISTORY_DAYS = 30
FIRST_JOBS = 20   # the install's first jobs all succeed (re-work needs earlier episodes)
CRASH = "Render failed unexpectedly (CalledProcessError: ffmpeg exited with status 1)."

# Outcomes of the finished jobs, with their share: a review workflow (operators trim clips and
# re-render), feeds that enqueue entries which turn out to be gone, the odd crash and cancel.
MIX = (
    ("succeeded", 0.43),           # all five stages
    ("re-render", 0.30),           # "Redo from render" on an earlier episode: four stages skipped
    ("re-enrich", 0.04),           # "Redo from enrich" (new LLM settings) on an earlier episode
    ("retried", 0.04),             # transcription hit a busy DB, the automatic retry succeeded
    ("bad-input", 0.10),           # ingest refused the source (private video, not a media file)
    ("gave-up", 0.02),             # the download kept timing out: four attempts, then failed
    ("crashed", 0.02),             # internal error while rendering
    ("cancelled-queued", 0.04),
    ("cancelled-running", 0.01),
)
SHORT = ("bad-input", "cancelled-queued")   # what ``plan`` turns jobs into to make the event total exact


# --- the history -------------------------------------------------------------------------------

class History:
    """Writes job histories through ``pipeline.db`` the way the runner leaves them, or with
    ``conn=None`` only counts their events.

    Each job draws from its own random stream, so its event count depends only on its index
    and outcome (``plan`` counts jobs one by one, then the writing pass makes the same ones).
    """

    def __init__(self, conn=None, host: str = ""):
        self.conn, self.events, self.host = conn, 0, host   # the host stage events record (rates are per host)
        self.done: list[tuple[str, float]] = []   # episodes whose job succeeded: re-work candidates
        self.clips: dict[str, list[tuple[str, float]]] = {}   # episode -> [(clip id, seconds)]
        self.job_id, self.episode_id, self.duration = 0, "", 0.0
        self.at = self.stage_started = 0.0
        self.waiting = False

    def write(self, function: Callable, *args):
        return None if self.conn is None else function(self.conn, *args)

    def event(self, stage: str | None, kind: str, message: str | None = None, seconds: float | None = None,
              media_seconds: float | None = None, host: str | None = None) -> None:
        self.events += 1
        self.write(db.add_event, self.job_id, stage, kind, self.at, message, seconds, media_seconds, host)

    def job(self, n: int, outcome: str, created: float, now: float) -> None:
        self.rng = random.Random(n)
        self.job_id = n + 1
        if outcome in ("re-render", "re-enrich"):
            self.rework("render" if outcome == "re-render" else "enrich", created)
            return
        self.new_episode(n, created)
        self.queue(created)
        getattr(self, outcome.replace("-", "_"))(now)

    # the steps, as pipeline.runner records them

    def new_episode(self, n: int, created: float) -> None:
        self.episode_id, self.duration = f"bench{n:07d}", round(self.rng.uniform(900, 5400), 1)
        kind, uri = (("url", f"https://www.youtube.com/watch?v=bench{n:07d}") if n % 5 < 2
                     else ("path", f"/media/ep{n}.mp4"))
        self.write(db.insert_episode, self.episode_id, f"Episode {n} about topic {n % 97}", kind, uri, created)

    def queue(self, created: float, message: str | None = None) -> None:
        self.at, self.waiting = created, True
        self.job_id = self.write(db.insert_job, self.episode_id, 50, "{}", created) or self.job_id
        self.event(None, "queued", message)

    def claim(self, skipped: tuple[str, ...] = ()) -> None:
        """A worker takes the job's next stage (each stage is its own task); a new attempt first
        says which stages it keeps."""
        self.at += self.rng.expovariate(1 / 1.5) if self.waiting else self.rng.uniform(0.05, 0.5)
        self.write(db.start_job, self.job_id, self.at, WORKER_ID)
        if self.waiting:
            self.write(db.set_episode_status, self.episode_id, "processing", self.at)
        self.waiting = False
        for stage in skipped:
            self.event(stage, "skipped", "Already completed in an earlier attempt.")

    def begin(self, stage: str) -> float:
        """The stage starts; returns how long it will take."""
        self.write(db.set_job_stage, self.job_id, stage, STAGES.index(stage) / len(STAGES), self.at)
        self.event(stage, "started", host=self.host)
        self.stage_started = self.at
        return DEFAULT_RATES[stage] * self.duration * self.rng.uniform(0.7, 1.4)

    def stage(self, stage: str, skipped: tuple[str, ...] = (), pending: int = 0) -> None:
        """One whole stage; render fans out into ``pending`` clips (all of them when 0)."""
        self.claim(skipped)
        seconds = self.begin(stage)
        if stage == "render":
            self.fan_out(self.episode_clips()[:pending or None])
        else:
            self.at += seconds
        if stage == "ingest":
            self.write(db.set_episode_source, self.episode_id, "source.mp4", self.duration, "{}", self.at)
        if stage == "enrich":
            self.new_clips()
        self.write(db.mark_stage_done, self.episode_id, stage, self.at)
        self.event(stage, "finished", seconds=round(self.at - self.stage_started, 3), media_seconds=self.duration,
                   host=self.host)
        self.write(db.release_job, self.job_id)

    def episode_clips(self) -> list[tuple[str, float]]:
        return self.clips.get(self.episode_id) or [(f"{self.episode_id}-0", 30.0)] * 5   # counting: any clips

    def new_clips(self) -> None:
        clips = [(f"{self.episode_id}-{i}", round(self.rng.uniform(15, 60), 1)) for i in range(self.rng.randint(3, 5))]
        starts = sorted(self.rng.uniform(0, self.duration - 60) for _ in clips)
        self.clips[self.episode_id] = clips
        self.write(db.replace_clips, self.episode_id, [
            {"id": clip_id, "start": start, "end": start + seconds, "score": round(self.rng.random(), 3),
             "title": f"Clip {i + 1}", "reason": "A strong hook."}
            for i, ((clip_id, seconds), start) in enumerate(zip(clips, starts, strict=True))], self.at)

    def fan_out(self, pending: list[tuple[str, float]], failing: int | None = None) -> None:
        """The render stage: one unit per clip, each claimed and ended by a worker; ``failing`` crashes."""
        unit_ids = self.write(db.replace_units, self.job_id, pending, 51, self.at) or [0] * len(pending)
        self.write(db.release_job, self.job_id)
        self.event("render", "fanned_out", f"{len(pending)} clip(s) queued to render, in parallel on free workers.")
        for i, (unit_id, (clip_id, clip_seconds)) in enumerate(zip(unit_ids, pending, strict=True)):
            self.at += self.rng.uniform(0.05, 0.5)
            self.write(db.claim_unit, unit_id, WORKER_ID, self.at)
            seconds = DEFAULT_RATES["render"] * clip_seconds * self.rng.uniform(0.7, 1.4)
            self.at += seconds if i != failing else seconds / 3
            if i == failing:
                error = f"Clip 'Clip {i + 1}': {CRASH}"
                self.write(db.end_unit, unit_id, "failed", self.at, error, "internal")
                self.event("render", "clip_failed", error)
            else:
                self.write(db.end_unit, unit_id, "done", self.at)
                self.event("render", "clip_finished", f"Clip {clip_id} rendered in {seconds:.1f} s.",
                           round(seconds, 3), clip_seconds, self.host)
        self.write(db.take_job_after_units, self.job_id, WORKER_ID, self.at)

    def retry(self, stage: str, problem: str, attempt: int) -> None:
        delay = 10 * 4 ** (attempt - 1) * self.rng.uniform(0.8, 1.2)
        self.write(db.schedule_retry, self.job_id, self.at + delay, problem, "transient")
        self.event(stage, "retrying", f"Attempt {attempt} of 4 failed: {problem} Next attempt in {delay:.0f} s.")
        self.at += delay
        self.waiting = True

    def finish(self, status: str, stage: str | None = None, error: str | None = None,
               kind: str | None = None) -> None:
        self.at += 0.05
        self.write(db.finish_job, self.job_id, status, self.at, error, kind)
        self.event(stage, status, error)
        episode_status = {"succeeded": "ready", "failed": "failed", "cancelled": "new"}[status]
        self.write(db.set_episode_status, self.episode_id, episode_status, self.at)
        if status == "succeeded":
            self.done.append((self.episode_id, self.duration))

    # the outcomes of MIX, and the jobs still live

    def succeeded(self, now: float) -> None:
        for stage in STAGES:
            self.stage(stage)
        self.finish("succeeded")

    def rework(self, from_stage: str, created: float) -> None:
        """A new job for an earlier episode; a re-render renders only the one or two trimmed clips."""
        pick, pending = self.rng.random(), self.rng.randint(1, 2) if from_stage == "render" else 0
        self.episode_id, self.duration = self.done[int(pick * len(self.done))] if self.done else ("bench", 1800.0)
        redo = STAGES[STAGES.index(from_stage):]
        self.write(db.clear_stages, self.episode_id, redo)
        self.queue(created, f"Redo from {from_stage}.")
        for i, stage in enumerate(redo):
            self.stage(stage, skipped=STAGES[:STAGES.index(from_stage)] if i == 0 else (), pending=pending)
        self.finish("succeeded")

    def bad_input(self, now: float) -> None:
        self.claim()
        self.begin("ingest")
        self.at += 2
        self.finish("failed", "ingest", "Ingest failed: the video is private or was removed.", "bad_input")

    def cancelled_queued(self, now: float) -> None:
        self.at += self.rng.uniform(5, 600)
        self.write(db.request_cancel, self.job_id, self.at)
        self.event(None, "cancelled", "Cancelled before it started.")

    def gave_up(self, now: float) -> None:
        for attempt in (1, 2, 3):
            self.claim()
            self.at += self.begin("ingest") + 30
            self.retry("ingest", "The download timed out.", attempt)
        self.claim()
        self.at += self.begin("ingest") + 30
        self.finish("failed", "ingest", "Ingest hit a temporary problem: the download timed out. Gave up after"
                    " 4 attempts.", "transient")

    def retried(self, now: float) -> None:
        """Transcription hit a busy DB; the automatic retry succeeded."""
        self.stage("ingest")
        self.stage("extract_audio")
        self.claim()
        self.at += self.begin("transcribe") / 2
        self.retry("transcribe", "the database was busy (database is locked).", 1)
        self.stage("transcribe", skipped=("ingest", "extract_audio"))
        self.stage("enrich")
        self.stage("render")
        self.finish("succeeded")

    def crashed(self, now: float) -> None:
        for stage in STAGES[:4]:
            self.stage(stage)
        self.claim()
        self.begin("render")
        self.fan_out(self.episode_clips(), failing=0)
        self.finish("failed", "render", f"Clip 'Clip 1': {CRASH}", "internal")

    def cancelled_running(self, now: float) -> None:
        self.stage("ingest")
        self.stage("extract_audio")
        self.claim()
        self.at += self.begin("transcribe") / 3
        self.finish("cancelled", "transcribe", "The job was cancelled.", "cancelled")

    def running(self, now: float) -> None:
        self.stage("ingest")
        self.stage("extract_audio")
        self.claim()
        seconds = self.begin("transcribe")
        self.at = min(self.at + seconds / 2, now)
        self.write(db.set_job_progress, self.job_id, 0.5, 0.3, seconds / 2, self.at)

    def retrying(self, now: float) -> None:
        self.claim()
        self.at += self.begin("ingest") / 4
        self.retry("ingest", "The download timed out.", 1)

    def queued(self, now: float) -> None:
        pass


def created_at(n: int, count: int, tail: int, now: float) -> float:
    """Finished jobs spread over HISTORY_DAYS (ending two hours ago); the live tail in the last minutes."""
    if n >= count - tail:
        return now - (count - n) * 30
    return now - HISTORY_DAYS * 86400 + n * (HISTORY_DAYS * 86400 - 7200) / count + (n * 37) % 60


def events_of(n: int, outcome: str) -> int:
    history = History()
    history.job(n, outcome, 0.0, 0.0)
    return history.events


def convert(outcomes: list[str], counts: list[int], need: int, order: list[int], sources: tuple[str, ...],
            into: str) -> int:
    """Turn jobs with a ``sources`` outcome into ``into`` while that brings the event total closer
    to the target; returns how many events are still missing (negative: too many)."""
    for n in order:
        if need == 0:
            break
        if outcomes[n] in sources:
            change = events_of(n, into) - counts[n]
            if change and (change > 0) == (need > 0) and abs(change) <= abs(need):
                outcomes[n], counts[n], need = into, counts[n] + change, need - change
    return need


def plan(count: int, events: int, live: bool) -> tuple[list[str], int]:
    """Each job's outcome, drawn from MIX, then adjusted so the history holds exactly ``events``
    events: long jobs become ingest failures (or back), and ingest failures (3 events) become
    cancels before the start (2 events) or back. Returns the outcomes and the unadjusted total."""
    tail = max(5, count // 500) if live else 0
    draw = random.Random(9)
    names, shares = zip(*MIX, strict=True)
    outcomes = ["succeeded" if n < FIRST_JOBS else draw.choices(names, shares)[0] for n in range(count - tail)]
    outcomes += ["running", "running", "retrying"][:tail] + ["queued"] * max(0, tail - 3)
    counts = [events_of(n, outcome) for n, outcome in enumerate(outcomes)]
    natural = sum(counts)
    order = list(range(FIRST_JOBS, count - tail))
    random.Random(1).shuffle(order)   # spread the changes over the whole history
    long_jobs = tuple(name for name in names if name not in SHORT)
    need = events - natural
    if need < 0:
        need = convert(outcomes, counts, need, order, long_jobs, "bad-input")
    else:   # failures first: cancels are wanted for the one-event steps below
        need = convert(outcomes, counts, need, order, ("bad-input",), "succeeded")
        need = convert(outcomes, counts, need, order, ("cancelled-queued",), "succeeded")
    need = convert(outcomes, counts, need, order, ("bad-input", "cancelled-queued"),
                   "cancelled-queued" if need < 0 else "bad-input")
    if need:
        raise SystemExit(f"Cannot make exactly {events:,} events from {count:,} jobs ({natural:,} with the"
                         f" usual mix); {abs(need):,} too {'few' if need > 0 else 'many'}.")
    return outcomes, natural


def fill(settings, count: int, events: int, live: bool = True) -> dict:
    """Write the history (exactly ``events`` events) in one transaction; returns what it holds."""
    now = time.time()
    outcomes, natural = plan(count, events, live)
    tail = sum(1 for outcome in outcomes if outcome in ("running", "retrying", "queued"))
    start = time.perf_counter()
    with db.session(settings.app_db) as conn:
        with db.transaction(conn):
            history = History(conn, settings.worker.host_id)
            for n, outcome in enumerate(outcomes):
                history.job(n, outcome, created_at(n, count, tail, now), now)
            history.write(db.worker_heartbeat, WORKER_ID, now)
        seconds = time.perf_counter() - start
        by_kind = dict(conn.execute("SELECT kind, COUNT(*) FROM job_events GROUP BY kind ORDER BY 2 DESC"))
        summary = {"seconds": seconds, "natural": natural, "jobs": db.count_jobs_by_status(conn), "events": by_kind,
                   "episodes": conn.execute("SELECT COUNT(*) FROM episodes").fetchone()[0],
                   "clips": conn.execute("SELECT COUNT(*) FROM clips").fetchone()[0],
                   "units": conn.execute("SELECT COUNT(*) FROM render_units").fetchone()[0]}
    assert sum(by_kind.values()) == events and sum(summary["jobs"].values()) == count, summary
    return summary


def describe(summary: dict) -> str:
    jobs_text = ", ".join(f"{n:,} {status}" for status, n in sorted(summary["jobs"].items(), key=lambda kv: -kv[1]))
    events_text = ", ".join(f"{n:,} {kind}" for kind, n in summary["events"].items())
    total = sum(summary["jobs"].values())
    return (f"{total:,} jobs ({jobs_text});\n  {sum(summary['events'].values()):,} events ({events_text});\n"
            f"  {summary['episodes']:,} episodes, {summary['clips']:,} clips, {summary['units']:,} render units;"
            f" written in {summary['seconds']:.1f} s. (The usual mix would make {summary['natural']:,} events,"
            f" {summary['natural'] / total:.1f} per job.)")


# --- timing --------------------------------------------------------------------------------------

def timings_ms(action: Callable, repeat: int) -> list[float]:
    action()   # warm-up: imports, caches, SQLite page cache
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append((time.perf_counter() - start) * 1000)
    return times


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def in_session(settings, read: Callable) -> Callable:
    def run():
        with db.session(settings.app_db) as conn, db.snapshot(conn):
            return read(conn)
    return run


def poll_calls(settings, count: int) -> dict[str, Callable]:
    """What the pages call on every poll (and ``pipeline stats``, and a worker's job claim)."""
    newest, middle, episode = count, count // 2, f"bench{count // 2:07d}"
    calls = {"Jobs: table, all statuses (list_jobs 200)": lambda: jobs.list_jobs(settings, limit=200)}
    for status in jobs.JOB_STATUSES:
        calls[f"Jobs: table, status={status}"] = (
            lambda status=status: jobs.list_jobs(settings, status=status, limit=200))
    calls.update({
        "Jobs: table, search 'topic 42'": lambda: jobs.list_jobs(settings, limit=200, search="topic 42"),
        "Jobs: table, search an episode id": lambda: jobs.list_jobs(settings, limit=200, search=episode),
        "Jobs: table, search '#N' (jobs.get)": lambda: jobs.get(settings, middle),
        "Jobs: details of the newest job (get+events)": lambda: (jobs.get(settings, newest),
                                                                 jobs.events(settings, newest)),
        "Overview: stats.overview": lambda: stats.overview(settings),
        "Overview: running jobs (list_jobs 10)": lambda: jobs.list_jobs(settings, status="running", limit=10),
        "New episode: jobs.queue_overview": lambda: jobs.queue_overview(settings),
        "CLI stats: jobs.stats": lambda: jobs.stats(settings),
        "Worker claim: db.stage_rates": in_session(settings, db.stage_rates),
    })
    return calls


def traced_statements(action: Callable) -> list[str]:
    """The SELECTs ``action`` runs, with their parameters filled in (every connection ``db`` opens)."""
    seen: list[str] = []
    original = db._open

    def traced(path):
        conn = original(path)
        conn.set_trace_callback(seen.append)
        return conn

    db._open = traced
    try:
        action()
    finally:
        db._open = original
    return list(dict.fromkeys(s for s in seen if s.lstrip().upper().startswith(("SELECT", "WITH"))))


def explain(settings, action: Callable, repeat: int = 10) -> list[tuple[float, str, list[str]]]:
    """(median ms, SQL, query plan) of each statement of ``action``, slowest first."""
    rows = []
    with db.session(settings.app_db) as conn:
        for sql in traced_statements(action):
            ms = statistics.median(timings_ms(lambda sql=sql: conn.execute(sql).fetchall(), repeat))
            plan = [row["detail"] for row in conn.execute("EXPLAIN QUERY PLAN " + sql)]
            rows.append((ms, sql, plan))
    return sorted(rows, key=lambda row: -row[0])


def page_ms(page: str, repeat: int) -> float:
    """Server-side render time of one dashboard page: the script run itself (``dashboard.py``, the
    navigation and the page, every read it makes), timed inside ``AppTest``'s script runner.

    AppTest's own set-up (it scans installed packages for components on every run) and its
    polling are left out: a browser session does not pay them.
    """
    from streamlit.logger import set_log_level
    from streamlit.runtime.scriptrunner.script_runner import ScriptRunner
    from streamlit.testing.v1 import AppTest

    set_log_level("error")   # AppTest's "missing ScriptRunContext" warnings
    timings: list[float] = []
    original = ScriptRunner._run_script

    def timed(self, rerun_data):
        start = time.perf_counter()
        try:
            return original(self, rerun_data)
        finally:
            timings.append((time.perf_counter() - start) * 1000)

    def run():
        at = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=60)
        at.switch_page(page)
        at.run()
        assert not at.exception, at.exception

    ScriptRunner._run_script = timed
    try:
        run()   # warm-up
        timings.clear()
        for _ in range(repeat):
            run()
    finally:
        ScriptRunner._run_script = original
    return statistics.median(timings)


def measure(count: int, events: int, args) -> dict:
    """Fill a fresh data dir, then time the poll calls and the pages; over-budget calls get explained."""
    with tempfile.TemporaryDirectory() as folder:
        os.environ["CLIPDESK_DATA_DIR"] = folder
        settings = load_settings()
        summary = fill(settings, count, events)
        with db.session(settings.app_db) as conn:
            for sql in args.try_sql:
                conn.execute(sql)
            if args.analyze:
                conn.execute("ANALYZE")
        calls = poll_calls(settings, count) if args.query_repeat else {}
        queries = {name: timings_ms(call, args.query_repeat) for name, call in calls.items()}
        plans = {name: explain(settings, calls[name]) for name, times in queries.items()
                 if percentile(times, 0.95) > QUERY_BUDGET_MS}
        pages = {page: page_ms(page, args.repeat) for page in PAGES} if args.repeat else {}
        return {"summary": summary, "queries": queries, "plans": plans, "pages": pages}


# --- enqueue -> start latency ----------------------------------------------------------------------

def start_delays(settings, job_id: int) -> dict:
    """Seconds from enqueue to start: the job row's started_at, and its first 'started' event."""
    with db.session(settings.app_db) as conn:
        job = db.get_job(conn, job_id)
        started = [e["created_at"] for e in db.list_events(conn, job_id) if e["kind"] == "started"]
    return {"row": None if job["started_at"] is None else job["started_at"] - job["created_at"],
            "event": started[0] - job["created_at"] if started else None, "status": job["status"]}


def start_latency(count: int, events: int, args) -> list[dict]:
    """A real consumer with the default config over the same history (nothing live), idle, then tiny jobs."""
    rng = random.Random(3)
    with tempfile.TemporaryDirectory() as folder:
        os.environ["CLIPDESK_DATA_DIR"] = str(Path(folder) / "data")
        os.environ["CLIPDESK_CONFIG"] = str(DEFAULT_CONFIG)
        settings = load_settings()
        fill(settings, count, events, live=False)
        clip = mediagen.tone_video(Path(folder) / "tiny.mp4", 2)
        queue_worker = importlib.import_module("queue_worker")   # its Huey reads the env set above
        consumer = Consumer(settings).start()
        try:
            wait_until(lambda: in_session(settings, db.list_workers)(), 120, 0.2, "the consumer's first heartbeat")
            time.sleep(args.idle_seconds)
            results = []
            for _ in range(args.latency_runs):
                _, job_id = jobs.enqueue(settings, str(clip), queue_worker.dispatch, trusted_path=True)
                wait_for_end(settings, job_id, timeout=600)
                results.append(start_delays(settings, job_id))
                time.sleep(rng.uniform(*args.idle_gap))
        finally:
            consumer.stop()
        return results


# --- report --------------------------------------------------------------------------------------

def report_queries(big: dict, small: dict, args) -> None:
    if not big["queries"]:
        return
    head = f"{args.jobs:,} jobs p50/p95"
    print(f"\n{'poll call (ms, ' + str(args.query_repeat) + ' runs)':46} {head:>22} {f'{args.peer_jobs:,} p50/p95':>14}"
          f" {'p50 ratio':>9}  p95 < {QUERY_BUDGET_MS:.0f} ms")
    for name, times in big["queries"].items():
        p50, p95 = percentile(times, 0.5), percentile(times, 0.95)
        peer = percentile(small["queries"][name], 0.5), percentile(small["queries"][name], 0.95)
        verdict = "PASS" if p95 < QUERY_BUDGET_MS else "OVER BUDGET"
        print(f"{name:46} {p50:>10.1f} / {p95:>8.1f} {peer[0]:>6.1f} / {peer[1]:>5.1f} {p50 / peer[0]:>8.1f}x  {verdict}")
    slow: dict[str, tuple[float, list[str], list[str]]] = {}   # statement -> (ms, plan, calls it slows)
    for name, rows in big["plans"].items():
        for ms, sql, plan in rows:
            if ms >= SLOW_STATEMENT_MS:
                slow.setdefault(sql, (ms, plan, []))[2].append(name)
    if big["plans"]:
        print(f"\nWhere the over-budget calls spend it: their statements over {SLOW_STATEMENT_MS:.0f} ms (median of 10),"
              " each once, with its query plan")
    for sql, (ms, plan, names) in sorted(slow.items(), key=lambda item: -item[1][0]):
        print(f"  {ms:6.1f} ms  {' '.join(sql.split())[:400]}")
        print(f"             run by: {'; '.join(names)}")
        for step in plan:
            print(f"             | {step}")


def report_pages(big: dict, small: dict, args) -> None:
    if not big["pages"]:
        return
    print(f"\n{'page render (median ms, ' + str(args.repeat) + ' runs)':46} {f'{args.jobs:,} jobs':>22}"
          f" {f'{args.peer_jobs:,} jobs':>14} {'ratio':>9}  < {PAGE_BUDGET_MS:.0f} ms")
    for page, value in big["pages"].items():
        verdict = "PASS" if value <= PAGE_BUDGET_MS else "OVER BUDGET"
        print(f"{page:46} {value:>22.1f} {small['pages'][page]:>14.1f} {value / small['pages'][page]:>8.2f}x  {verdict}")


def report_latency(results: list[dict]) -> None:
    print(f"\nEnqueue -> start with an idle worker (default config), {len(results)} runs; seconds, budget"
          f" {START_BUDGET_S:.0f} s")
    for key, label in (("row", "job row started_at - created_at"), ("event", "first 'started' event - created_at")):
        values = [r[key] for r in results if r[key] is not None]
        if values:
            verdict = "PASS" if percentile(values, 0.95) < START_BUDGET_S else "OVER BUDGET"
            print(f"  {label:38} p50 {percentile(values, 0.5):.2f}  p95 {percentile(values, 0.95):.2f}"
                  f"  max {max(values):.2f}  {verdict}")
    print("  each run (row / event): " + ", ".join(
        "never" if r["row"] is None else f"{r['row']:.2f}/{r['event']:.2f}" for r in results)
        + f"  (job statuses: {dict(Counter(r['status'] for r in results))})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=100_000, help="job events in total (exact)")
    parser.add_argument("--peer-jobs", type=int, default=100)
    parser.add_argument("--query-repeat", type=int, default=50, help="runs of each poll call (0 = skip them)")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each page (0 = skip the pages)")
    parser.add_argument("--latency-runs", type=int, default=10, help="tiny jobs through a real worker (0 = skip)")
    parser.add_argument("--idle-seconds", type=float, default=5.0, help="worker idle time before the first job")
    parser.add_argument("--idle-gap", type=float, nargs=2, default=(1.0, 3.0), metavar=("MIN", "MAX"),
                        help="random idle seconds between one job's end and the next enqueue")
    parser.add_argument("--try-sql", action="append", default=[], help="SQL run on both DBs after the fill")
    parser.add_argument("--analyze", action="store_true", help="run ANALYZE after the fill")
    args = parser.parse_args()
    os.environ.pop("CLIPDESK_CONFIG", None)
    if args.query_repeat or args.repeat:
        big = measure(args.jobs, args.events, args)
        small = measure(args.peer_jobs, round(args.events * args.peer_jobs / args.jobs), args)
        print(f"Big DB: {describe(big['summary'])}")
        print(f"Peer DB: {describe(small['summary'])}")
        if args.try_sql or args.analyze:
            print(f"Extra SQL after the fill: {args.try_sql + (['ANALYZE'] if args.analyze else [])}")
        report_queries(big, small, args)
        report_pages(big, small, args)
    if args.latency_runs:
        report_latency(start_latency(args.jobs, args.events, args))


if __name__ == "__main__":
    main()
