"""Operator edits on the episode page: approve/reject suggestions, trim them, fix the enrichment.

Clip statuses: ``suggested`` -> ``approved`` | ``rejected`` (and back). The render stage renders
every clip that is not rejected; rejecting a clip deletes its renders (files and rows), so
they drop out of the episode summary and its downloads. A trim snaps to word boundaries,
keeps the clip inside the episode and within the clip length rules, deletes the old renders
and queues a render job (``jobs.rework(..., "render")``), which renders only what is missing.
"""

from __future__ import annotations

import json
import math
import time

from pipeline import db, jobs, storage, transcript
from pipeline.config import Settings
from pipeline.enrichment import clip_rules
from pipeline.errors import BadInput, NotAllowed, NotFound
from pipeline.jobs import options
from pipeline.stages import ingest

REVIEW_STATUSES = ("suggested", "approved", "rejected")


def set_clip_status(settings: Settings, clip_id: str, status: str) -> dict:
    """Approve, reject or un-review a clip; rejecting removes its renders."""
    if status not in REVIEW_STATUSES:
        raise BadInput(f"A clip can be marked {', '.join(REVIEW_STATUSES)}; '{status}' is not one of them.")
    with db.session(settings.app_db) as conn, db.transaction(conn):
        clip = _require_clip(conn, clip_id)
        db.set_clip_review_status(conn, clip_id, status, time.time())
        if status == "rejected":
            db.delete_clip_renders(conn, clip_id)
    if status == "rejected":
        _remove_render_files(settings, clip)
    return get_clip(settings, clip_id)


def trim_clip(settings: Settings, clip_id: str, start: float, end: float, dispatch) -> dict:
    """Move a clip's bounds (snapped to words), drop its renders and queue a render job for it."""
    if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in (start, end)):
        raise BadInput("A clip's start and end must be numbers of seconds.")
    with db.session(settings.app_db) as conn:
        clip = _require_clip(conn, clip_id)
        episode = db.get_episode(conn, clip["episode_id"])
        job_options = json.loads(db.last_job_options(conn, clip["episode_id"]) or "{}")
        _require_idle(conn, clip)
    duration = float(episode["duration"] or 0.0)
    if start < 0 or end > duration + clip_rules.OUTSIDE_TOLERANCE_SECONDS or end <= start:
        raise BadInput(f"The clip {start:.2f}-{end:.2f} s must lie inside the episode (0-{duration:.2f} s) "
                       "and end after it starts.")
    path = storage.transcript_path(settings.data_dir, clip["episode_id"])
    if not path.exists():
        raise BadInput("This episode has no transcript yet, so its clips cannot be trimmed.")
    start, end = clip_rules.snap_to_words(transcript.all_words(transcript.load(path)), start, end)
    rules = clip_rules.rules_for(settings.enrich, job_options)
    if not rules.min_seconds <= end - start <= rules.max_seconds:
        raise BadInput(f"The trimmed clip would last {end - start:.1f} s; clips must last "
                       f"{rules.min_seconds:g}-{rules.max_seconds:g} s.")
    with db.session(settings.app_db) as conn, db.transaction(conn):
        db.set_clip_bounds(conn, clip_id, start, end, time.time())
        db.delete_clip_renders(conn, clip_id)
    _remove_render_files(settings, clip)
    if clip["status"] != "rejected":
        jobs.rework(settings, clip["episode_id"], "render", dispatch)
    return get_clip(settings, clip_id)


def set_clip_render_options(settings: Settings, clip_id: str, *, reframe: str | None = None,
                            caption_style: str | None = None, remove_silences: bool | str | None = None,
                            dispatch=None) -> dict:
    """Per-clip reframe mode, caption preset and jump cuts (``remove_silences``): None keeps
    the current choice, "" clears it (then the job's option applies, else the config's).

    With ``dispatch`` and a change, the clip's renders are dropped and a render job is queued.
    """
    if reframe and reframe not in options.REFRAME_MODES:
        raise BadInput(f"Reframe '{reframe}' is not one of {', '.join(options.REFRAME_MODES)}.")
    styles = options.caption_styles(settings)
    if caption_style and styles and caption_style not in styles:
        raise BadInput(f"Caption style '{caption_style}' is not one of {', '.join(styles)}.")
    if remove_silences not in (None, "", True, False):
        raise BadInput(f"remove_silences must be true, false or '' (got {remove_silences!r}).")
    with db.session(settings.app_db) as conn, db.transaction(conn):
        clip = _require_clip(conn, clip_id)
        wanted = (clip["reframe"] if reframe is None else reframe or None,
                  clip["caption_style"] if caption_style is None else caption_style or None)
        current_cuts = None if clip["remove_silences"] is None else bool(clip["remove_silences"])
        wanted_cuts = current_cuts if remove_silences is None else (None if remove_silences == "" else remove_silences)
        changed = (clip["reframe"], clip["caption_style"], current_cuts) != (*wanted, wanted_cuts)
        if changed and dispatch is not None:
            _require_idle(conn, clip)
        db.set_clip_render_choices(conn, clip_id, *wanted, time.time())
        db.set_clip_remove_silences(conn, clip_id, wanted_cuts, time.time())
        if changed and dispatch is not None:
            db.delete_clip_renders(conn, clip_id)
    if changed and dispatch is not None:
        _remove_render_files(settings, clip)
        if clip["status"] != "rejected":
            jobs.rework(settings, clip["episode_id"], "render", dispatch)
    return get_clip(settings, clip_id)


def update_enrichment(settings: Settings, episode_id: str, *, title: str | None = None, summary: str | None = None,
                      keywords: list[str] | None = None, chapters: list[dict] | None = None) -> dict:
    """Replace the given parts of an episode's enrichment (None = keep); returns the enrichment."""
    with db.session(settings.app_db) as conn, db.transaction(conn):
        episode = db.get_episode(conn, episode_id)
        if episode is None:
            raise NotFound(f"There is no episode {episode_id}.")
        enrichment = json.loads(episode["enrichment_json"] or "{}")
        now = time.time()
        if title is not None:
            title = " ".join(str(title).split())
            if not title:
                raise BadInput("The title cannot be empty.")
            enrichment["title"] = title
            db.set_episode_title(conn, episode_id, title, now)
        if summary is not None:
            enrichment["summary"] = str(summary).strip()
        if keywords is not None:
            if isinstance(keywords, str) or not all(isinstance(k, str) for k in keywords):
                raise BadInput("Keywords must be a list of words or phrases.")
            enrichment["keywords"] = list(dict.fromkeys(k.strip() for k in keywords if k.strip()))
        if chapters is not None:
            if not isinstance(chapters, list):
                raise BadInput("Chapters must be a list of {start, title}.")
            enrichment["chapters"] = clip_rules.check_chapters(chapters, float(episode["duration"] or 0.0))
        enrichment["edited_at"] = now
        db.set_episode_enrichment(conn, episode_id, json.dumps(enrichment), now)
    return enrichment


def get_clip(settings: Settings, clip_id: str) -> dict:
    with db.session(settings.app_db) as conn:
        clip = _require_clip(conn, clip_id)
        renders = db.list_clip_renders(conn, clip_id)
    return {"clip_id": clip["id"], "episode_id": clip["episode_id"], "start": clip["start"], "end": clip["end"],
            "score": clip["score"], "title": clip["title"], "reason": clip["reason"], "status": clip["status"],
            "source": clip["source"], "hashtags": json.loads(clip["hashtags_json"] or "[]"),
            "score_detail": json.loads(clip["score_detail_json"]) if clip["score_detail_json"] else None,
            "reframe": clip["reframe"], "caption_style": clip["caption_style"],
            "remove_silences": None if clip["remove_silences"] is None else bool(clip["remove_silences"]),
            "rendered_seconds": rendered_seconds(renders),
            "renders": {r["variant"]: str(settings.data_dir / r["path"]) for r in renders}}


def rendered_seconds(renders) -> float | None:
    """The clip's length as rendered (shorter than end - start after jump cuts); None before a render."""
    durations = [r["duration"] for r in renders if r["duration"]]
    return min(durations) if durations else None


def _require_clip(conn, clip_id: str):
    clip = db.get_clip(conn, clip_id)
    if clip is None:
        raise NotFound(f"There is no clip {clip_id}.")
    return clip


def _require_idle(conn, clip) -> None:
    """A clip is re-rendered by a new job; refuse before changing anything if one is already under way,
    or if the render could not run (the retention policy deleted an uploaded source)."""
    if active := db.active_jobs_for_episode(conn, clip["episode_id"]):
        raise NotAllowed(f"Episode {clip['episode_id']} already has job {active[0]['id']} {active[0]['status']}; "
                       "wait for it to finish or cancel it before changing this clip.")
    if gone := ingest.source_gone_message(db.get_episode(conn, clip["episode_id"])):
        raise BadInput(gone)


def _remove_render_files(settings: Settings, clip) -> None:
    storage.remove_tree(storage.clip_dir(settings.data_dir, clip["episode_id"], clip["id"]))
