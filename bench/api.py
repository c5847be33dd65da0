"""HTTP API at scale: endpoint latency under 50 polling clients, and event delivery to 100 streams.

With ``--jobs`` jobs and exactly ``--events`` job events in the database (the history of
``bench/dashboard.py``: every status, retries, render fan-outs...), a real uvicorn API serves:

- One client, then ``--clients`` concurrent clients (threads, one keep-alive connection each) polling
  each every ``--interval`` seconds, then the same clients back to back (saturation), for ``--seconds``: a job's status (``GET /v1/jobs/{id}``, a random job), the job list (newest 50,
  and filtered by status), a job's events, ``/v1/stats`` and ``/metrics`` (one client in ten
  scrapes these). p50/p95 per endpoint against a 50 ms budget, next to the same pipeline call
  made in this process without HTTP (the peer: what the API adds on top).
- ``--streams`` clients on ``GET /v1/events`` while a job "runs": a writer appends that job's
  events through ``pipeline.db`` the way the runner does (``--event-rate`` a second, each in its
  own transaction) and notes when each committed; every stream notes when each event arrived.
  Delivery delay = arrival - commit, p50/p95 against a 1 s budget, next to the stream's poll
  interval (``api.event_poll_seconds``, the floor the design sets). Every stream must receive
  every event once.

    .venv/bin/python bench/api.py [--jobs 10000 --events 100000] [--clients 50 --seconds 20]
        [--streams 100 --event-rate 20 --stream-seconds 20]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from api_server import ApiServer  # noqa: E402

from pipeline import db, jobs  # noqa: E402
from pipeline.config import load_settings  # noqa: E402
from pipeline.jobs import feed  # noqa: E402
from pipeline.ops import metrics  # noqa: E402

BUDGET_MS = 50.0
DELIVERY_BUDGET_S = 1.0


def _history_module():
    """bench/dashboard.py's history writer (loaded by path: the app has a top-level dashboard.py)."""
    spec = importlib.util.spec_from_file_location("bench_history", ROOT / "bench" / "dashboard.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def poll_load(url: str, job_ids: list[int], clients: int, seconds: float, interval: float = 0.0) -> dict[str, list[float]]:
    """Each client loops over the calls an automation makes, one every ``interval`` seconds (0: back
    to back, a saturation test); returns milliseconds per endpoint."""
    timings: dict[str, list[float]] = defaultdict(list)
    errors: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def calls(n: int):
        rng = random.Random(n)
        while True:
            job_id = rng.choice(job_ids)
            yield "GET /v1/jobs/{id}", f"/v1/jobs/{job_id}"
            yield "GET /v1/jobs/{id}", f"/v1/jobs/{rng.choice(job_ids)}"
            yield "GET /v1/jobs?limit=50", "/v1/jobs?limit=50"
            yield "GET /v1/jobs?status=failed", "/v1/jobs?status=failed&limit=50"
            yield "GET /v1/jobs/{id}/events", f"/v1/jobs/{job_id}/events"
            if n % 10 == 0:
                yield "GET /v1/stats", "/v1/stats"
                yield "GET /metrics", "/metrics"

    def client(n: int):
        rng = random.Random(-n)
        next_at = time.monotonic() + rng.uniform(0, interval)   # clients not in lockstep
        with httpx.Client(base_url=url, timeout=30) as http:
            for name, path in calls(n):
                time.sleep(max(0.0, next_at - time.monotonic()))
                next_at += interval
                if time.monotonic() > deadline:
                    return
                start = time.perf_counter()
                response = http.get(path)
                elapsed = (time.perf_counter() - start) * 1000
                with lock:
                    if response.status_code != 200:
                        errors.append(f"{path}: {response.status_code}")
                    timings[name].append(elapsed)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors[:5]
    return timings


def direct_peer(settings, job_ids: list[int], repeat: int = 30) -> dict[str, list[float]]:
    """The same reads as pipeline calls in this process, one at a time (no HTTP, no contention)."""
    rng = random.Random(1)
    calls = {
        "GET /v1/jobs/{id}": lambda: jobs.get(settings, rng.choice(job_ids)),
        "GET /v1/jobs?limit=50": lambda: jobs.page(settings, limit=50),
        "GET /v1/jobs?status=failed": lambda: jobs.page(settings, status="failed", limit=50),
        "GET /v1/jobs/{id}/events": lambda: feed.after(settings, 0, job_id=rng.choice(job_ids)),
        "GET /v1/stats": lambda: metrics.stats(settings),
        "GET /metrics": lambda: metrics.snapshot(settings),
    }
    result = {}
    for name, call in calls.items():
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            call()
            times.append((time.perf_counter() - start) * 1000)
        result[name] = times
    return result


def stream_delivery(settings, url: str, streams: int, rate: float, seconds: float) -> tuple[list[float], dict]:
    """Seconds from each event's commit to its arrival at each stream; and the per-stream id lists."""
    with db.session(settings.app_db) as conn:
        job_id = conn.execute("SELECT id FROM jobs ORDER BY id DESC LIMIT 1").fetchone()[0]   # noqa: S608
    received: dict[int, list[tuple[int, float]]] = defaultdict(list)
    ready = threading.Barrier(streams + 1)
    stop = threading.Event()

    def listen(n: int):
        try:
            with httpx.Client(base_url=url, timeout=httpx.Timeout(10, read=seconds + 30)) as http, \
                    http.stream("GET", "/v1/events") as response:
                ready.wait()
                event_id = None
                for line in response.iter_lines():
                    if line.startswith("id: "):
                        event_id = int(line[4:])
                    elif line.startswith("data: ") and event_id is not None:
                        received[n].append((event_id, time.time()))
                        event_id = None
                    if stop.is_set() and len(received[n]) >= len(committed):
                        return
        except httpx.HTTPError:
            if not stop.is_set():   # the server closing the streams at the end is expected
                raise

    committed: dict[int, float] = {}
    threads = [threading.Thread(target=listen, args=(n,), daemon=True) for n in range(streams)]
    for thread in threads:
        thread.start()
    ready.wait()
    time.sleep(1.0)   # every stream has passed its first poll
    end = time.monotonic() + seconds
    kinds = ("started", "finished")
    n = 0
    while time.monotonic() < end:
        with db.session(settings.app_db) as conn:
            with db.transaction(conn):
                db.add_event(conn, job_id, "transcribe", kinds[n % 2], time.time(), message=f"bench {n}")
                event_id = db.last_event_id(conn)
            committed[event_id] = time.time()
        n += 1
        time.sleep(1 / rate)
    stop.set()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(len(received[i]) < len(committed) for i in range(streams)):
        time.sleep(0.1)
    delays = [arrived - committed[event_id] for i in range(streams) for event_id, arrived in received[i]
              if event_id in committed]
    return delays, {"committed": sorted(committed), "received": {i: [e for e, _ in received[i]] for i in received}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--interval", type=float, default=1.0,
                        help="seconds between one client's requests in the polling pass (then a back-to-back pass)")
    parser.add_argument("--streams", type=int, default=100)
    parser.add_argument("--event-rate", type=float, default=20.0, help="events a second written while streams listen")
    parser.add_argument("--stream-seconds", type=float, default=20.0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="clipdesk-bench-api-") as tmp:
        os.environ["CLIPDESK_DATA_DIR"] = str(Path(tmp) / "data")
        os.environ.pop("CLIPDESK_CONFIG", None)
        settings = load_settings()
        summary = _history_module().fill(settings, args.jobs, args.events)
        with db.session(settings.app_db) as conn:
            job_ids = [r[0] for r in conn.execute("SELECT id FROM jobs")]   # noqa: S608
        print(f"Database: {sum(summary['jobs'].values()):,} jobs,"
              f" {sum(summary['events'].values()):,} events, written in {summary['seconds']:.1f} s")
        with ApiServer(settings) as server:
            httpx.get(server.url + "/v1/jobs?limit=1")   # warm up
            peer = direct_peer(settings, job_ids)
            passes = ((1, min(args.seconds, 5.0), 0.0), (args.clients, args.seconds, args.interval),
                      (args.clients, args.seconds, 0.0))
            for clients, seconds, interval in passes:
                timings = poll_load(server.url, job_ids, clients, seconds, interval)
                total = sum(len(t) for t in timings.values())
                pace = f"each every {interval:g} s" if interval else "back to back"
                print(f"\n{clients} client(s) polling {pace} for {seconds:g} s: {total:,} requests"
                      f" ({total / seconds:,.0f}/s; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)."
                      f" Budget p95 < {BUDGET_MS:g} ms.")
                print(f"{'endpoint':<28}{'n':>7}{'p50 ms':>9}{'p95 ms':>9}  {'peer p50':>9}  {'p50/peer':>8}  budget")
                for name, values in timings.items():
                    p50, p95 = statistics.median(values), percentile(values, 0.95)
                    peer_p50 = statistics.median(peer[name])
                    print(f"{name:<28}{len(values):>7}{p50:>9.1f}{p95:>9.1f}  {peer_p50:>9.1f}"
                          f"  {p50 / peer_p50:>7.1f}x  {'ok' if p95 < BUDGET_MS else 'OVER'}")

            delays, ids = stream_delivery(settings, server.url, args.streams, args.event_rate, args.stream_seconds)
            complete = all(ids["received"].get(i) == ids["committed"] for i in range(args.streams))
            poll = settings.api.event_poll_seconds
            print(f"\n{args.streams} event streams, {len(ids['committed'])} events written at"
                  f" {args.event_rate:g}/s: {len(delays):,} deliveries; every stream got every event once, in order:"
                  f" {'yes' if complete else 'NO'}")
            if delays:
                p50, p95 = statistics.median(delays), percentile(delays, 0.95)
                print(f"delivery delay (commit -> client): p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, max"
                      f" {max(delays) * 1000:.0f} ms; peer: the poll interval {poll * 1000:.0f} ms"
                      f" (p95/poll {p95 / poll:.1f}x); budget p95 < {DELIVERY_BUDGET_S:g} s:"
                      f" {'ok' if p95 < DELIVERY_BUDGET_S else 'OVER'}")


if __name__ == "__main__":
    main()
