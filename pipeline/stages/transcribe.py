"""Transcribe: speech to text with word timestamps, on faster-whisper or openai-whisper.

Both engines produce the schema of ``pipeline.transcript``. The default model, ``tiny.en``,
and the multilingual ``base`` come from Python packages (``pipeline.stages.bundled_models``),
so a fresh machine transcribes offline on either engine (openai-whisper reads the same
weights through a cached one-time conversion, see ``pipeline.stages.whisper_checkpoint``). Any other model name is handed to the engine, which
may download it into ``<data_dir>/models/``: that is opt-in through the config or a job option.

Long episodes: the audio is read a window (~5 minutes) at a time, each window ending at its
quietest moment so no word is cut, and the timestamps are shifted back by the window's start.
Nothing but one window is ever held in memory (not even the whole 16 kHz episode), VAD skips
silence, and ``condition_on_previous_text`` is off by default so a bad guess cannot feed
itself into a repetition loop. Progress follows the audio position: after every decoded
segment (at most 30 s of speech) and at the end of every window.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import threading
import wave
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from pipeline import db, storage, transcript, vocabulary
from pipeline.config import TranscribeSettings
from pipeline.errors import BadInput, Cancelled, TransientError
from pipeline.stages import bundled_models, model_choice, whisper_checkpoint
from pipeline.stages.audio import audio_path
from pipeline.stages.context import StageContext

BUNDLED_MODELS = model_choice.BUNDLED_MODELS
models_dir = model_choice.models_dir
_is_path = model_choice.is_path
SAMPLE_RATE = 16_000
WINDOW_SECONDS = 300.0        # audio handed to an engine at once: bounds memory on long episodes
PROGRESS_STEP_SECONDS = 30.0  # progress (and the cancel check) at least this often in audio position
CUT_SEARCH_SECONDS = 20.0     # a window ends at the quietest 0.1 s of its last 20 s
OPENAI_PIECE_SECONDS = 30.0   # openai-whisper gets VAD speech in pieces of one decoding window
NO_SPEECH_NOTE = "No speech was detected."

_models: dict[tuple, object] = {}
_models_lock = threading.Lock()


def model_location(name: str, cache: Path | None = None) -> str:
    """A bundled model's folder ('tiny.en', or 'base' joined into the models folder ``cache`` on
    first use, by default the configured one); any other name or path unchanged."""
    if name in BUNDLED_MODELS:
        if cache is None and name != "tiny.en":
            from pipeline.config import load_settings
            cache = models_dir(load_settings().data_dir)
        return str(bundled_models.location(name, cache))
    return name


def settings_for_job(settings: TranscribeSettings, options: dict) -> TranscribeSettings:
    """The config's transcription settings with a job's ``engine``/``model``/``language`` options
    applied, and its ``vocabulary`` added to the config's."""
    changes = {key: options[key] for key in ("engine", "model") if options.get(key)}
    if options.get("language") is not None:   # "" is a choice too: auto-detect
        changes["language"] = options["language"]
    if options.get("vocabulary"):
        changes["vocabulary"] = tuple(vocabulary.merge(settings.vocabulary, vocabulary.parse(options["vocabulary"])))
    return dataclasses.replace(settings, **changes)


def resolve_device(settings: TranscribeSettings) -> tuple[str, str]:
    """(device, compute type): 'auto' picks CUDA when present, and float16 there, int8 on CPU."""
    device = settings.device
    if device == "auto":
        if settings.engine == "openai-whisper":
            import torch
            device = "cuda" if torch.cuda.is_available() else "cpu"
        else:
            import ctranslate2
            device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    compute_type = settings.compute_type
    if compute_type == "auto":
        compute_type = "float16" if device == "cuda" else "int8"
    return device, compute_type


def _threads(settings: TranscribeSettings) -> int:
    return settings.threads or os.cpu_count() or 1


def _check_model_path(name: str) -> None:
    if _is_path(name) and not Path(name).expanduser().exists():
        raise BadInput(f"Model '{name}' was not found: give a model name such as 'tiny.en' "
                       "or the path of a model that exists on this machine.")


def _english_only(name: str) -> bool:
    return name.endswith(".en") or Path(name).name.endswith(".en")


def _faster_whisper_model(settings: TranscribeSettings, cache: Path, workers: int = 1):
    """The model, loaded once per settings; ``workers`` windows can run on it at once, the
    task's threads split between them."""
    from faster_whisper import WhisperModel, available_models
    _check_model_path(settings.model)
    device, compute_type = resolve_device(settings)
    threads = max(1, _threads(settings) // workers)
    key = ("faster-whisper", settings.model, device, compute_type, threads, workers)
    with _models_lock:
        if key in _models:
            return _models[key]
        location = model_location(settings.model, cache)
        local = settings.model in BUNDLED_MODELS or _is_path(settings.model)
        if not local and "/" not in settings.model and settings.model not in available_models():
            raise BadInput(f"faster-whisper has no model '{settings.model}'; "
                           f"choose one of {', '.join(available_models())} or a model folder.")
        try:
            model = WhisperModel(str(Path(location).expanduser()) if local else location, device=device,
                                 compute_type=compute_type, cpu_threads=threads, num_workers=workers,
                                 download_root=None if local else str(cache / "faster-whisper"))
        except (RuntimeError, ValueError, OSError) as exc:
            if local:
                raise BadInput(f"'{settings.model}' is not a faster-whisper (CTranslate2) model folder "
                               f"that can be loaded ({exc}).") from None
            raise TransientError(f"Could not download or load model '{settings.model}' "
                                 f"(larger models need network access once): {exc}") from None
        _models[key] = model
        return model


def openai_checkpoint(model: str, cache: Path) -> Path | str:
    """What openai-whisper loads for ``model``: a converted checkpoint for the bundled model or a
    CTranslate2 folder, a ``.pt`` file as is, or an official name (downloaded on first use)."""
    _check_model_path(model)
    target = cache / "openai-whisper"
    if model in BUNDLED_MODELS:
        return whisper_checkpoint.cached_checkpoint(Path(model_location(model, cache)), target, model)
    path = Path(model).expanduser()
    if path.is_dir():
        return whisper_checkpoint.cached_checkpoint(path, target)
    if path.is_file():
        return path
    import whisper
    if model not in whisper.available_models():
        raise BadInput(f"openai-whisper has no model '{model}'; choose one of "
                       f"{', '.join(whisper.available_models())}, a .pt checkpoint or a model folder.")
    return model


def _openai_whisper_model(settings: TranscribeSettings, cache: Path):
    import torch
    import whisper
    device, _ = resolve_device(settings)
    key = ("openai-whisper", settings.model, device, str(cache))
    with _models_lock:
        if key in _models:
            return _models[key]
        source = openai_checkpoint(settings.model, cache)
        if settings.threads:
            torch.set_num_threads(settings.threads)
        try:
            if isinstance(source, Path):
                model = whisper_checkpoint.load(source, device)
            else:
                model = whisper.load_model(str(source), device=device, download_root=str(cache / "openai-whisper"))
        except (RuntimeError, OSError, KeyError) as exc:
            if isinstance(source, Path):
                raise BadInput(f"'{source}' is not an openai-whisper checkpoint that can be loaded ({exc}).") from None
            raise TransientError(f"Could not download or load model '{source}' "
                                 f"(larger models need network access once): {exc}") from None
        _models[key] = model
        return model


class AudioWindows:
    """16 kHz mono samples of a file, read one window at a time.

    The extract_audio stage's ``audio.wav`` (16 kHz mono 16-bit) is read straight from
    disk; any other file (a test clip, a benchmark input) is decoded whole first, which is
    fine for short files only.
    """

    def __init__(self, path: Path):
        self._wave: wave.Wave_read | None = None
        self._array: np.ndarray | None = None
        try:
            reader = wave.open(str(path), "rb")
            if (reader.getframerate(), reader.getnchannels(), reader.getsampwidth()) == (SAMPLE_RATE, 1, 2):
                self._wave, self.samples = reader, reader.getnframes()
            else:
                reader.close()
        except (wave.Error, EOFError):
            pass
        except OSError as exc:
            raise BadInput(f"The audio file '{Path(path).name}' cannot be read ({exc.strerror or exc}).") from None
        if self._wave is None:
            self._array = _decode_whole(path)
            self.samples = len(self._array)

    def read(self, start: int, count: int) -> np.ndarray:
        if self._array is not None:
            return self._array[start:start + count]
        self._wave.setpos(start)
        return np.frombuffer(self._wave.readframes(count), dtype=np.int16).astype(np.float32) / 32768.0

    def windows(self, window_seconds: float = WINDOW_SECONDS,
                search_seconds: float = CUT_SEARCH_SECONDS) -> Iterator[tuple[int, np.ndarray]]:
        """(first sample, samples) per window; each window but the last ends at a quiet moment."""
        size, search = int(window_seconds * SAMPLE_RATE), int(search_seconds * SAMPLE_RATE)
        start = 0
        while start < self.samples:
            samples = self.read(start, min(size, self.samples - start))
            if not len(samples):
                return
            if start + len(samples) < self.samples and len(samples) > search:
                samples = samples[:len(samples) - search + _quietest_point(samples[-search:])]
            yield start, samples
            start += len(samples)

    def close(self) -> None:
        if self._wave is not None:
            self._wave.close()


def _decode_whole(path: Path) -> np.ndarray:
    import av
    from faster_whisper import decode_audio
    try:
        return decode_audio(str(path), sampling_rate=SAMPLE_RATE)
    except (av.error.FFmpegError, IndexError, StopIteration) as exc:
        raise BadInput(f"'{Path(path).name}' has no audio that can be decoded ({exc}).") from None


def _quietest_point(samples: np.ndarray, frame: int = SAMPLE_RATE // 10) -> int:
    """Index of the middle of the quietest ``frame``-long stretch of ``samples``."""
    frames = len(samples) // frame
    if frames < 1:
        return len(samples)
    energy = np.square(samples[:frames * frame].reshape(frames, frame)).mean(axis=1)
    return int(np.argmin(energy)) * frame + frame // 2


def _segment(start: float, end: float, text: str, words: list[dict]) -> dict:
    return {"start": round(start, 3), "end": round(end, 3), "text": text.strip(),
            "words": [{"word": w["word"], "start": round(w["start"], 3), "end": round(w["end"], 3),
                       "probability": round(w["probability"], 4)} for w in words]}


def _faster_whisper_window(model, samples: np.ndarray, settings: TranscribeSettings,
                           language: str | None) -> tuple[Iterator[dict], Callable[[], str]]:
    """Segments of one window (times relative to it), and a function giving the language used."""
    segments, info = model.transcribe(samples, language=language, beam_size=settings.beam_size,
                                      word_timestamps=True, vad_filter=settings.vad_filter,
                                      condition_on_previous_text=settings.condition_on_previous_text,
                                      hotwords=vocabulary.hint(list(settings.vocabulary)))

    def generate():
        for s in segments:   # a generator: decoding happens as we iterate
            words = [{"word": w.word, "start": float(w.start), "end": float(w.end),
                      "probability": float(w.probability)} for w in (s.words or [])]
            yield _segment(float(s.start), float(s.end), s.text, words)
    return generate(), lambda: info.language


def _openai_whisper_window(model, samples: np.ndarray, settings: TranscribeSettings,
                           language: str | None) -> tuple[Iterator[dict], Callable[[], str]]:
    """Like faster-whisper's VAD filter: speech only, in pieces of up to 30 s, times mapped back."""
    import whisper
    from faster_whisper.vad import SpeechTimestampsMap, VadOptions, get_speech_timestamps

    step = int(OPENAI_PIECE_SECONDS * SAMPLE_RATE)
    beam = settings.beam_size if settings.beam_size > 1 else None   # None: openai-whisper's greedy decoder
    if settings.vad_filter:
        chunks = get_speech_timestamps(samples, VadOptions(max_speech_duration_s=OPENAI_PIECE_SECONDS))
    else:   # the whole window in one call: openai-whisper moves through it by its own timestamps
        chunks = [{"start": 0, "end": len(samples)}]
    detected = [language or ("en" if not model.is_multilingual else None)]
    prompt = vocabulary.hint(list(settings.vocabulary))   # every piece is a new call: each gets the hint

    def generate():
        for group in _group_chunks(chunks, step):
            piece = np.concatenate([samples[c["start"]:c["end"]] for c in group])
            result = whisper.transcribe(
                model, piece, language=detected[0], beam_size=beam, best_of=beam,
                word_timestamps=True, condition_on_previous_text=settings.condition_on_previous_text,
                initial_prompt=prompt, fp16=next(model.parameters()).is_cuda, verbose=None)
            detected[0] = detected[0] or result["language"]
            mapping = SpeechTimestampsMap(group, SAMPLE_RATE)
            for s in result["segments"]:
                words = [dict(w) for w in s.get("words", [])]
                for w in words:   # keep both ends of a word in the same VAD chunk, as faster-whisper does
                    chunk = mapping.get_chunk_index((w["start"] + w["end"]) / 2)
                    w["start"] = float(mapping.get_original_time(w["start"], chunk))
                    w["end"] = float(mapping.get_original_time(w["end"], chunk))
                    w["probability"] = float(w["probability"])
                if words:
                    yield _segment(words[0]["start"], words[-1]["end"], s["text"], words)
                elif s["text"].strip():
                    yield _segment(mapping.get_original_time(s["start"]),
                                   mapping.get_original_time(s["end"], is_end=True), s["text"], [])
    return generate(), lambda: detected[0] or "en"


def _group_chunks(chunks: list[dict], max_samples: int) -> Iterator[list[dict]]:
    """Consecutive speech chunks grouped into pieces of at most ``max_samples`` (a longer chunk alone)."""
    group: list[dict] = []
    size = 0
    for chunk in chunks:
        length = chunk["end"] - chunk["start"]
        if group and size + length > max_samples:
            yield group
            group, size = [], 0
        group.append(chunk)
        size += length
    if group:
        yield group


def transcribe_file(path: Path, settings: TranscribeSettings, duration: float, on_progress=None,
                    language: str | None = None, cache: Path | None = None) -> dict:
    """Transcribe one audio file into the transcript schema (see ``pipeline.transcript``).

    ``cache`` is the models folder (converted checkpoints, opted-in downloads); by default
    the one under the configured data dir.
    """
    if cache is None:
        from pipeline.config import load_settings
        cache = models_dir(load_settings().data_dir)
    language = language or settings.language or None
    if language and language != "en" and _english_only(settings.model):
        raise BadInput(f"Model '{settings.model}' only understands English; choose a multilingual model "
                       f"(such as 'base') to transcribe '{language}'.")
    audio = AudioWindows(path)
    try:
        parallel = _parallel_windows(settings, audio.samples)
        if settings.engine == "faster-whisper":
            model, window_fn = _faster_whisper_model(settings, cache, parallel), _faster_whisper_window
        elif settings.engine == "openai-whisper":
            model, window_fn = _openai_whisper_model(settings, cache), _openai_whisper_window
        else:
            raise BadInput(f"Unknown transcription engine '{settings.engine}'; use faster-whisper or openai-whisper.")
        total = audio.samples / SAMPLE_RATE
        progress = _PositionReporter(on_progress, duration or total)
        segments: list[dict] = []
        run_windows = _windows_in_parallel if parallel > 1 else _windows_in_turn
        detected = run_windows(audio, model, window_fn, settings, language, parallel, segments, progress)
    finally:
        audio.close()
    engine_default = "en" if _english_only(settings.model) else None
    doc = {"language": language or detected or engine_default or "", "duration": round(total, 3),
           "engine": settings.engine, "model": settings.model, "segments": segments}
    if settings.vocabulary:
        doc["vocabulary"] = list(settings.vocabulary)
        vocabulary.fix_casing(doc, doc["vocabulary"])
    if not any(seg["words"] for seg in segments):
        doc["note"] = NO_SPEECH_NOTE
    return doc


def _parallel_windows(settings: TranscribeSettings, samples: int) -> int:
    """How many windows faster-whisper transcribes at once: one per thread of the task's budget
    once the audio has several windows (a small model keeps one core busy far better than it
    spreads one window over several), else one window on all the threads."""
    if settings.engine != "faster-whisper" or samples <= WINDOW_SECONDS * SAMPLE_RATE:
        return 1
    return max(1, min(_threads(settings), int(samples / (WINDOW_SECONDS * SAMPLE_RATE)) + 1))


def _windows_in_turn(audio: AudioWindows, model, window_fn, settings: TranscribeSettings, language: str | None,
                     parallel: int, segments: list[dict], progress: _PositionReporter) -> str | None:
    """Transcribe the windows one after another into ``segments``; returns the language detected."""
    detected = None
    for first, samples in audio.windows():
        offset = first / SAMPLE_RATE
        window_segments, used_language = window_fn(model, samples, settings, language or detected)
        for seg in window_segments:
            _shift(seg, offset)
            segments.append(seg)
            progress.advance(seg["end"])
        window_language = used_language()
        if detected is None and any(s["words"] for s in segments):
            detected = window_language   # fixed from the first speech on, so windows agree
        progress.advance(offset + len(samples) / SAMPLE_RATE)
    return detected


def _windows_in_parallel(audio: AudioWindows, model, window_fn, settings: TranscribeSettings,
                         language: str | None, parallel: int, segments: list[dict],
                         progress: _PositionReporter) -> str | None:
    """Transcribe ``parallel`` windows at a time, in order; returns the language detected.

    At most ``parallel`` + 1 windows are in memory. The first window runs alone when the
    language must be detected, so every window uses the same one. A cancel (raised by the
    progress callback, which this thread calls at least every second) stops the running
    windows at their next segment.
    """
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
    stop = threading.Event()
    detected = [None]

    def one(samples: np.ndarray, lang: str | None) -> tuple[list[dict], str]:
        window_segments, used_language = window_fn(model, samples, settings, lang)
        done = []
        for seg in window_segments:
            if stop.is_set():
                raise Cancelled("Transcription was stopped.")
            done.append(seg)
        return done, used_language()

    def collect(offset: float, length: float, future) -> None:
        window_segments, window_language = future.result()
        for seg in window_segments:
            _shift(seg, offset)
            segments.append(seg)
        if detected[0] is None and window_segments and any(seg["words"] for seg in window_segments):
            detected[0] = window_language
        progress.advance(offset + length)

    pending = []
    needs_language = not language and not _english_only(settings.model)
    with ThreadPoolExecutor(parallel, thread_name_prefix="transcribe-window") as pool:
        try:
            for first, samples in audio.windows():
                offset, length = first / SAMPLE_RATE, len(samples) / SAMPLE_RATE
                pending.append((offset, length, pool.submit(one, samples, language or detected[0])))
                while pending and (len(pending) >= parallel or (needs_language and detected[0] is None)):
                    wait([pending[0][2]], timeout=1.0, return_when=FIRST_COMPLETED)
                    if pending[0][2].done():
                        collect(*pending.pop(0))
                    else:
                        progress.advance(progress.position)   # a cancel check while the windows run
            while pending:
                wait([pending[0][2]], timeout=1.0)
                if pending[0][2].done():
                    collect(*pending.pop(0))
                else:
                    progress.advance(progress.position)
        except BaseException:
            stop.set()   # running windows stop at their next segment; queued ones never start
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    return detected[0]


def _shift(segment: dict, offset: float) -> None:
    segment["start"] = round(segment["start"] + offset, 3)
    segment["end"] = round(segment["end"] + offset, 3)
    for w in segment["words"]:
        w["start"], w["end"] = round(w["start"] + offset, 3), round(w["end"] + offset, 3)


class _PositionReporter:
    """Reports the audio position at least every ``PROGRESS_STEP_SECONDS`` of audio, even across
    silence that VAD skips in an instant (each report is also a cancel check)."""

    def __init__(self, on_progress, duration: float):
        self.on_progress, self.duration, self.position = on_progress, duration, 0.0

    def advance(self, position: float) -> None:
        if not self.on_progress or self.duration <= 0:
            return
        while self.position + PROGRESS_STEP_SECONDS < position:
            self._report(self.position + PROGRESS_STEP_SECONDS)
        self._report(max(position, self.position))

    def _report(self, position: float) -> None:
        self.position = position
        self.on_progress(float(min(0.99, max(0.0, position / self.duration))))


def run(ctx: StageContext) -> None:
    """Transcribe the episode's audio with the job's engine/model/language; the old transcript
    stays in place until every format of the new one is written, and is then kept as
    ``transcript.previous.json``."""
    settings = settings_for_job(ctx.settings.transcribe, ctx.options)
    # A job's model was checked when it was queued; this holds the config's too to allow_downloads.
    model_choice.check(settings.model, ctx.settings.data_dir, settings.allow_downloads, trusted=True)
    info = ctx.media()
    result = transcribe_file(audio_path(ctx), settings, info.duration, ctx.progress,
                             cache=models_dir(ctx.settings.data_dir))
    current = ctx.transcript_path("json")
    with storage.scratch_space(ctx.scratch) as work:
        if current.exists():   # kept so the review page can show what the new transcript changed
            previous = storage.previous_transcript_path(ctx.settings.data_dir, ctx.episode_id)
            shutil.copyfile(current, work / previous.name)
            storage.publish(work / previous.name, previous)
        transcript.write_all(result, {fmt: ctx.transcript_path(fmt) for fmt in transcript.FORMATS}, work)
    if result["language"]:
        ctx.write(db.set_episode_language, ctx.episode_id, result["language"])
    ctx.progress(1.0)
