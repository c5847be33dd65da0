"""The render stage: every clip of an episode that is not rejected, in all its variants.

Render state is separate from review status: a clip is rendered when every variant it
should have (its aspects: job option ``aspects``, else the config) is recorded in
``renders`` and on disk. Such clips are skipped, so a retried job, or a job queued after
a trim deleted one clip's renders, renders exactly the clips that are missing. The stage
never changes a clip's status (suggested / approved / rejected belong to the review).

Per clip, ``clips.reframe`` / ``clips.caption_style`` / ``clips.remove_silences`` (set in
the review page) win over the job options of the same names, which win over the config.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from pipeline import db, media, storage, transcript
from pipeline.media.render_graph import default_aspects, render_clip, variants_for
from pipeline.stages.context import StageContext


def expected_variants(ctx: StageContext) -> tuple[str, ...]:
    return variants_for(ctx.options.get("aspects") or default_aspects(ctx.settings.render))


def is_complete(clip_id: str, renders: list, data_dir: Path, variants: tuple[str, ...]) -> bool:
    done = {r["variant"] for r in renders if r["clip_id"] == clip_id and (data_dir / r["path"]).exists()}
    return done >= set(variants)


def pending(ctx: StageContext) -> list:
    """The episode's clips that are not rejected and not fully rendered, in episode order."""
    with db.session(ctx.settings.app_db) as conn:
        clips = [c for c in db.list_clips(conn, ctx.episode_id) if c["status"] != "rejected"]
        renders = db.list_renders(conn, ctx.episode_id)
    variants = expected_variants(ctx)
    return [c for c in clips if not is_complete(c["id"], renders, ctx.settings.data_dir, variants)]


def render_one(ctx: StageContext, clip, report: Callable[[float], None]) -> None:
    """Render one clip in all its variants and record them (one queued unit of the render stage)."""
    words = transcript.all_words(transcript.load(ctx.transcript_path()))
    out_dir = storage.clip_dir(ctx.settings.data_dir, ctx.episode_id, clip["id"])
    outputs = render_clip(ctx.source_path(), ctx.media(), clip["start"], clip["end"], words, out_dir,
                          ctx.settings.paths.fonts_dir, ctx.settings.render, report,
                          aspects=ctx.options.get("aspects"),
                          reframe_mode=clip["reframe"] or ctx.options.get("reframe"),
                          caption_style=clip["caption_style"] or ctx.options.get("caption_style"),
                          remove_silences=(bool(clip["remove_silences"]) if clip["remove_silences"] is not None
                                           else ctx.options.get("remove_silences")),
                          title=clip["title"], title_seconds=ctx.options.get("title_overlay_seconds"),
                          scratch=ctx.scratch)
    _record(ctx, clip["id"], outputs)


def run(ctx: StageContext) -> None:
    """Render every pending clip here, one after another (the queue runs them as parallel units)."""
    todo = pending(ctx)
    total = sum(c["end"] - c["start"] for c in todo)
    done_seconds = 0.0
    for clip in todo:
        length = clip["end"] - clip["start"]

        def report(fraction: float, base=done_seconds, length=length) -> None:
            ctx.progress((base + fraction * length) / total)

        render_one(ctx, clip, report)
        done_seconds += length
    ctx.progress(1.0)


def _record(ctx: StageContext, clip_id: str, outputs: dict[str, Path]) -> None:
    probed = {variant: media.probe(path) for variant, path in outputs.items()}
    with db.session(ctx.settings.app_db) as conn, db.transaction(conn):
        now = time.time()
        for variant, path in outputs.items():
            info = probed[variant]
            relative = str(path.relative_to(ctx.settings.data_dir))   # paths in the DB survive a moved data dir
            db.record_render(conn, clip_id, variant, relative, info.width, info.height, info.duration,
                             path.stat().st_size, now)
