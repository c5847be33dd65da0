"""The ``episode_render`` stage: the whole episode as one subtitled 16x9 video.

Runs when a job asks for it (option ``full_episode: true``). Writes
``<episode_dir>/full_16x9.mp4`` in the worker's scratch folder, published when complete (a
cancelled or failed render leaves nothing behind and an earlier full render in place) and records it in
``episode_renders`` (kind ``full_16x9``); the episode summary shows it as
``full_episode_render``. Captions use the job's ``caption_style``, else the config's.
"""

from __future__ import annotations

from pipeline import db, media, transcript
from pipeline.config import Settings
from pipeline.jobs import iso
from pipeline.media.render_graph import render_episode
from pipeline.stages.context import StageContext

KIND = "full_16x9"


def run(ctx: StageContext) -> None:
    info = ctx.media()
    words = transcript.all_words(transcript.load(ctx.transcript_path()))
    out_path = ctx.episode_dir / f"{KIND}.mp4"
    render_episode(ctx.source_path(), info, words, out_path, ctx.settings.paths.fonts_dir, ctx.settings.render,
                   ctx.progress, caption_style=ctx.options.get("caption_style"), scratch=ctx.scratch)
    probed = media.probe(out_path)
    relative = str(out_path.relative_to(ctx.settings.data_dir))
    ctx.write(db.record_episode_render, ctx.episode_id, KIND, relative, probed.width, probed.height,
              probed.duration, out_path.stat().st_size)
    ctx.progress(1.0)


def summary(settings: Settings, episode_id: str) -> dict | None:
    """The ``full_episode_render`` entry of the episode summary (None until one exists)."""
    with db.session(settings.app_db) as conn:
        rows = db.list_episode_renders(conn, episode_id)
    for row in rows:
        path = settings.data_dir / row["path"]
        if row["kind"] == KIND and path.exists():
            return {"path": str(path), "width": row["width"], "height": row["height"], "duration": row["duration"],
                    "size_bytes": row["size_bytes"], "created_at": iso(row["created_at"])}
    return None
