"""Extract audio: 16 kHz mono PCM, what every Whisper engine wants.

The decoded audio is also the episode's true length: a file whose header claims hours
but holds seconds (a broken muxer, a truncated copy) gets its real duration here, so
chapters, clips and ETAs are not planned over time that does not exist.
"""

from __future__ import annotations

import dataclasses
import json
import logging

import ffmpeg

from pipeline import db, media, storage
from pipeline.errors import BadInput
from pipeline.stages.context import StageContext

SAMPLE_RATE = 16_000
log = logging.getLogger("clipdesk.audio")


def audio_path(ctx: StageContext):
    return ctx.episode_dir / "audio.wav"


def run(ctx: StageContext) -> None:
    info = ctx.media()
    if not info.has_audio:
        raise BadInput("This file has no audio track, so there is nothing to transcribe.")
    final = audio_path(ctx)
    with storage.scratch_space(ctx.scratch) as work:
        partial = work / final.name
        graph = (ffmpeg.input(str(ctx.source_path()))
                 .output(str(partial), vn=None, ac=1, ar=SAMPLE_RATE, acodec="pcm_s16le", f="wav"))
        media.run(graph, info.duration, ctx.progress)
        storage.publish(partial, final)
    _correct_declared_duration(ctx, info, media.probe(final).duration)


def _correct_declared_duration(ctx: StageContext, info: media.MediaInfo, decoded: float) -> None:
    if decoded >= info.duration / 2:   # audio may legitimately end a little before the picture
        return
    log.warning("episode %s declares %.1f s but holds %.1f s of audio; using %.1f s",
                ctx.episode_id, info.duration, decoded, decoded)
    corrected = dataclasses.replace(info, duration=decoded)
    ctx.write(db.set_episode_duration, ctx.episode_id, decoded, json.dumps(corrected.to_dict()))
