"""Cluster benchmark (issue 16): one and two consumers on one PostgreSQL database, one on SQLite.

The same ``--episodes`` short episodes (the committed espeak-ng speech sample, ``tests/mediagen.SPEECH``,
cut to 20-40 s under a 640x360 ``testsrc2`` picture; cached in the temp dir) are enqueued before any
consumer starts, then processed by

- (a) 1 consumer on PostgreSQL, (b) 2 consumers on PostgreSQL with different ``CLIPDESK_HOST_ID``s,
- (c) 1 consumer on SQLite,

each consumer pinned to one CPU core (``taskset -c N``) with ``-w 1``, one transcribe thread and one
ffmpeg thread (``transcribe.threads`` / ``render.threads`` in the bench config), so this machine stands
in for two one-core workers. Renders are always four 1080p variants; to keep the three runs within
minutes the bench config asks for up to two clips of 5-10 s per episode and x264's ultrafast preset. Every run gets a fresh data dir (and a fresh database on one throwaway
PostgreSQL server, ``tests/pg_server.py``). Wall time runs from starting the consumers to the last
job's end. Printed: each run's wall time, the throughput ratio wall(a) / wall(b) (target >= 1.8x),
and PostgreSQL's single-consumer overhead wall(a) / wall(c) - 1 (target within 5%).

During (b) the database's own counters (``pg_stat_user_tables`` rows inserted/updated/deleted,
``pg_stat_database`` commits, ``pg_stat_activity`` sessions) give the writes a running worker makes
per second. Then, on fresh databases:

- claim latency: ``--queued`` (10,000) render units queued as ``render_clip`` tasks on the worker's
  own Huey (``PostgresHuey``; ``SqliteHuey`` as the peer), and ``--claims`` claims each timed as the
  runner does them: ``huey.dequeue()`` + a new session + ``db.transaction`` (get_unit, get_job,
  ``db.claim_unit``, get_clip). p50/p95/p99 (target p95 < 20 ms);
- write throughput with N concurrent writers (threads, one connection each) of a progress UPDATE:
  through ``db.transaction`` (the one global write lock, an advisory lock on PostgreSQL), as a
  single autocommit statement (no lock), and with a new session per write (as the reporter does);

and the arithmetic for 10 and 50 worker machines from those figures.

    .venv/bin/python bench/cluster.py [--episodes 8] [--queued 10000] [--claims 500] [--save F.json] [--json]
    .venv/bin/python bench/cluster.py --report F.json          # print a saved run again
    .venv/bin/python bench/cluster.py --episodes 2 --queued 1000 --claims 100      # smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import episodes  # bench/episodes.py (also puts the project root and tests/ on sys.path)
import ffmpeg
import mediagen  # tests/mediagen.py
import pg_server  # tests/pg_server.py
import psycopg
import yaml
from workers import Consumer  # tests/workers.py  # noqa: I001

from pipeline import db, jobs, media
from pipeline.ops.serve import consumer_command

TARGET_RATIO = 1.8
TARGET_OVERHEAD_PCT = 5.0
TARGET_CLAIM_P95_MS = 20.0
WRITERS = (1, 4, 16)
WRITE_SECONDS = 2.0
# One core and one thread per consumer. Renders are always 1080p, 4 variants: short clips (up to two of
# 5-10 s per episode) and the ultrafast preset keep the three runs within minutes on a shared machine;
# the rest is the default config (config/pipeline.yaml).
BENCH_CONFIG = {"transcribe": {"threads": 1}, "render": {"threads": 1, "preset": "ultrafast"},
                "enrich": {"max_clips": 2, "min_clips": 1, "min_clip_seconds": 5, "max_clip_seconds": 10}}


# --- media ----------------------------------------------------------------------------------

def episode_sources(count: int, cache: Path) -> list[Path]:
    """``count`` speech episodes from 20 s to 40 s (the speech sample is ~40 s), 640x360, 15 fps."""
    cache.mkdir(parents=True, exist_ok=True)
    speech = media.probe(mediagen.SPEECH).duration
    sources = []
    for n in range(count):
        seconds = round(min(speech, 20 + (speech - 20) * n / max(count - 1, 1)), 1)
        path = cache / f"cluster-speech-{seconds:g}s.mp4"
        if not path.exists():
            partial = path.with_suffix(".partial.mp4")
            video = ffmpeg.input("testsrc2=size=640x360:rate=15", f="lavfi", t=seconds)
            audio = ffmpeg.input(str(mediagen.SPEECH), t=seconds)
            media.run(ffmpeg.output(video, audio, str(partial), vcodec="libx264", preset="ultrafast",
                                    pix_fmt="yuv420p", acodec="aac", shortest=None), seconds)
            partial.rename(path)
        sources.append(path)
    return sources


# --- consumers --------------------------------------------------------------------------------

class PinnedConsumer(Consumer):
    """A ``huey_consumer -w 1`` on one CPU core (``taskset`` execs it: the pid stays the consumer's)
    with its own host id and log."""

    def __init__(self, settings, cpu: int, host_id: str):
        super().__init__(settings, workers=1)
        self.cpu, self.host_id = cpu, host_id
        self.env["CLIPDESK_HOST_ID"] = host_id
        self.log_path = Path(settings.data_dir).parent / f"consumer-{host_id}.log"

    def start(self) -> PinnedConsumer:
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        command = [shutil.which("taskset") or "taskset", "-c", str(self.cpu), *consumer_command(self.settings, 1)]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(command, cwd=episodes.ROOT, env=self.env, stdout=log,
                                            stderr=subprocess.STDOUT)
        return self


def use_database(url: str | None) -> None:
    """Point this process (and what it starts) at PostgreSQL ``url``, or at SQLite when None."""
    if url:
        os.environ["CLIPDESK_DATABASE_URL"] = url
    else:
        os.environ.pop("CLIPDESK_DATABASE_URL", None)


def run_cluster(name: str, folder: Path, sources: list[Path], cpus: list[int], url: str | None, args, say) -> dict:
    """Enqueue every source, start one pinned consumer per cpu, wait for every job to end."""
    use_database(url)
    settings = episodes.bench_settings(folder / name / "data", folder / "pipeline.yaml")
    consumers = [PinnedConsumer(settings, cpu, f"bench-{name}-{n}") for n, cpu in enumerate(cpus)]
    job_ids = consumers[0].enqueue_many(sources)
    load_before = os.getloadavg()[0]
    say(f"({name}) {len(cpus)} consumer(s) on cpu {cpus}, {'PostgreSQL' if url else 'SQLite'}: jobs {job_ids}")
    # The bench polls on two sessions held open all along (so it adds no connections), and its own
    # commits (one per statement) are taken off the counts.
    poll = db.connect(settings.app_db)
    monitor = psycopg.connect(url, autocommit=True) if url else None
    before = pg_counters(url) if url else None
    sessions, polls, finished = [], 0, False
    started = time.time()
    for consumer in consumers:
        consumer.start()
    try:
        last_line = 0.0
        while True:
            rows = [db.get_job(poll, job_id) for job_id in job_ids]
            polls += 1
            if monitor:
                sessions.append(pg_sessions(monitor))
            done = sum(row["status"] in jobs.FINAL_STATUSES for row in rows)
            if done == len(rows):
                break
            if time.time() - started > args.timeout:
                raise TimeoutError(f"({name}) jobs not finished after {args.timeout:.0f} s")
            if time.time() - last_line >= args.report_every:
                last_line = time.time()
                say(f"  [{time.strftime('%H:%M:%S')}] {done}/{len(rows)} done, load {os.getloadavg()[0]:.1f}")
            time.sleep(1.0)
        ended = time.time()
        time.sleep(1.5)   # PostgreSQL flushes a backend's table counters at most once a second
        after = pg_counters(url) if url else None
        finished = True
    finally:
        for consumer in consumers:   # SIGTERM when interrupted: running units go back at once
            try:
                consumer.stop(signal.SIGINT if finished else signal.SIGTERM)
            except BaseException:
                consumer.kill()   # never leave a consumer behind (a second Ctrl-C, a stop that hangs)
                raise
        poll.close()
        if monitor:
            monitor.close()
    times = [episodes.job_times(settings, job_id) for job_id in job_ids]
    wall = max(t["finished_at"] for t in times) - started
    clips = files = 0
    for t in times:
        c, f = episodes.rendered(consumers[0], t["episode_id"])
        clips, files = clips + c, files + f
    run = {"name": name, "backend": "postgresql" if url else "sqlite", "consumers": len(cpus), "cpus": cpus,
           "statuses": {s: sum(t["status"] == s for t in times) for s in {t["status"] for t in times}},
           "errors": sorted({t["error"] for t in times if t["error"]}),
           "media_seconds": sum(t["media_seconds"] for t in times), "wall_seconds": wall,
           "clips": clips, "render_files": files, "load_before": load_before, "load_after": os.getloadavg()[0],
           "work_by_consumer": work_by_consumer(consumers), "stages": stage_sums(settings, job_ids)}
    if url:
        after["commits"] -= polls * (len(job_ids) + 1)
        run["writes"] = write_rates(before, after, ended - started, len(cpus))
        run["sessions_max"] = max(sessions, default=0)
        run["sessions_mean"] = statistics.fmean(sessions) if sessions else 0
    return run


def stage_sums(settings, job_ids: list[int]) -> dict[str, float]:
    """Seconds per stage summed over the jobs (first 'started' to last 'finished' event), and the
    waits between a job's stages: where a backend's overhead sits."""
    sums: dict[str, float] = {}
    for job_id in job_ids:
        for stage in episodes.stage_times(settings, job_id):
            sums[stage["stage"]] = sums.get(stage["stage"], 0.0) + stage["wall"]
            sums["(gaps)"] = sums.get("(gaps)", 0.0) + (stage["gap_before"] or 0.0)
    return sums


def work_by_consumer(consumers: list[PinnedConsumer]) -> dict[str, int]:
    """Units (stages and clips) each consumer ran, from its Huey log: both must have worked."""
    return {c.host_id: len(re.findall(r"Executing queue_worker\.(?:process_job|render_clip)", c.log()))
            for c in consumers}


# --- PostgreSQL's own counters (monitoring views; the app's SQL stays in pipeline/db) ----------

def pg_counters(url: str) -> dict:
    with psycopg.connect(url, autocommit=True) as conn:
        tables = {name: (ins, upd, dele) for name, ins, upd, dele in conn.execute(
            "SELECT relname, n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_user_tables").fetchall()}
        commits, sessions = conn.execute(
            "SELECT xact_commit, sessions FROM pg_stat_database WHERE datname = current_database()").fetchone()
    return {"tables": tables, "commits": commits, "sessions": sessions}


def pg_sessions(monitor) -> int:
    """Sessions open on the database, besides the bench's two."""
    return monitor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()").fetchone()[0] - 2


def write_rates(before: dict, after: dict, seconds: float, consumers: int) -> dict:
    """Rows written per second, by table and in total, and commits per second, over ``seconds``."""
    by_table = {}
    for name, now in after["tables"].items():
        then = before["tables"].get(name, (0, 0, 0))
        delta = [a - b for a, b in zip(now, then, strict=True)]
        if any(delta):
            by_table[name] = {"insert": delta[0] / seconds, "update": delta[1] / seconds, "delete": delta[2] / seconds}
    rows = sum(sum(v.values()) for v in by_table.values())
    return {"seconds": seconds, "by_table": by_table, "rows_per_second": rows,
            "rows_per_second_per_consumer": rows / consumers,
            "commits_per_second": (after["commits"] - before["commits"]) / seconds,
            "commits_per_second_per_consumer": (after["commits"] - before["commits"]) / seconds / consumers,
            "new_sessions_per_second": (after["sessions"] - before["sessions"]) / seconds}


# --- claim latency (a child process per backend: queue_worker reads its settings at import) --------

def claims_child(queued: int, claims: int) -> None:
    """Queue ``queued`` render units as render_clip tasks, time ``claims`` claims; print JSON."""
    import queue_worker
    settings = queue_worker.settings
    now = time.time()
    started = time.perf_counter()
    with db.session(settings.app_db) as conn, db.transaction(conn):
        db.insert_episode(conn, "bench-claims", "claim latency", "file", "/dev/null", now)
        job_id = db.insert_job(conn, "bench-claims", jobs.PRIORITY_INTERACTIVE, "{}", now)
        db.replace_clips(conn, "bench-claims", [{"id": f"bench-clip-{n}", "start": 0.0, "end": 20.0, "score": 1.0,
                                                 "title": f"clip {n}", "reason": "bench"} for n in range(queued)], now)
        unit_ids = db.replace_units(conn, job_id, [(f"bench-clip-{n}", 20.0) for n in range(queued)],
                                    jobs.PRIORITY_INTERACTIVE, now)
    rows_seconds = time.perf_counter() - started
    started = time.perf_counter()
    for unit_id in unit_ids:
        queue_worker.QUEUE.render_unit(unit_id, jobs.PRIORITY_INTERACTIVE)
    enqueue_seconds = time.perf_counter() - started
    pending = queue_worker.huey.pending_count()
    dequeue_ms, connect_ms, claim_ms, total_ms = [], [], [], []
    worker = "bench-claimer:1"
    for _ in range(claims):
        t0 = time.perf_counter()
        task = queue_worker.huey.dequeue()
        t1 = time.perf_counter()
        unit_id = task.args[0]
        conn = db.connect(settings.app_db)   # db.session, as the runner's claim opens it, split in two
        try:
            t2 = time.perf_counter()
            with db.transaction(conn):
                unit = db.get_unit(conn, unit_id)
                db.get_job(conn, unit["job_id"])
                if not db.claim_unit(conn, unit_id, worker, time.time()):
                    raise RuntimeError(f"unit {unit_id} could not be claimed")
                db.get_clip(conn, unit["clip_id"])
        finally:
            conn.close()
        t3 = time.perf_counter()
        dequeue_ms.append((t1 - t0) * 1000)
        connect_ms.append((t2 - t1) * 1000)
        claim_ms.append((t3 - t2) * 1000)
        total_ms.append((t3 - t0) * 1000)
    print(json.dumps({"queued": pending, "rows_seconds": rows_seconds, "enqueue_per_second": queued / enqueue_seconds,
                      "claims": claims, "dequeue_ms": percentiles(dequeue_ms),
                      "connect_ms": percentiles(connect_ms), "claim_ms": percentiles(claim_ms),
                      "total_ms": percentiles(total_ms)}))


def percentiles(values: list[float]) -> dict:
    ordered = sorted(values)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]   # noqa: E731
    return {"p50": pick(0.50), "p95": pick(0.95), "p99": pick(0.99), "max": ordered[-1],
            "mean": statistics.fmean(ordered)}


def claim_latency(folder: Path, url: str | None, args) -> dict:
    env = dict(os.environ, CLIPDESK_DATA_DIR=str(folder / "data"), CLIPDESK_CONFIG=str(folder.parent / "pipeline.yaml"))
    env.pop("CLIPDESK_DATABASE_URL", None)
    if url:
        env["CLIPDESK_DATABASE_URL"] = url
    out = subprocess.run([sys.executable, __file__, "--claims-child", str(args.queued), str(args.claims)],
                         cwd=episodes.ROOT, env=env, capture_output=True, text=True, timeout=1800)
    if out.returncode != 0:
        raise RuntimeError(f"claim latency child failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- write throughput -------------------------------------------------------------------------

def write_throughput(target, writers: int, mode: str, seconds: float = WRITE_SECONDS) -> float:
    """Progress UPDATEs per second from ``writers`` threads, each on its own render unit row.

    mode: 'transaction' (db.transaction: the global write lock), 'autocommit' (the statement alone),
    'session' (a new connection per write, then the statement alone, as JobReporter.write does)."""
    now = time.time()
    with db.session(target) as conn, db.transaction(conn):
        episode = f"bench-writes-{mode}-{writers}"
        db.insert_episode(conn, episode, "write throughput", "file", "/dev/null", now)
        job_id = db.insert_job(conn, episode, jobs.PRIORITY_INTERACTIVE, "{}", now)
        db.replace_clips(conn, episode, [{"id": f"{episode}-{n}", "start": 0.0, "end": 20.0, "score": 1.0,
                                          "title": "w", "reason": "bench"} for n in range(writers)], now)
        unit_ids = db.replace_units(conn, job_id, [(f"{episode}-{n}", 20.0) for n in range(writers)],
                                    jobs.PRIORITY_INTERACTIVE, now)
    counts = [0] * writers
    begin = threading.Barrier(writers + 1)
    stop = threading.Event()

    def writer(n: int) -> None:
        conn = None if mode == "session" else db.connect(target)
        begin.wait()
        while not stop.is_set():
            if mode == "session":
                with db.session(target) as own:
                    db.set_unit_progress(own, unit_ids[n], 0.5, time.time())
            elif mode == "transaction":
                with db.transaction(conn):
                    db.set_unit_progress(conn, unit_ids[n], 0.5, time.time())
            else:
                db.set_unit_progress(conn, unit_ids[n], 0.5, time.time())
            counts[n] += 1
        if conn is not None:
            conn.close()

    threads = [threading.Thread(target=writer, args=(n,), daemon=True) for n in range(writers)]
    for thread in threads:
        thread.start()
    begin.wait()
    started = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    return sum(counts) / (time.perf_counter() - started)


def write_table(target) -> dict:
    return {mode: {writers: write_throughput(target, writers, mode) for writers in WRITERS}
            for mode in ("transaction", "autocommit", "session")}


# --- printing ---------------------------------------------------------------------------------

def print_run(run: dict, say) -> None:
    say(f"\n({run['name']}) {run['consumers']} consumer(s), {run['backend']}: {run['media_seconds']:.0f} s of media,"
        f" jobs {run['statuses']}" + (f" ({'; '.join(run['errors'])})" if run["errors"] else "")
        + f"; {run['clips']} clips, {run['render_files']} render files; wall {run['wall_seconds']:.1f} s;"
        f" load {run['load_before']:.1f} -> {run['load_after']:.1f}; units run by consumer"
        f" {run.get('work_by_consumer', run.get('work_by_host'))}")
    if run.get("stages"):
        say("  seconds summed over the jobs: " + ", ".join(f"{k} {v:.1f}" for k, v in run["stages"].items()))
    if "writes" in run:
        w = run["writes"]
        say(f"  database writes during the run ({w['seconds']:.0f} s): {w['rows_per_second']:.1f} rows/s"
            f" = {w['rows_per_second_per_consumer']:.1f} per consumer; {w['commits_per_second']:.1f} commits/s"
            f" (reads included: {w['commits_per_second_per_consumer']:.1f} per consumer);"
            f" new sessions {w['new_sessions_per_second']:.1f}/s;"
            f" sessions open: mean {run['sessions_mean']:.1f}, max {run['sessions_max']}")
        say(episodes.table(["table", "insert/s", "update/s", "delete/s"],
                           [[name, v["insert"], v["update"], v["delete"]]
                            for name, v in sorted(w["by_table"].items(), key=lambda kv: -sum(kv[1].values()))]))


def scaling(writes_per_worker: float, commits_per_worker: float, sessions_per_worker: float,
            capacity: float, max_connections: int, machines=(10, 50)) -> list[str]:
    lines = []
    for n in machines:
        demand = writes_per_worker * n
        lines.append(f"  {n} worker machines (one -w 1 consumer each): {writes_per_worker:.1f} rows/s x {n}"
                     f" = {demand:.0f} rows/s = {demand / capacity * 100:.1f}% of the {capacity:.0f}/s the global"
                     f" write lock passed; commits (reads too) {commits_per_worker * n:.0f}/s;"
                     f" sessions ~{sessions_per_worker * n:.0f} of max_connections {max_connections}")
    lines.append(f"  the write lock is saturated at ~{capacity / writes_per_worker:.0f} such workers;"
                 f" max_connections at ~{max_connections / sessions_per_worker:.0f}")
    return lines


def report(result: dict, say) -> None:
    """Print the figures of a run (also from a saved ``--save`` file: ``--report FILE``)."""
    runs, claims, writes = result.get("runs", {}), result.get("claims", {}), result.get("writes", {})
    say(f"\n{result['date']}, {result['machine']['cpus']} CPUs, PostgreSQL {result.get('postgresql', '?')},"
        f" {result['episodes']} episodes")
    for run in runs.values():
        print_run(run, say)
    say("")
    if runs:
        say(episodes.table(["run", "backend", "consumers", "wall s", "media s / wall s", "clips", "load before"],
                           [[f"({r['name']})", r["backend"], r["consumers"], r["wall_seconds"],
                             f"{r['media_seconds'] / r['wall_seconds']:.2f}", r["clips"], r["load_before"]]
                            for r in runs.values()]))
    if {"a", "b"} <= set(runs):
        ratio = runs["a"]["wall_seconds"] / runs["b"]["wall_seconds"]
        say(f"throughput ratio 2 vs 1 consumers on PostgreSQL = wall(a) / wall(b) = {ratio:.2f}x"
            f" (target >= {TARGET_RATIO}x)")
    if {"a", "c"} <= set(runs):
        overhead = (runs["a"]["wall_seconds"] / runs["c"]["wall_seconds"] - 1) * 100
        say(f"PostgreSQL vs SQLite, one consumer = wall(a) / wall(c) - 1 = {overhead:+.1f}%"
            f" (target within {TARGET_OVERHEAD_PCT:.0f}%)")
    for backend, figures in claims.items():
        t, d, co, cl = (figures[k] for k in ("total_ms", "dequeue_ms", "connect_ms", "claim_ms"))
        say(f"claim latency, {backend}, {figures['queued']} queued, {figures['claims']} claims: p50 {t['p50']:.1f} ms,"
            f" p95 {t['p95']:.1f} ms, p99 {t['p99']:.1f} ms, max {t['max']:.1f} ms"
            f" (dequeue p50 {d['p50']:.1f} / p95 {d['p95']:.1f} ms; new session p50 {co['p50']:.1f} / p95"
            f" {co['p95']:.1f} ms; claim transaction p50 {cl['p50']:.1f} / p95 {cl['p95']:.1f} ms);"
            f" enqueue {figures['enqueue_per_second']:.0f} tasks/s"
            + (f" (target p95 < {TARGET_CLAIM_P95_MS:.0f} ms)" if backend == "postgresql" else ""))
    if writes:
        say("progress UPDATEs per second with N concurrent writers (threads, one row each):")
        counts = list(next(iter(writes.values()))["transaction"])
        say(episodes.table(["backend / mode"] + [f"N={n}" for n in counts],
                           [[f"{backend} {mode}"] + [rates[n] for n in counts]
                            for backend, table in writes.items() for mode, rates in table.items()]))
    if "b" in runs and "writes" in runs["b"] and "postgresql" in writes:
        w = runs["b"]["writes"]
        capacity = max(writes["postgresql"]["transaction"].values())
        say("arithmetic (rows written per consumer as measured in (b); capacity = the best"
            " db.transaction rate above):")
        for line in scaling(w["rows_per_second_per_consumer"], w["commits_per_second_per_consumer"],
                            runs["b"]["sessions_mean"] / runs["b"]["consumers"], capacity,
                            result["max_connections"]):
            say(line)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=8)
    parser.add_argument("--queued", type=int, default=10_000, help="render units queued for the claim latency")
    parser.add_argument("--claims", type=int, default=500, help="claims timed")
    parser.add_argument("--media-dir", type=Path, default=episodes.MEDIA_CACHE)
    parser.add_argument("--timeout", type=float, default=1800.0, help="give up on a run after this many seconds")
    parser.add_argument("--report-every", type=float, default=30.0)
    parser.add_argument("--runs", default="abc", help="which of the runs (a) (b) (c) to make, in this order")
    parser.add_argument("--skip-runs", action="store_true", help="only the claim latency and write throughput")
    parser.add_argument("--skip-claims", action="store_true", help="only the runs")
    parser.add_argument("--save", type=Path, help="write the figures as JSON here after each phase")
    parser.add_argument("--report", type=Path, help="only print the figures a --save file holds")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (printed)")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout (the rest to stderr)")
    parser.add_argument("--claims-child", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.claims_child:
        claims_child(*args.claims_child)
        return 0

    def say(line: str = "") -> None:
        print(line, file=sys.stderr if args.json else sys.stdout, flush=True)

    if args.report:
        report(json.loads(args.report.read_text(encoding="utf-8"), object_hook=_int_keys), say)
        return 0
    if os.cpu_count() < 2:
        say("needs 2 CPU cores (one per consumer)")
        return 2
    bench_started = time.perf_counter()
    sources = episode_sources(args.episodes, args.media_dir)
    folder = Path(tempfile.mkdtemp(prefix="clipdesk-cluster-"))
    (folder / "pipeline.yaml").write_text(yaml.safe_dump(BENCH_CONFIG), encoding="utf-8")
    result: dict = {"machine": episodes.machine(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                    "episodes": args.episodes, "runs": {}}

    def save() -> None:
        if args.save:
            args.save.write_text(json.dumps(result, indent=1, default=str), encoding="utf-8")

    server = pg_server.PostgresServer()
    try:
        server.start()
        with psycopg.connect(server.url, autocommit=True) as conn:
            result["postgresql"] = conn.execute("SHOW server_version").fetchone()[0]
            result["max_connections"] = int(conn.execute("SHOW max_connections").fetchone()[0])
        say(f"{args.episodes} episodes ready; PostgreSQL {result['postgresql']} on {server.url};"
            f" {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; temp {folder}")
        plans = {"a": ([0], True), "b": ([0, 1], True), "c": ([0], False)}
        for name in ("" if args.skip_runs else args.runs):
            cpus, postgres = plans[name]
            url = server.create_database(f"bench_{name}") if postgres else None
            key = name if name not in result["runs"] else f"{name}{len(result['runs'])}"   # --runs aca: a, c, a2
            result["runs"][key] = run_cluster(key, folder, sources, cpus, url, args, say)
            save()
        if args.skip_claims:
            report(result, say)
            return 0 if all(set(run["statuses"]) == {"succeeded"} for run in result["runs"].values()) else 1
        use_database(None)
        say("claim latency ...")
        result["claims"] = {}
        for backend, url in (("postgresql", server.create_database("bench_claims")), ("sqlite", None)):
            result["claims"][backend] = claim_latency(folder / f"claims-{backend}", url, args)
            save()
        say("write throughput ...")
        result["writes"] = {"postgresql": write_table(server.create_database("bench_writes")),
                            "sqlite": write_table(folder / "writes" / "clipdesk.db")}
        result["load_at_end"] = os.getloadavg()[0]
        result["bench_seconds"] = time.perf_counter() - bench_started
        save()
        report(result, say)
        say(f"bench took {result['bench_seconds']:.0f} s; load average at end {result['load_at_end']:.2f}")
        if args.json:
            print(json.dumps(result, indent=1, default=str))
    finally:
        server.close()
        if args.keep:
            say(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    return 0 if all(set(run["statuses"]) == {"succeeded"} for run in result["runs"].values()) else 1


def _int_keys(mapping: dict) -> dict:
    """JSON turned the writer counts into strings; turn them back."""
    return {int(k) if isinstance(k, str) and k.isdigit() else k: v for k, v in mapping.items()}


if __name__ == "__main__":
    raise SystemExit(main())
