"""The render stage: every clip of an episode in its four variants.

A clip whose four renders are recorded and on disk is skipped, so a retried job only
renders what is missing. Rejected clips are not rendered.
"""

from __future__ import annotations

import time
from pathlib import Path

from pipeline import db, media, storage, transcript
from pipeline.context import StageContext
from pipeline.render import VARIANTS, render_clip


def _is_complete(clip_id: str, renders: list, data_dir: Path) -> bool:
    done = {r["variant"] for r in renders if r["clip_id"] == clip_id and (data_dir / r["path"]).exists()}
    return done >= set(VARIANTS)


def run(ctx: StageContext) -> None:
    with db.session(ctx.settings.app_db_path) as conn:
        clips = [c for c in db.list_clips(conn, ctx.episode_id) if c["status"] != "rejected"]
        renders = db.list_renders(conn, ctx.episode_id)
    if not clips:
        ctx.progress(1.0)
        return
    info = ctx.media()
    source = ctx.source_path()
    words = transcript.all_words(transcript.load(ctx.transcript_path()))
    total = sum(c["end"] - c["start"] for c in clips)
    done_seconds = 0.0
    for clip in clips:
        length = clip["end"] - clip["start"]
        if not _is_complete(clip["id"], renders, ctx.settings.data_dir):
            out_dir = storage.clip_dir(ctx.settings.data_dir, ctx.episode_id, clip["id"])
            base = done_seconds

            def report(fraction: float, base=base, length=length) -> None:
                ctx.progress((base + fraction * length) / total)

            outputs = render_clip(source, info, clip["start"], clip["end"], words, out_dir,
                                  ctx.settings.paths.fonts_dir, ctx.settings.render, report)
            _record(ctx, clip["id"], outputs)
        done_seconds += length
        ctx.progress(done_seconds / total)


def _record(ctx: StageContext, clip_id: str, outputs: dict[str, Path]) -> None:
    probed = {variant: media.probe(path) for variant, path in outputs.items()}
    with db.session(ctx.settings.app_db_path) as conn, db.transaction(conn):
        now = time.time()
        for variant, path in outputs.items():
            info = probed[variant]
            relative = str(path.relative_to(ctx.settings.data_dir))   # paths in the DB survive a moved data dir
            db.record_render(conn, clip_id, variant, relative, info.width, info.height, info.duration,
                             path.stat().st_size, now)
        db.set_clip_status(conn, clip_id, "rendered")
