"""``python -m pipeline``: the command-line shell over the pipeline.

Commands that put work on the queue import ``queue_worker`` (the Huey instance) lazily:
like the dashboard, the CLI is a shell; the domain modules never import Huey.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from pipeline import episodes, jobs, runner
from pipeline.config import load_settings
from pipeline.errors import ConfigError, PipelineError


def _dispatch(job_id: int, priority: int) -> str:
    import queue_worker  # noqa: PLC0415 - the Huey instance; only needed to enqueue
    return queue_worker.dispatch(job_id, priority)


def _print(args, data, text: str) -> None:
    print(json.dumps(data, indent=None if args.json else 2) if args.json else text)


def _job_line(job: dict) -> str:
    eta = f" eta {job['eta_seconds']:.0f}s" if job.get("eta_seconds") is not None else ""
    error = f" - {job['error']}" if job.get("error") else ""
    return (f"job {job['job_id']:>5}  {job['status']:<10} {job['stage'] or '-':<14} "
            f"{job['progress'] * 100:5.1f}%{eta}  episode {job['episode_id']}{error}")


def _episode_text(summary: dict) -> str:
    lines = [f"episode {summary['episode_id']}: {summary['title'] or '(untitled)'}",
             f"  status {summary['status']}, duration {summary['duration'] or 0:.1f}s"]
    for path in summary["transcript"].values():
        lines.append(f"  transcript  {path}")
    for clip in summary["clips"]:
        lines.append(f"  clip {clip['clip_id']} {clip['start']:.1f}-{clip['end']:.1f}s score {clip['score']:.0f}"
                     f" [{clip['status']}] {clip['title']}")
        for variant, path in clip["renders"].items():
            lines.append(f"      {variant:<15} {path}")
    return "\n".join(lines)


def cmd_run(args, settings) -> int:
    episode_id, job_id = jobs.create(settings, args.source, title=args.title or "", options=_options(args))
    status = runner.run_job(settings, job_id)
    summary = episodes.summary(settings, episode_id)
    job = jobs.get(settings, job_id)
    _print(args, dict(summary, job=job), _episode_text(summary) + "\n" + _job_line(job))
    return 0 if status == "succeeded" else 1


def cmd_enqueue(args, settings) -> int:
    episode_id, job_id = jobs.enqueue(settings, args.source, _dispatch, title=args.title or "",
                                      priority=args.priority, options=_options(args))
    _print(args, {"episode_id": episode_id, "job_id": job_id}, f"queued job {job_id} for episode {episode_id}")
    return 0


def cmd_status(args, settings) -> int:
    job = jobs.get(settings, args.job_id)
    _print(args, job, _job_line(job))
    return 0


def cmd_jobs(args, settings) -> int:
    rows = jobs.list_jobs(settings, args.status, args.limit)
    _print(args, {"jobs": rows}, "\n".join(_job_line(j) for j in rows) or "no jobs")
    return 0


def cmd_retry(args, settings) -> int:
    job = jobs.retry(settings, args.job_id, _dispatch)
    _print(args, job, _job_line(job))
    return 0


def cmd_cancel(args, settings) -> int:
    job = jobs.cancel(settings, args.job_id)
    _print(args, job, _job_line(job))
    return 0


def cmd_episode(args, settings) -> int:
    summary = episodes.summary(settings, args.episode_id)
    _print(args, summary, _episode_text(summary))
    return 0


def cmd_export(args, settings) -> int:
    text = episodes.export(settings, args.episode_id, args.format)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        if args.json:
            print(json.dumps({"episode_id": args.episode_id, "format": args.format, "path": args.output}))
    else:
        sys.stdout.write(text)
    return 0


def cmd_serve(args, settings) -> int:
    from pipeline import serve  # noqa: PLC0415
    return serve.serve(settings, workers=args.workers, port=args.port)


def _options(args) -> dict:
    return {"max_clips": args.max_clips} if getattr(args, "max_clips", None) else {}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipeline", description="Clipdesk: long episodes to short clips.")
    parser.add_argument("--config", help="settings YAML (default: $CLIPDESK_CONFIG or config/pipeline.yaml)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name, func, help_text, json_flag=True):
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(func=func)
        if json_flag:
            p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
        return p

    p = add("run", cmd_run, "process one file synchronously (same stages as the worker) and print the episode")
    p.add_argument("source", help="media file path")
    p.add_argument("--title", help="episode title (default: suggested from the transcript)")
    p.add_argument("--max-clips", type=int, help="number of clips to suggest")
    p = add("enqueue", cmd_enqueue, "queue a file for the worker; prints episode_id and job_id")
    p.add_argument("source", help="media file path")
    p.add_argument("--priority", type=int, default=jobs.PRIORITY_INTERACTIVE, help="higher runs first")
    p.add_argument("--title", help="episode title")
    p.add_argument("--max-clips", type=int, help="number of clips to suggest")
    p = add("status", cmd_status, "show one job")
    p.add_argument("job_id", type=int)
    p = add("jobs", cmd_jobs, "list jobs, newest first")
    p.add_argument("--status", choices=jobs.JOB_STATUSES)
    p.add_argument("--limit", type=int, default=50)
    p = add("retry", cmd_retry, "requeue a failed or cancelled job; completed stages are kept")
    p.add_argument("job_id", type=int)
    p = add("cancel", cmd_cancel, "cancel a queued job, or stop a running one")
    p.add_argument("job_id", type=int)
    p = add("episode", cmd_episode, "show an episode summary: transcript, enrichment, clips and renders")
    p.add_argument("episode_id")
    p = add("export", cmd_export, "write an episode's transcript as srt, vtt, json or txt")
    p.add_argument("episode_id")
    p.add_argument("--format", choices=("srt", "vtt", "json", "txt"), default="srt")
    p.add_argument("-o", "--output", help="file to write (default: stdout)")
    p = add("serve", cmd_serve, "start the worker and the dashboard; Ctrl-C stops both", json_flag=False)
    p.add_argument("--workers", type=int, help="worker count (default: worker.workers from the config)")
    p.add_argument("--port", type=int, help="dashboard port (default: dashboard.port from the config)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    if args.config:   # children (worker, dashboard) and the lazy queue_worker import read it too
        os.environ["CLIPDESK_CONFIG"] = str(Path(args.config).resolve())
    try:
        settings = load_settings()
        return args.func(args, settings)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    except PipelineError as exc:
        if getattr(args, "json", False):
            print(json.dumps({"error": str(exc)}))
        print(f"error: {exc}", file=sys.stderr)
        return 1
