"""Extract audio: 16 kHz mono PCM, what every Whisper engine wants."""

from __future__ import annotations

import os

import ffmpeg

from pipeline import media, storage
from pipeline.context import StageContext
from pipeline.errors import BadInput

SAMPLE_RATE = 16_000


def audio_path(ctx: StageContext):
    return ctx.episode_dir / "audio.wav"


def run(ctx: StageContext) -> None:
    info = ctx.media()
    if not info.has_audio:
        raise BadInput("This file has no audio track, so there is nothing to transcribe.")
    final = audio_path(ctx)
    partial = storage.temp_path(final)
    graph = (ffmpeg.input(str(ctx.source_path()))
             .output(str(partial), vn=None, ac=1, ar=SAMPLE_RATE, acodec="pcm_s16le", f="wav"))
    try:
        media.run(graph, info.duration, ctx.progress)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, final)
