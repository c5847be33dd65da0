"""``python -m pipeline``: the command-line shell over the pipeline.

Commands that put work on the queue load the queue's dispatch by name on first use
(``ops.serve.queue_dispatch``, the module huey_consumer is started on): like the dashboard,
the CLI is a shell, and no module of ``pipeline`` imports Huey or ``queue_worker``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from pipeline import jobs, storage
from pipeline.automation import feeds, inbox, webhooks
from pipeline.config import load_settings
from pipeline.errors import ConfigError, DuplicateSource, PipelineError
from pipeline.jobs import backlog, runner
from pipeline.jobs import options as job_options
from pipeline.jobs.states import ALL_STAGES, TARGET_STAGES
from pipeline.library import episodes
from pipeline.ops import database, disk, retention, serve
from pipeline.security import keys as api_keys


def _dispatch(job_id: int, priority: int) -> str:
    return serve.queue_dispatch()(job_id, priority)


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
    episode_id, job_id = jobs.create(settings, args.source, title=args.title or "", options=_options(args),
                                      trusted_path=True)   # a shell user may name any file they can read
    status = runner.run_until_done(settings, job_id)
    summary = episodes.summary(settings, episode_id)
    job = jobs.get(settings, job_id)
    _print(args, dict(summary, job=job), _episode_text(summary) + "\n" + _job_line(job))
    return 0 if status == "succeeded" else 1


def cmd_enqueue(args, settings) -> int:
    try:
        episode_id, job_id = jobs.enqueue(settings, args.source, _dispatch, title=args.title or "",
                                          priority=args.priority, options=_options(args),
                                          allow_duplicate=args.allow_duplicate, trusted_path=True)
    except DuplicateSource as exc:   # automation gets the existing episode to reprocess or poll
        _print(args, {"error": str(exc), "duplicate_of": exc.episode_id}, f"error: {exc}")
        return 1
    depth = backlog.notice(settings)   # back-pressure (issue 21): always accepted, with the queue's depth
    _print(args, {"episode_id": episode_id, "job_id": job_id, **depth},
           f"queued job {job_id} for episode {episode_id}" + (f"\n{depth['message']}" if depth["message"] else ""))
    return 0


def cmd_status(args, settings) -> int:
    job = jobs.get(settings, args.job_id)
    _print(args, job, _job_line(job))
    return 0


def cmd_jobs(args, settings) -> int:
    rows = jobs.list_jobs(settings, args.status, args.limit, args.search or "")
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


def cmd_clip(args, settings) -> int:
    """Operator edits of one clip suggestion (issue 4): the same calls the episode page makes."""
    from pipeline.library import review  # noqa: PLC0415
    clip = review.get_clip(settings, args.clip_id)
    if args.status:
        clip = review.set_clip_status(settings, args.clip_id, args.status)
    if args.reframe is not None or args.caption_style is not None or args.remove_silences is not None:
        cuts = {"on": True, "off": False, "": ""}.get(args.remove_silences)
        clip = review.set_clip_render_options(settings, args.clip_id, reframe=args.reframe,
                                              caption_style=args.caption_style, remove_silences=cuts,
                                              dispatch=None if args.trim else _dispatch)
    if args.trim:
        clip = review.trim_clip(settings, args.clip_id, args.trim[0], args.trim[1], _dispatch)
    _print(args, clip, f"clip {clip['clip_id']} {clip['start']:.2f}-{clip['end']:.2f}s score {clip['score']:.0f}"
                       f" [{clip['status']}] {clip['title']}")
    return 0


def cmd_export(args, settings) -> int:
    text = episodes.export(settings, args.episode_id, args.format)
    if args.output:
        storage.write_text_atomic(Path(args.output), text)
        if args.json:
            print(json.dumps({"episode_id": args.episode_id, "format": args.format, "path": args.output}))
    else:
        sys.stdout.write(text)
    return 0


def cmd_reprocess(args, settings) -> int:
    job_id = jobs.rework(settings, args.episode_id, args.from_stage, _dispatch, options=_options(args),
                         priority=args.priority, trusted_path=True)
    job = jobs.get(settings, job_id)
    _print(args, job, _job_line(job))
    return 0


def cmd_delete(args, settings) -> int:
    result = episodes.delete(settings, args.episode_id, hard=args.hard)
    _print(args, result, f"episode {args.episode_id} deleted ({result['deleted']})")
    return 0


def cmd_restore(args, settings) -> int:
    summary = episodes.restore(settings, args.episode_id)
    _print(args, summary, _episode_text(summary))
    return 0


def cmd_stats(args, settings) -> int:
    data = dict(jobs.stats(settings), disk=disk.usage(settings), backlog=backlog.overview(settings))
    latency, rate = data["queue_latency_seconds"], data["success_rate"]
    lines = [f"jobs: {', '.join(f'{k} {v}' for k, v in data['jobs'].items())}",
             "success rate: " + ("-" if rate is None else f"{rate * 100:.1f}%"),
             f"failures by kind: {data['failures_by_kind'] or 'none'}",
             f"queue latency: median {latency['median']} s, p95 {latency['p95']} s ({latency['samples']} jobs)"]
    lines += [f"  {stage:<15} {value:8.1f} s per media hour" for stage, value in data["seconds_per_media_hour"].items()]
    space, queue = data["disk"], data["backlog"]
    lines.append("disk: " + ", ".join(f"{kind} {space[kind] / (1 << 20):,.1f} MB" for kind in
                                      ("source", "audio", "renders", "other", "database"))
                 + f"; free {space['free'] / (1 << 30):,.1f} GB")
    lines.append(f"retention frees next: {space['policy_frees_next']['bytes'] / (1 << 20):,.1f} MB")
    if space["warning"]:
        lines.append(f"warning: {space['warning']}")
    drains = queue["drains_in_seconds"]
    lines.append(f"backlog: {queue['queue_depth']} waiting" + (f", done in ~{drains / 60:.0f} min" if drains else "")
                 + (" (feeds held back)" if queue["feeds_held_back"] else ""))
    lines.append("workers: " + ("none has started" if not data["workers_by_host"] else ""))
    for host in data["workers_by_host"]:
        lines.append(f"  {host['host']}: {host['status']}, {host['consumers_alive']} consumer(s) with"
                     f" {host['slots_alive']} slot(s) alive, last heartbeat {host['last_heartbeat_age']:g} s ago")
        lines += [f"    {c['worker_id']:<30} {c['slots']} slot(s)  {c['status']:<5}  heartbeat {c['heartbeat_age']:g} s ago"
                  for c in host["consumers"]]
    _print(args, data, "\n".join(lines))
    return 0


def cmd_cleanup(args, settings) -> int:
    """The retention policy now (the worker also runs it every hour), or ``--history``: what it deleted."""
    if args.history:
        rows = retention.deletions(settings, limit=args.limit)
        _print(args, {"deletions": rows}, "\n".join(
            f"{r['deleted_at']}  {r['kind']:<16} {r['bytes']:>12,} B  {r['path'] or str(r['items']) + ' events'}"
            f"  ({r['reason']})" for r in rows) or "nothing deleted yet")
        return 0
    result = retention.cleanup(settings, dry_run=args.dry_run)
    verb = "would delete" if args.dry_run else "deleted"
    lines = [f"{verb} {i['kind']:<16} {i['bytes']:>12,} B  {i['path'] or str(i.get('events', 0)) + ' events'}"
             f"  ({i['reason']})" for i in result["deleted"]]
    if not retention.enabled(settings):
        lines.append("retention is off: every retention.*_days is 0 (keep forever)")
    lines.append(f"{verb} {len(result['deleted'])} item(s), {result['bytes']:,} bytes")
    _print(args, result, "\n".join(lines))
    return 0


def cmd_pin(args, settings) -> int:
    """Pinned episodes and clips are never deleted by the retention policy."""
    pin = retention.pin_clip if args.kind == "clip" else retention.pin_episode
    result = pin(settings, args.id, pinned=not args.off)
    _print(args, result, f"{args.kind} {args.id} {'pinned' if result['pinned'] else 'unpinned'}")
    return 0


def cmd_serve(args, settings) -> int:
    return serve.serve(settings, workers=args.workers, port=args.port, api_port=args.api_port)


def cmd_api(args, settings) -> int:
    return serve.run_api(settings, address=args.address, port=args.port)


# --- API keys (issue 15): printed once, stored as hashes --------------------------------------

def _key_line(key: dict) -> str:
    state = f"revoked {key['revoked_at']}" if key["revoked_at"] else "active"
    return f"key {key['key_id']:>3}  {key['prefix']}...  {key['name']}  created {key['created_at']}  {state}"


def cmd_api_keys_create(args, settings) -> int:
    key = api_keys.create(settings, args.name)
    _print(args, key, f"API key {key['key_id']} for {key['name']} (shown once, store it now):\n{key['key']}")
    return 0


def cmd_api_keys_list(args, settings) -> int:
    rows = api_keys.list_keys(settings)
    _print(args, {"keys": rows}, "\n".join(_key_line(k) for k in rows) or "no API keys (the API is open on loopback)")
    return 0


def cmd_api_keys_revoke(args, settings) -> int:
    key = api_keys.revoke(settings, args.key_id)
    _print(args, key, _key_line(key))
    return 0


def _add_api_key_commands(sub) -> None:
    group = sub.add_parser("api-keys", help="create, list and revoke HTTP API keys",
                           description="Keys for the HTTP API: each is printed once; only its hash is stored.")
    actions = group.add_subparsers(dest="api_keys_command", required=True, metavar="ACTION")
    for name, func, help_text in (("create", cmd_api_keys_create, "create a key and print it (once)"),
                                  ("list", cmd_api_keys_list, "list keys (names and prefixes, never the keys)"),
                                  ("revoke", cmd_api_keys_revoke, "revoke a key: requests with it get 401")):
        p = actions.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(func=func)
        p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
        if name == "create":
            p.add_argument("name", help="who or what uses the key, e.g. n8n")
        elif name == "revoke":
            p.add_argument("key_id", type=int)


OPTION_FLAGS = {"engine": "engine", "model": "model", "language": "language", "max_clips": "max_clips",
                "min_seconds": "min_clip_seconds", "max_seconds": "max_clip_seconds", "aspect": "aspects",
                "caption_style": "caption_style", "reframe": "reframe", "full_episode": "full_episode",
                "target_stage": "target_stage",
                "remove_silences": "remove_silences",
                "vocabulary": "vocabulary"}


def _options(args) -> dict:
    """Job options from the flags the user gave (others fall back to the config)."""
    options = {key: getattr(args, flag) for flag, key in OPTION_FLAGS.items()
               if getattr(args, flag, None) not in (None, False, [])}
    if "vocabulary" in options:   # --vocabulary "Ada Quist, Quorbex" --vocabulary Zed: one list
        options["vocabulary"] = ", ".join(options["vocabulary"])
    return options


def _add_option_flags(p) -> None:
    group = p.add_argument_group("job options (default: config/pipeline.yaml)")
    group.add_argument("--engine", choices=job_options.ENGINES, help="transcription engine")
    group.add_argument("--model", help="Whisper model name or path (tiny.en and multilingual base are bundled)")
    group.add_argument("--language", help="force the spoken language, e.g. en (default: detect)")
    group.add_argument("--max-clips", type=int, help="number of clips to suggest")
    group.add_argument("--min-seconds", type=float, help="shortest clip")
    group.add_argument("--max-seconds", type=float, help="longest clip")
    group.add_argument("--aspect", action="append", choices=job_options.ASPECTS,
                       help="render this aspect ratio (repeat for several)")
    group.add_argument("--caption-style", help="caption preset name")
    group.add_argument("--reframe", choices=job_options.REFRAME_MODES, help="how 9x16 follows the picture")
    group.add_argument("--target-stage", choices=TARGET_STAGES,
                       help="last stage to run: transcribe = a transcript-only job (default: render)")
    group.add_argument("--remove-silences", action="store_true", default=None,
                       help="jump cuts: cut pauses longer than render.max_pause_seconds inside clips")
    group.add_argument("--vocabulary", action="append", metavar="TERMS",
                       help="names, brands or jargon to spell right, comma-separated (repeatable); "
                            "added to transcribe.vocabulary")


# --- the database (issue 16): migrate, and move a SQLite installation into PostgreSQL ------------

def cmd_db_migrate(args, settings) -> int:
    result = database.migrate(settings)
    applied = ", ".join(map(str, result["applied"])) or "none (up to date)"
    _print(args, result, f"{result['dialect']} {result['database']}: schema version {result['version']};"
                         f" applied now: {applied}")
    return 0


def cmd_db_copy(args, settings) -> int:
    result = database.copy_to(settings, args.to)
    lines = [f"copied {result['rows']} rows from {result['from']} to {result['to']} in {result['seconds']} s;"
             " row counts match:"]
    lines += [f"  {table:<22} {counts['target']:>9}" for table, counts in result["tables"].items()]
    lines.append(f"Now set database.url (or CLIPDESK_DATABASE_URL) to {result['to']} on every machine.")
    _print(args, result, "\n".join(lines))
    return 0


def _add_db_commands(sub) -> None:
    group = sub.add_parser("db", help="the app database: migrate it, copy a SQLite installation into PostgreSQL",
                           description="The app database named by database.url (or CLIPDESK_DATABASE_URL); "
                                       "empty = the SQLite file in the data dir.")
    actions = group.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    for name, func, help_text in (
            ("migrate", cmd_db_migrate, "apply the schema migrations the database lacks (workers do it too)"),
            ("copy", cmd_db_copy, "copy every episode, job, event, clip, render, feed, key and learned rate into"
                                  " an empty PostgreSQL database and check the row counts (stop workers first)")):
        p = actions.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(func=func)
        p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
        if name == "copy":
            p.add_argument("--to", required=True, metavar="URL", help="postgresql://user:password@host:port/database")


# --- automation (issue 8): feeds, watch folder, webhook deliveries -----------------------------

def _feed_line(feed: dict) -> str:
    state = f"error ({feed['failures']}x): {feed['last_error']}" if feed["last_error"] else "ok"
    return (f"feed {feed['feed_id']:>3}  every {feed['interval_minutes']} min  {feed['entries_queued']} queued / "
            f"{feed['entries_seen']} seen  next {feed['next_check_at']}  {state}  {feed['title'] or feed['url']}")


def cmd_feeds_add(args, settings) -> int:
    feed = feeds.add(settings, args.url, options=_options(args), backfill=args.backfill,
                     interval_minutes=args.interval, dispatch=_dispatch if args.backfill else None)
    queued = [e["job_id"] for e in feed["entries"] if e["job_id"]]
    _print(args, feed, _feed_line(feed) + (f"\nqueued jobs {queued}" if queued else ""))
    return 0


def cmd_feeds_list(args, settings) -> int:
    rows = feeds.list_feeds(settings)
    _print(args, {"feeds": rows}, "\n".join(_feed_line(f) for f in rows) or "no feeds")
    return 0


def cmd_feeds_remove(args, settings) -> int:
    feed = feeds.remove(settings, args.feed_id)
    _print(args, feed, f"stopped following feed {args.feed_id} (its episodes are kept)")
    return 0


def cmd_feeds_check(args, settings) -> int:
    results = ([feeds.check_feed(settings, args.feed_id, _dispatch)] if args.feed_id is not None
               else feeds.check_all(settings, _dispatch))
    lines = [f"feed {r['feed_id']}: " + (f"error: {r['error']}" if r["error"] else f"queued jobs {r['queued']}")
             for r in results]
    _print(args, {"results": results}, "\n".join(lines) or "no feeds")
    return 1 if any(r["error"] for r in results) else 0


def cmd_inbox(args, settings) -> int:
    results = inbox.scan(settings, _dispatch)
    lines = [f"{r['file']}: " + (f"rejected: {r['error']}" if "error" in r else f"job {r['job_id']}") for r in results]
    _print(args, {"inbox": str(inbox.inbox_dir(settings)), "results": results}, "\n".join(lines) or "nothing new")
    return 0


def cmd_webhooks(args, settings) -> int:
    rows = webhooks.deliveries(settings, args.job_id)
    lines = [f"{d['event']} -> {d['url']}: {d['status']} after {d['attempts']} attempt(s)"
             + (f" ({d['last_error']})" if d["last_error"] and d["status"] != "delivered" else "") for d in rows]
    _print(args, {"deliveries": rows}, "\n".join(lines) or "no webhook deliveries")
    return 0


def _add_automation_commands(sub) -> None:
    def add(parent, name, func, help_text):
        p = parent.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(func=func)
        p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
        return p

    group = sub.add_parser("feeds", help="follow channels, playlists and podcast feeds",
                           description="Follow channels, playlists and podcast feeds: new entries are queued.")
    actions = group.add_subparsers(dest="feeds_command", required=True, metavar="ACTION")
    p = add(actions, "add", cmd_feeds_add, "follow a feed; starts from now unless --backfill N")
    p.add_argument("url", help="YouTube channel/playlist, podcast RSS or Atom feed URL")
    p.add_argument("--backfill", type=int, default=0, help="also process the newest N entries it lists now")
    p.add_argument("--interval", type=int, default=feeds.DEFAULT_INTERVAL_MINUTES, help="minutes between checks")
    _add_option_flags(p)
    add(actions, "list", cmd_feeds_list, "list followed feeds with their state")
    p = add(actions, "remove", cmd_feeds_remove, "stop following a feed (its episodes are kept)")
    p.add_argument("feed_id", type=int)
    p = add(actions, "check", cmd_feeds_check, "check one feed, or all feeds, now")
    p.add_argument("feed_id", type=int, nargs="?")
    add(sub, "inbox", cmd_inbox, "scan the watch folder once (the worker does it every minute)")
    p = add(sub, "webhooks", cmd_webhooks, "show the webhook deliveries of a job and each attempt")
    p.add_argument("job_id", type=int)


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
    _add_option_flags(p)
    p.add_argument("--full-episode", action="store_true", help="also render the whole episode with captions")
    p = add("enqueue", cmd_enqueue, "queue a file or URL for the worker; prints episode_id and job_id")
    p.add_argument("source", help="media file path or http(s) URL (anything yt-dlp supports)")
    p.add_argument("--allow-duplicate", action="store_true",
                   help="queue a URL even if an episode already came from it (default: refuse, name that episode)")
    p.add_argument("--priority", type=int, default=jobs.PRIORITY_INTERACTIVE, help="higher runs first")
    p.add_argument("--title", help="episode title")
    _add_option_flags(p)
    p.add_argument("--full-episode", action="store_true", help="also render the whole episode with captions")
    p = add("status", cmd_status, "show one job")
    p.add_argument("job_id", type=int)
    p = add("jobs", cmd_jobs, "list jobs, newest first")
    p.add_argument("--status", choices=jobs.JOB_STATUSES)
    p.add_argument("--search", help="match episode title, source, episode id or job id")
    p.add_argument("--limit", type=int, default=50)
    p = add("reprocess", cmd_reprocess, "redo an episode from a stage (e.g. re-transcribe with another model)")
    p.add_argument("episode_id")
    p.add_argument("--from", dest="from_stage", choices=ALL_STAGES, default="transcribe",
                   help="first stage to redo; earlier stages are kept (default: transcribe)")
    p.add_argument("--priority", type=int, default=jobs.PRIORITY_INTERACTIVE, help="higher runs first")
    _add_option_flags(p)
    p.add_argument("--full-episode", action="store_true", help="also render the whole episode with captions")
    p = add("delete", cmd_delete, "delete an episode: hidden (undo with restore), or --hard: rows and files")
    p.add_argument("episode_id")
    p.add_argument("--hard", action="store_true", help="remove its rows and files for good")
    p = add("restore", cmd_restore, "undo a soft delete")
    p.add_argument("episode_id")
    p = add("stats", cmd_stats, "success rate, seconds per media hour by stage, failures by kind, queue latency,"
            " disk use by kind and what retention frees next, the backlog and its forecast")
    p = add("retry", cmd_retry, "requeue a failed or cancelled job; completed stages are kept")
    p.add_argument("job_id", type=int)
    p = add("cancel", cmd_cancel, "cancel a queued job, or stop a running one")
    p.add_argument("job_id", type=int)
    p = add("episode", cmd_episode, "show an episode summary: transcript, enrichment, clips and renders")
    p.add_argument("episode_id")
    p = add("clip", cmd_clip, "show or edit one clip suggestion: approve/reject, trim (queues a re-render)")
    p.add_argument("clip_id")
    p.add_argument("--status", choices=("approved", "rejected", "suggested"), help="review the suggestion")
    p.add_argument("--trim", nargs=2, type=float, metavar=("START", "END"),
                   help="new bounds in seconds, snapped to words; queues a render job")
    p.add_argument("--reframe", choices=("", *job_options.REFRAME_MODES), help="'' = the job's or config's choice")
    p.add_argument("--caption-style", help="a render.caption_presets name; '' = the job's or config's choice")
    p.add_argument("--remove-silences", choices=("on", "off", ""),
                   help="jump cuts for this clip; '' = the job's or config's choice")
    p = add("export", cmd_export, "write an episode's transcript as srt, vtt, json or txt")
    p.add_argument("episode_id")
    p.add_argument("--format", choices=("srt", "vtt", "json", "txt"), default="srt")
    p.add_argument("-o", "--output", help="file to write (default: stdout)")
    p = add("cleanup", cmd_cleanup, "apply the retention policy now: delete old sources, rejected renders, trashed"
            " episodes, compact job events; prints what went and the bytes freed")
    p.add_argument("--dry-run", action="store_true", help="list what would be deleted and change nothing")
    p.add_argument("--history", action="store_true", help="list what the policy deleted (what, why, when), newest first")
    p.add_argument("--limit", type=int, default=100, help="with --history: how many deletions to show")
    p = add("pin", cmd_pin, "pin an episode or a clip: the retention policy never deletes it")
    p.add_argument("kind", choices=("episode", "clip"))
    p.add_argument("id", help="episode or clip id")
    p.add_argument("--off", action="store_true", help="unpin")
    p = add("serve", cmd_serve, "start the worker, the dashboard and the HTTP API; Ctrl-C stops all three",
            json_flag=False)
    p.add_argument("--workers", type=int, help="worker count (default: worker.workers from the config)")
    p.add_argument("--port", type=int, help="dashboard port (default: dashboard.port from the config)")
    p.add_argument("--api-port", type=int, help="API port (default: api.port from the config)")
    p = add("api", cmd_api, "start the HTTP API alone (uvicorn); Ctrl-C stops it", json_flag=False)
    p.add_argument("--address", help="address to listen on (default: api.address from the config)")
    p.add_argument("--port", type=int, help="port (default: api.port from the config)")
    _add_api_key_commands(sub)
    _add_db_commands(sub)
    _add_automation_commands(sub)
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
