"""End-to-end benchmark: one long 720p episode through a real ``huey_consumer``, default settings.

The episode is the committed speech sample looped under a ``testsrc2`` 1280x720 25 fps
picture (``bench/episodes.py``; cached in the temp dir). It is enqueued through the CLI with
``--max-clips 5`` (the job option; the config default is also 5) into a consumer started
with ``-w WORKERS`` on a fresh temp data dir and the default ``config/pipeline.yaml``.

Printed, from one run: wall time from enqueue to the job's end; seconds per media hour and
times real time (target: under 6 minutes per media hour); each stage's wall time from the
job events (first 'started' to last 'finished'; the 'finished' event's own seconds beside
it) and the queue gaps between stages; the consumer's CPU use; and ETA accuracy: the job row
is polled every 0.5 s, and where progress first reaches 10%, 50% and 90% the ETA shown then is
compared with the time the job really took from there (and so is the first ETA it showed, "0%").

ETAs come from stage rates learned on this machine, so by default a short warm-up episode
runs first through the same consumer and data dir (so the model is loaded too, as in a
worker that has been up a while); its figures are reported separately
(``--warmup-minutes 0`` skips it: the main run then uses the built-in default rates).

    .venv/bin/python bench/e2e.py [--minutes 60] [--warmup-minutes 3] [--workers 1] [--keep] [--json]
    .venv/bin/python bench/e2e.py --minutes 1 --warmup-minutes 0.5      # smoke run
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import episodes  # bench/episodes.py (also puts the project root and tests/ on sys.path)
from workers import Consumer  # tests/workers.py  # noqa: I001

TARGET_SECONDS_PER_MEDIA_HOUR = 360.0


def run_episode(consumer: Consumer, source: Path, args, say) -> dict:
    """Enqueue ``source``, poll its job to the end, and collect the figures."""
    settings = consumer.settings
    cpu_before = episodes.process_cpu_seconds(consumer.pid)
    episode_id, job_id = episodes.enqueue(consumer, source, args.clips)
    say(f"  job {job_id} (episode {episode_id}) queued")
    seen = episodes.watch(settings, [job_id], args.timeout, on_sample=episodes.ticker(args.report_every, say))
    cpu = episodes.process_cpu_seconds(consumer.pid) - cpu_before
    times = episodes.job_times(settings, job_id)
    wall = times["finished_at"] - times["created_at"]
    media_seconds = times["media_seconds"]
    clips, files = episodes.rendered(consumer, episode_id)
    stages = episodes.stage_times(settings, job_id)
    for stage in stages:
        stage["per_media_hour"] = stage["wall"] * 3600 / media_seconds if media_seconds else None
        stage["share_pct"] = stage["wall"] / wall * 100 if wall else None
    return {
        "job_id": job_id, "episode_id": episode_id, "status": times["status"], "error": times["error"],
        "media_seconds": media_seconds, "clips": clips, "render_files": files,
        "wall_seconds": wall,
        "pickup_seconds": (times["started_at"] or times["finished_at"]) - times["created_at"],
        "seconds_per_media_hour": wall * 3600 / media_seconds if media_seconds else None,
        "x_real_time": media_seconds / wall if wall else None,
        "cpu_seconds": cpu, "cpu_busy_pct": cpu / (wall * episodes.machine()["cpus"]) * 100 if wall else None,
        "stages": stages,
        "stage_gaps_seconds": sum(s["gap_before"] or 0.0 for s in stages),
        "eta": episodes.eta_checks(seen.of(job_id), times["finished_at"]),
        "polls": len(seen.samples),
    }


def print_run(name: str, run: dict, say) -> None:
    say(f"\n{name}: {run['media_seconds'] / 60:.1f} min of media, job {run['job_id']} {run['status']}"
        + (f" ({run['error']})" if run["error"] else "")
        + f"; {run['clips']} clips, {run['render_files']} render files")
    num = episodes.num
    say(f"  wall {num(run['wall_seconds'])} s (pickup {num(run['pickup_seconds'])} s) = "
        f"{num(run['seconds_per_media_hour'], 60, '.2f')} min per media hour = {num(run['x_real_time'])}x real time"
        f" (target < {TARGET_SECONDS_PER_MEDIA_HOUR / 60:.0f} min); consumer CPU {num(run['cpu_seconds'], 1, '.0f')} s,"
        f" {num(run['cpu_busy_pct'], 1, '.0f')}% of the machine")
    say(episodes.table(["stage", "wall s", "event s", "s/media h", "share %", "gap before s", "clips", "clip s sum"],
                       [[s["stage"], s["wall"], s["recorded"], s["per_media_hour"], s["share_pct"], s["gap_before"],
                         s["units"] or None, s["unit_seconds"]] for s in run["stages"]]))
    say("  ETA accuracy (predicted remaining vs actual; + = predicted too long):")
    say(episodes.table(["at", "progress", "stage", "predicted s", "actual s", "error %"],
                       [[f"{c['mark'] * 100:.0f}%", None if c["progress"] is None else f"{c['progress'] * 100:.1f}%",
                         c["stage"], c["predicted"], c["actual"], c["error_pct"]] for c in run["eta"]]))


def summary_table(runs: dict) -> str:
    names = list(runs)
    stage_names = list(dict.fromkeys(s["stage"] for run in runs.values() for s in run["stages"]))

    def stage_wall(run, stage):
        return next((s["wall"] for s in run["stages"] if s["stage"] == stage), None)

    rows = [
        ["media min"] + [runs[n]["media_seconds"] / 60 for n in names],
        ["clips / files"] + [f"{runs[n]['clips']} / {runs[n]['render_files']}" for n in names],
        ["wall s"] + [runs[n]["wall_seconds"] for n in names],
        ["min per media hour"] + [episodes.num(runs[n]["seconds_per_media_hour"], 60, ".2f") for n in names],
        ["x real time"] + [runs[n]["x_real_time"] for n in names],
        ["CPU busy %"] + [runs[n]["cpu_busy_pct"] for n in names],
    ]
    rows += [[f"  {stage} s"] + [stage_wall(runs[n], stage) for n in names] for stage in stage_names]
    rows.append(["  gaps between stages s"] + [runs[n]["stage_gaps_seconds"] for n in names])
    for i, mark in enumerate(episodes.MARKS):
        rows.append([f"ETA error @{mark * 100:.0f}% %"] + [runs[n]["eta"][i]["error_pct"] for n in names])
    return episodes.table(["summary"] + names, rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0, help="length of the measured episode")
    parser.add_argument("--warmup-minutes", type=float, default=3.0, help="warm-up episode first (0 = none)")
    parser.add_argument("--workers", type=int, default=1, help="huey_consumer -w")
    parser.add_argument("--clips", type=int, default=5, help="job option max_clips")
    parser.add_argument("--config", type=Path, help="another config file (default: config/pipeline.yaml)")
    parser.add_argument("--media-dir", type=Path, default=episodes.MEDIA_CACHE, help="where episodes are cached")
    parser.add_argument("--timeout", type=float, default=4 * 3600, help="give up on a job after this many seconds")
    parser.add_argument("--report-every", type=float, default=30.0, help="seconds between progress lines")
    parser.add_argument("--keep", action="store_true", help="keep the temp data dir (printed)")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout (the rest to stderr)")
    args = parser.parse_args()

    def say(line: str = "") -> None:
        print(line, file=sys.stderr if args.json else sys.stdout, flush=True)

    started = time.perf_counter()
    main_source = episodes.episode_media(args.minutes, args.media_dir)
    warm_source = episodes.episode_media(args.warmup_minutes, args.media_dir) if args.warmup_minutes > 0 else None
    say(f"media ready in {time.perf_counter() - started:.1f} s: {main_source}")
    folder = Path(tempfile.mkdtemp(prefix="clipdesk-e2e-"))
    machine = episodes.machine()
    runs: dict[str, dict] = {}
    try:
        settings = episodes.bench_settings(folder / "data", args.config)
        say(f"data dir {settings.data_dir}; config {settings.source}; -w {args.workers}; "
            f"{machine['cpus']} CPUs, load average {machine['load_average']}")
        with episodes.running(Consumer(settings, workers=args.workers)) as consumer:
            if warm_source:
                say(f"warm-up: {args.warmup_minutes:g} min episode")
                runs["warm-up"] = run_episode(consumer, warm_source, args, say)
            say(f"main: {args.minutes:g} min episode")
            runs["main"] = run_episode(consumer, main_source, args, say)
        for name, run in runs.items():
            print_run(name, run, say)
        say("")
        say(summary_table(runs))
        say(f"load average at end {episodes.machine()['load_average']}")
        if args.json:
            print(json.dumps({"machine": machine, "workers": args.workers, "config": str(settings.source),
                              "data_dir": str(settings.data_dir) if args.keep else None, "runs": runs}, indent=1))
    finally:
        if args.keep:
            say(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    return 0 if all(run["status"] == "succeeded" for run in runs.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
