"""Request bodies. Unknown fields are refused (``extra='forbid'``) so a misspelt option is named
in a 422, never ignored; ranges and choices are checked by ``pipeline.jobs.options`` (one rule
for every shell)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from pipeline.jobs.options import ASPECTS, ENGINES, REFRAME_MODES
from pipeline.jobs.options import NAMES as JOB_OPTION_FIELDS


class JobOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    engine: Literal[ENGINES] | None = Field(None, description="transcription engine")
    model: str | None = Field(None, description="Whisper model name or path (tiny.en is bundled)")
    language: str | None = Field(None, description="force the spoken language, e.g. en")
    max_clips: int | None = Field(None, description="number of clips to suggest (1-10)")
    min_clip_seconds: float | None = Field(None, description="shortest clip")
    max_clip_seconds: float | None = Field(None, description="longest clip")
    aspects: list[Literal[ASPECTS]] | None = Field(None, description="aspect ratios to render")
    caption_style: str | None = Field(None, description="caption preset name (render.caption_presets)")
    reframe: Literal[REFRAME_MODES] | None = Field(None, description="how 9x16 follows the picture")
    full_episode: bool | None = Field(None, description="also render the whole episode with captions")
    target_stage: Literal["transcribe", "enrich", "render"] | None = Field(
        None, description="the last stage to run: transcribe gives a transcript-only job (default render)")
    webhook_url: str | None = Field(None, description="POSTed the job JSON and episode summary when the job"
                                                      " succeeds or fails (signed like webhooks.urls)")
    remove_silences: bool | None = Field(None, description="jump cuts: cut pauses longer than"
                                                            " render.max_pause_seconds inside clips")
    title_overlay_seconds: float | None = Field(None, description="show the clip's title as a banner for this"
                                                                  " many seconds (0 = off)")
    vocabulary: list[str] | str | None = Field(None, description="names, brands, jargon to spell right (a list or"
                                                                 " comma-separated); added to transcribe.vocabulary")

    def options(self) -> dict:
        return {k: v for k, v in self.model_dump().items() if k in JOB_OPTION_FIELDS and v is not None}


class SubmitRequest(JobOptions):
    source: str | None = Field(None, description="http(s) URL, or a path on the server under paths.allowed_source_dirs"
                                                  " (with multipart, the `file` part instead)")
    title: str | None = Field(None, max_length=300)
    priority: int | None = Field(None, ge=0, le=1000, description="higher runs first (default 50)")
    allow_duplicate: bool = Field(False, description="process a URL again even if an episode came from it")


class ReprocessRequest(JobOptions):
    from_stage: Literal["ingest", "extract_audio", "transcribe", "enrich", "render", "episode_render"] = "transcribe"
    priority: int | None = Field(None, ge=0, le=1000)


class EpisodePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str | None = None
    summary: str | None = None
    keywords: list[str] | None = None


class ClipPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["approved", "rejected", "suggested"] | None = None
    start: float | None = Field(None, description="trim: new start in seconds (with end)")
    end: float | None = Field(None, description="trim: new end in seconds (with start)")
    reframe: Literal[REFRAME_MODES] | None = None
    caption_style: str | None = None
    remove_silences: bool | None = Field(None, description="jump cuts for this clip (re-renders)")
