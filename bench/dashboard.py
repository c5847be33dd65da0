"""Dashboard benchmark: page render time and poll queries with 10,000 jobs in the app DB.

The peer is the same dashboard on a small DB (100 jobs) in the same run, so the printed
ratio shows how the pages scale with history. The DB is filled through ``pipeline.db``
functions (real rows: episodes, jobs in every status, ten events per finished job).
Page times are the server-side script runs of the real pages under ``AppTest`` (all reads and
element building, after a warm-up run); poll times are the functions the pages call every
``dashboard.poll_seconds``.

    .venv/bin/python bench/dashboard.py [--jobs 10000] [--peer-jobs 100] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline import db, jobs, stats  # noqa: E402
from pipeline.config import load_settings  # noqa: E402

STAGES = ("ingest", "extract_audio", "transcribe", "enrich", "render")
PAGES = ("pages/overview.py", "pages/jobs.py", "pages/episodes.py", "pages/review.py", "pages/new_episode.py",
         "pages/settings.py")
BUDGET_MS = 300.0


def fill(settings, count: int) -> None:
    """``count`` episodes with one job each, spread over 30 days: mostly succeeded, some failed, a few live."""
    now = time.time()
    with db.session(settings.app_db_path) as conn, db.transaction(conn):
        for n in range(count):
            created = now - (count - n) * (30 * 86400 / count)
            episode_id = f"bench{n:07d}"
            db.insert_episode(conn, episode_id, f"Episode {n} about topic {n % 97}", "path", f"/media/ep{n}.mp4",
                              created)
            db.set_episode_source(conn, episode_id, "source.mp4", 1800.0 + n % 1800, json.dumps({}), created)
            job_id = db.insert_job(conn, episode_id, 50, "{}", created)
            db.add_event(conn, job_id, None, "queued", created)
            status = "failed" if n % 17 == 0 else "queued" if n >= count - 5 else "succeeded"
            if status == "queued":
                continue
            at = created + 5
            for stage in STAGES:
                db.add_event(conn, job_id, stage, "started", at)
                at += 30
                db.add_event(conn, job_id, stage, "finished", at, seconds=30.0, media_seconds=1800.0)
                db.set_job_stage(conn, job_id, stage, 1.0, at)
            db.finish_job(conn, job_id, status, at, error="Bench failure." if status == "failed" else None,
                          error_kind="bad_input" if status == "failed" else None)
            db.add_event(conn, job_id, None, status, at)
            db.set_episode_status(conn, episode_id, "ready" if status == "succeeded" else "failed", at)


def median_ms(action, repeat: int) -> float:
    action()   # warm-up: imports, caches, SQLite page cache
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def page_ms(page: str, repeat: int) -> float:
    """Server-side render time of one dashboard page: the script run itself (``dashboard.py``, the
    navigation and the page, every read it makes), timed inside ``AppTest``'s script runner.

    AppTest's own set-up (it scans installed packages for components on every run) and its
    polling are left out: a browser session does not pay them.
    """
    from streamlit.runtime.scriptrunner.script_runner import ScriptRunner
    from streamlit.testing.v1 import AppTest

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


def measure(count: int, repeat: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as folder:
        os.environ["CLIPDESK_DATA_DIR"] = folder
        settings = load_settings()
        fill(settings, count)
        results = {
            "poll: stats.overview (Overview)": median_ms(lambda: stats.overview(settings), repeat * 4),
            "poll: jobs.list_jobs 200 rows (Jobs table)": median_ms(
                lambda: jobs.list_jobs(settings, limit=200), repeat * 4),
            "poll: jobs.list_jobs search 'topic 42'": median_ms(
                lambda: jobs.list_jobs(settings, limit=200, search="topic 42"), repeat * 4),
            "poll: jobs.get + jobs.events (job detail)": median_ms(
                lambda: (jobs.get(settings, 1), jobs.events(settings, 1)), repeat * 4),
        }
        for page in PAGES:
            results[f"page: {page}"] = page_ms(page, repeat)
        return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--peer-jobs", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    os.environ.pop("CLIPDESK_CONFIG", None)
    big = measure(args.jobs, args.repeat)
    small = measure(args.peer_jobs, args.repeat)
    print(f"{'what (median ms)':48} {args.jobs:>9,} jobs {args.peer_jobs:>7,} jobs   ratio  budget {BUDGET_MS:.0f} ms")
    for name, value in big.items():
        verdict = "" if not name.startswith("page") else ("ok" if value <= BUDGET_MS else "OVER")
        print(f"{name:48} {value:>12.1f} {small[name]:>12.1f} {value / small[name]:>7.2f}x  {verdict}")


if __name__ == "__main__":
    main()
