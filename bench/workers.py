"""Worker scaling benchmark: N queued episodes through one consumer with -w 1, then with -w 2.

The same media file (the speech sample looped under a ``testsrc2`` 1280x720 25 fps picture,
``bench/episodes.py``) is enqueued ``--episodes`` times with ``Consumer.enqueue_many``
*before* the consumer starts, so every worker has work from its first poll; each run gets
a fresh temp data dir and the default ``config/pipeline.yaml`` (5 clips per episode is its
``enrich.max_clips``), so both runs start without learned stage rates and load the model
themselves. Wall time runs from starting the consumer to the last job's end.

Printed, from one run of each: wall time, media hours per wall hour, the consumer's CPU use
(of all cores), the throughput ratio wall(-w 1) / wall(-w 2) (target: at least 1.6x on 2 cores),
and the overlap seen while polling every 0.5 s: most jobs running at once, the share of the
time two or more ran, which stages ran side by side, and most clips rendering (the render
stage fans out one unit per clip) and ffmpeg processes at once.

    .venv/bin/python bench/workers.py [--episodes 4] [--minutes 10] [--keep] [--json]
    .venv/bin/python bench/workers.py --episodes 2 --minutes 1      # smoke run
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import episodes  # bench/episodes.py (also puts the project root and tests/ on sys.path)
from workers import Consumer  # tests/workers.py  # noqa: I001

TARGET_RATIO = 1.6


def run_queue(folder: Path, source: Path, workers: int, args, say) -> dict:
    """Enqueue ``args.episodes`` copies of ``source``, then start a consumer with ``-w workers``."""
    settings = episodes.bench_settings(folder / "data", args.config)
    consumer = Consumer(settings, workers=workers)
    job_ids = consumer.enqueue_many([source] * args.episodes)
    say(f"-w {workers}: jobs {job_ids} queued in {settings.data_dir}")
    started = time.time()
    with episodes.running(consumer):
        seen = episodes.watch(settings, job_ids, args.timeout, on_sample=episodes.ticker(args.report_every, say))
        cpu = episodes.process_cpu_seconds(consumer.pid)
    times = [episodes.job_times(settings, job_id) for job_id in job_ids]
    wall = max(t["finished_at"] for t in times) - started
    media_seconds = sum(t["media_seconds"] for t in times)
    return {
        "workers": workers, "job_ids": job_ids, "statuses": dict(Counter(t["status"] for t in times)),
        "errors": sorted({t["error"] for t in times if t["error"]}),
        "media_seconds": media_seconds, "wall_seconds": wall,
        "first_pickup_seconds": min((t["started_at"] or t["finished_at"]) for t in times) - started,
        "media_hours_per_wall_hour": media_seconds / wall if wall else None,
        "cpu_seconds": cpu, "cpu_busy_pct": cpu / (wall * episodes.machine()["cpus"]) * 100 if wall else None,
        "job_wall_seconds": [t["finished_at"] - t["started_at"] if t["started_at"] else None for t in times],
        "queued_eta": queued_eta(seen, job_ids, times),
        **overlap(seen),
    }


def overlap(seen: episodes.Watch) -> dict:
    """What ran side by side, weighting each poll by the time until the next one."""
    samples = seen.samples
    weights = [b.at - a.at for a, b in zip(samples, samples[1:], strict=False)] + [0.0]
    total = sum(weights) or 1.0
    together = Counter()
    for sample, weight in zip(samples, weights, strict=True):
        if sample.running >= 2:
            together["+".join(sample.running_stages)] += weight
    return {
        "max_running_jobs": max((s.running for s in samples), default=0),
        "two_or_more_running_pct": sum(w for s, w in zip(samples, weights, strict=True) if s.running >= 2)
        / total * 100,
        "side_by_side_seconds": {stages: round(seconds, 1) for stages, seconds in together.most_common()},
        "max_render_units": max((s.render_units for s in samples), default=0),
        "max_ffmpeg": max((s.ffmpeg for s in samples), default=0),
        "polls": len(samples),
    }


def queued_eta(seen: episodes.Watch, job_ids: list[int], times: list[dict]) -> list[dict]:
    """Each job's ETA from the first poll at which a job runs (the consumer is live, so the
    forecast knows its workers; a queued job's ETA includes its wait) against the time it
    really took from then."""
    first = next((s.at for s in seen.samples if s.running), None)
    if first is None:
        return []
    result = []
    for job_id, t in zip(job_ids, times, strict=True):
        hit = next(((at, job) for at, job in seen.of(job_id)
                    if at >= first and job.get("eta_seconds") is not None), None)
        if hit:
            at, job = hit
            actual = t["finished_at"] - at
            result.append({"job_id": job_id, "status": job["status"], "stage": job["stage"],
                           "starts_in": job.get("starts_in_seconds"), "predicted": job["eta_seconds"],
                           "actual": actual, "error_pct": (job["eta_seconds"] - actual) / actual * 100})
    return result


def print_run(run: dict, say) -> None:
    num = episodes.num
    say(f"\n-w {run['workers']}: {run['media_seconds'] / 3600:.2f} media hours, jobs {run['statuses']}"
        + (f" ({'; '.join(run['errors'])})" if run["errors"] else ""))
    say(f"  wall {num(run['wall_seconds'])} s (first pickup {num(run['first_pickup_seconds'])} s), "
        f"{num(run['media_hours_per_wall_hour'], 1, '.2f')} media hours per wall hour, consumer CPU "
        f"{num(run['cpu_seconds'], 1, '.0f')} s = {num(run['cpu_busy_pct'], 1, '.0f')}% of the machine")
    say(f"  per job wall s: {', '.join(num(s, 1, '.0f') for s in run['job_wall_seconds'])}")
    say(f"  overlap: up to {run['max_running_jobs']} jobs running, 2+ running {run['two_or_more_running_pct']:.0f}%"
        f" of the time, up to {run['max_render_units']} clips rendering and {run['max_ffmpeg']} ffmpeg at once")
    for stages, seconds in run["side_by_side_seconds"].items():
        say(f"    {stages}: {seconds:.0f} s")
    if run["queued_eta"]:
        say("  ETA when the first job started running vs actual (queued jobs: forecast incl. the wait):")
        say(episodes.table(["job", "status", "stage", "starts in s", "predicted s", "actual s", "error %"],
                           [[e["job_id"], e["status"], e["stage"], e["starts_in"], e["predicted"], e["actual"],
                             e["error_pct"]] for e in run["queued_eta"]]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=4)
    parser.add_argument("--minutes", type=float, default=10.0, help="length of each episode")
    parser.add_argument("--config", type=Path, help="another config file (default: config/pipeline.yaml)")
    parser.add_argument("--media-dir", type=Path, default=episodes.MEDIA_CACHE, help="where episodes are cached")
    parser.add_argument("--timeout", type=float, default=4 * 3600, help="give up on a run after this many seconds")
    parser.add_argument("--report-every", type=float, default=30.0, help="seconds between progress lines")
    parser.add_argument("--keep", action="store_true", help="keep the temp data dirs (printed)")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout (the rest to stderr)")
    args = parser.parse_args()

    def say(line: str = "") -> None:
        print(line, file=sys.stderr if args.json else sys.stdout, flush=True)

    source = episodes.episode_media(args.minutes, args.media_dir)
    folder = Path(tempfile.mkdtemp(prefix="clipdesk-workers-"))
    machine = episodes.machine()
    say(f"{args.episodes} x {args.minutes:g} min episodes ({source}); {machine['cpus']} CPUs, "
        f"load average {machine['load_average']}")
    runs = []
    try:
        for workers in (1, 2):
            runs.append(run_queue(folder / f"w{workers}", source, workers, args, say))
        for run in runs:
            print_run(run, say)
        ratio = runs[0]["wall_seconds"] / runs[1]["wall_seconds"]
        say("")
        say(episodes.table(["run", "wall s", "media h / wall h", "CPU busy %", "max jobs", "2+ running %",
                            "max ffmpeg"],
                           [[f"-w {r['workers']}", r["wall_seconds"], episodes.num(r["media_hours_per_wall_hour"],
                                                                                     1, ".2f"),
                             r["cpu_busy_pct"], r["max_running_jobs"], r["two_or_more_running_pct"], r["max_ffmpeg"]]
                            for r in runs]))
        say(f"throughput ratio wall(-w 1) / wall(-w 2) = {ratio:.2f}x (target >= {TARGET_RATIO}x on 2 cores); "
            f"load average at end {episodes.machine()['load_average']}")
        if args.json:
            print(json.dumps({"machine": machine, "episodes": args.episodes, "minutes": args.minutes,
                              "ratio": ratio, "runs": runs}, indent=1))
    finally:
        if args.keep:
            say(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    return 0 if all(set(run["statuses"]) == {"succeeded"} for run in runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
