"""Render one clip into all its variants with a single ffmpeg process.

The source is seeked (fast input seeking) and decoded once; the video is split into one
branch per aspect (9x16, 16x9, optional 1x1), each split again into clean and subtitled
outputs, and the loudness-normalised audio is split to all of them. A one-frame output of
the clean 16x9 branch is the thumbnail. Outputs are written in a scratch folder and published
into place (``storage.publish``) only on success.

- Reframing a wider source into a narrower frame: ``center`` crop, ``face`` (a crop whose
  x is an ffmpeg expression of time planned by ``reframe.follow_face``) or ``fit`` (the
  whole frame over a blurred copy). A narrower source (portrait into 16x9) always fits.
- Jump cuts (``remove_silences``): ``jump_cuts.plan`` finds the pauses longer than
  ``render.max_pause_seconds`` (and, with ``render.cut_filler_words``, the filler words); the
  kept spans are trimmed and joined inside the same graph (video concatenated, audio joined
  with a 10 ms crossfade so no join clicks), and the captions and face tracks are moved onto
  the cut timeline.
- Loudness: a quick audio-only pass measures EBU R128 integrated loudness and true peak
  (``ebur128``); the render applies the gain to the configured target, with a limiter
  only when the gain would push peaks past ``true_peak_db``.
- Audio-only sources render over the episode's cover art, a configured image or a colour,
  with a waveform or spectrum of the audio.
- ``h264_nvenc`` falls back to libx264 when the hardware encoder fails.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import tempfile
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import ffmpeg

from pipeline import media, storage
from pipeline.config import PROJECT_ROOT, CaptionPreset, RenderSettings
from pipeline.errors import BadInput, Cancelled, PipelineError, TransientError
from pipeline.jobs.options import REFRAME_MODES
from pipeline.media import MediaInfo, jump_cuts, reframe, speech_envelope
from pipeline.media.captions import build_ass, build_srt

log = logging.getLogger("clipdesk.render")

SIZES = {"9x16": (1080, 1920), "16x9": (1920, 1080), "1x1": (1080, 1080)}
DEFAULT_ASPECTS = ("9x16", "16x9")
AUDIO_ONLY_FPS = 30
SILENCE_LUFS = -60.0       # quieter than this is silence: no gain is applied
MAX_CORRECTION_DB = 6.0    # most the limiter's loudness loss is made up for
LOUDNESS_PASSES = 4        # measurements at most: the source, then up to three corrections
LOUDNESS_TOLERANCE = 0.3   # LU; close enough to stop correcting
NVENC_PRESETS = {"ultrafast": "p1", "superfast": "p1", "veryfast": "p2", "faster": "p3", "fast": "p4",
                 "medium": "p4", "slow": "p5", "slower": "p6", "veryslow": "p7"}
# Share of a clip's progress spent before the encode starts.
LOUDNESS_SHARE, FACE_SHARE = 0.03, 0.12
FOLLOWING_MODES = ("face", "split", "auto")   # reframe modes that run the face detector
DIVIDER = 4                # pixels of the line between the two people in ``split``
DIVIDER_COLOR = "white"
CROSSFADE = 0.01           # seconds of audio crossfade at each jump cut


def variants_for(aspects) -> tuple[str, ...]:
    return tuple(f"{kind}_{aspect}" for aspect in aspects for kind in ("clean", "subtitled"))


VARIANTS = variants_for(DEFAULT_ASPECTS)


def default_aspects(render: RenderSettings) -> tuple[str, ...]:
    return (*DEFAULT_ASPECTS, "1x1") if render.enable_1x1 else DEFAULT_ASPECTS


def render_clip(source: Path, info: MediaInfo, start: float, end: float, words: list[dict],
                out_dir: Path, fonts_dir: Path, settings: RenderSettings,
                on_progress: Callable[[float], None] | None = None, *, aspects=None,
                reframe_mode: str | None = None, caption_style: str | None = None,
                remove_silences: bool | None = None, title: str = "",
                title_seconds: float | None = None, scratch: Path | None = None) -> dict[str, Path]:
    """Render ``[start, end)`` of ``source`` into ``out_dir``; return {variant: mp4 path}.

    ``aspects``, ``reframe_mode``, ``caption_style``, ``remove_silences`` and
    ``title_seconds`` (how long ``title`` shows as a banner) default to the config. Also
    writes captions.srt, thumb.jpg and the captions_<aspect>.ass files burned in. Every file is
    written in ``scratch`` (default: a hidden folder in ``out_dir``) and published when complete.
    """
    start, end = max(0.0, start), min(end, info.duration)
    if start >= info.duration:
        raise BadInput(f"The clip starts at {start:.2f}s, outside the media ({info.duration:.2f}s long).")
    if end <= start:
        raise BadInput(f"The clip {start:.2f}s-{end:.2f}s is empty.")
    aspects = tuple(aspects or default_aspects(settings))
    unknown = [a for a in aspects if a not in SIZES]
    if unknown:
        raise BadInput(f"Unknown aspect {unknown[0]!r}; use {', '.join(SIZES)}.")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    finals = {variant: out_dir / f"{variant}.mp4" for variant in variants_for(aspects)}
    timeline = render_outputs(source, info, start, end - start, words, finals, out_dir / "thumb.jpg", fonts_dir,
                              settings, on_progress, reframe_mode=reframe_mode, caption_style=caption_style,
                              remove_silences=remove_silences, title=title, title_seconds=title_seconds,
                              scratch=scratch)
    with storage.scratch_space(scratch or out_dir, prefix=".render-") as work:
        srt = work / "captions.srt"
        srt.write_text(build_srt(timeline.words(words, start), 0.0, timeline.duration), encoding="utf-8")
        storage.publish(srt, out_dir / srt.name)
    return finals


def render_episode(source: Path, info: MediaInfo, words: list[dict], out_path: Path, fonts_dir: Path,
                   settings: RenderSettings, on_progress: Callable[[float], None] | None = None,
                   caption_style: str | None = None, scratch: Path | None = None) -> Path:
    """The whole episode as one subtitled 16x9 file at ``out_path`` (written in ``scratch``, then published)."""
    render_outputs(source, info, 0.0, info.duration, words, {"subtitled_16x9": Path(out_path)}, None, fonts_dir,
                   settings, on_progress, caption_style=caption_style, ass_prefix=f"{Path(out_path).stem}_captions_",
                   remove_silences=False, scratch=scratch)   # the whole episode is the record: never jump-cut
    return Path(out_path)


def render_outputs(source: Path, info: MediaInfo, start: float, duration: float, words: list[dict],
                   finals: dict[str, Path], thumb: Path | None, fonts_dir: Path, settings: RenderSettings,
                   on_progress: Callable[[float], None] | None = None, *, reframe_mode: str | None = None,
                   caption_style: str | None = None, gain_db: float | None = None,
                   ass_prefix: str = "captions_", remove_silences: bool | None = None,
                   snap_words: bool = True, title: str = "", title_seconds: float | None = None,
                   scratch: Path | None = None) -> jump_cuts.Timeline:
    """The core: any set of ``{variant: final path}`` (+ thumbnail) from one ffmpeg process.

    ffmpeg writes into a fresh folder in ``scratch`` (None: a hidden one beside the outputs); the
    files are published to their final paths only once all of them are complete.
    Returns the timeline rendered: the spans of the clip kept (all of it without jump cuts).
    ``snap_words=False`` lights caption words at Whisper's own times (bench/caption_timing.py).
    """
    mode = reframe_mode or settings.reframe
    if mode not in REFRAME_MODES:
        raise BadInput(f"Unknown reframe mode {mode!r}; use {', '.join(REFRAME_MODES)}.")
    preset = preset_for(settings, caption_style)
    info = displayed(source, info)
    aspects = tuple(dict.fromkeys(variant.split("_", 1)[1] for variant in finals))
    out_dir = next(iter(finals.values())).parent
    out_dir.mkdir(parents=True, exist_ok=True)
    progress = _Phases(on_progress)
    if gain_db is None:
        gain_db = loudness_gain(source, info, start, duration, settings, progress.part(0.0, LOUDNESS_SHARE))
    envelope = speech_envelope.Envelope.of(source, start, duration) if info.has_audio and words else None
    if envelope is not None and snap_words:   # caption highlights on the voice, not on Whisper's early starts
        words = envelope.snap([w for w in words if w["end"] > start and w["start"] < start + duration], start)
    cutting = settings.remove_silences if remove_silences is None else remove_silences
    if cutting and info.has_audio:
        envelope = envelope or speech_envelope.Envelope.of(source, start, duration)
        timeline = jump_cuts.plan(envelope, start, duration, words, settings.max_pause_seconds,
                                  settings.cut_filler_words)
    else:
        timeline = jump_cuts.uncut(duration)
    length = timeline.duration
    tracks = {}
    narrow = [a for a in aspects if _wider_than(info, a)] if info.has_video else []
    if mode in FOLLOWING_MODES and narrow:   # one detection pass, one camera plan per crop width
        samples = reframe.detect_all_faces(source, start, duration,
                                           progress.part(LOUDNESS_SHARE, LOUDNESS_SHARE + FACE_SHARE))
        samples = [(timeline.to_new(t), faces) for t, faces in samples if timeline.to_new(t) is not None]
        tracks = {aspect: _framing(mode, samples, _crop_fraction(info, aspect)) for aspect in narrow}
    banner = settings.title_overlay_seconds if title_seconds is None else title_seconds
    encode_report = progress.part(LOUDNESS_SHARE + (FACE_SHARE if tracks else 0.0), 1.0)
    with storage.scratch_space(scratch or out_dir, prefix=".render-") as work:
        ass_files = {}
        for aspect in aspects:
            if f"subtitled_{aspect}" in finals:
                width, height = SIZES[aspect]
                ass_files[aspect] = work / f"{ass_prefix}{aspect}.ass"
                script = build_ass(timeline.words(words, start), 0.0, length, width, height, preset, Path(fonts_dir),
                                   title=title, title_seconds=banner)
                ass_files[aspect].write_text(script, encoding="utf-8")
        temps = {final: work / final.name for final in [*finals.values(), *([thumb] if thumb else [])]}
        background = _background_image(source, info, settings, work)

        def graph(encoder: str):
            return _graph(source, info, start, duration, timeline, ass_files, Path(fonts_dir), settings, mode,
                          tracks, gain_db, background, encoder, {variant: temps[path] for variant, path in finals.items()},
                          temps[thumb] if thumb else None)
        _run_with_fallback(graph, length, encode_report, settings.encoder)
        for ass in ass_files.values():   # kept beside the renders: what was burned in
            storage.publish(ass, out_dir / ass.name)
        for final, temp in temps.items():
            storage.publish(temp, final)
    return timeline


def preset_for(settings: RenderSettings, name: str | None) -> CaptionPreset:
    name = name or settings.caption_preset
    if name not in settings.caption_presets:
        raise BadInput(f"There is no caption style '{name}'; use one of {', '.join(settings.caption_presets)}.")
    return settings.caption_presets[name]


# --- loudness -----------------------------------------------------------------------------

def measure_loudness(source: Path, start: float, duration: float,
                     on_progress: Callable[[float], None] | None = None, shape=None) -> tuple[float, float]:
    """(integrated loudness in LUFS, true peak in dBTP) of the span, from ffmpeg's ebur128.

    ``shape`` (audio stream -> audio stream) measures the span after that processing.
    """
    with tempfile.TemporaryDirectory() as tmp:
        stats = Path(tmp) / "r128.txt"
        audio = ffmpeg.input(str(source), ss=start, t=duration).audio
        graph = ((shape(audio) if shape else audio)
                 .filter("ebur128", metadata=1, peak="true")
                 .filter("ametadata", mode="print", file=str(stats))
                 .output(os.devnull, f="null"))
        media.run(graph, duration, on_progress)
        integrated, peak = -70.0, 0.0
        for line in stats.read_text(encoding="utf-8", errors="replace").splitlines():
            key, _, value = line.partition("=")
            try:
                number = float(value)
            except ValueError:
                continue
            if key == "lavfi.r128.I":
                integrated = number
            elif key.startswith("lavfi.r128.true_peaks_ch"):   # linear amplitude
                peak = max(peak, number)
    return integrated, 20 * math.log10(peak) if peak > 0 else -120.0


def loudness_gain(source: Path, info: MediaInfo, start: float, duration: float, settings: RenderSettings,
                  on_progress: Callable[[float], None] | None = None) -> float:
    """dB to add so the span reaches the target loudness (0 for silence or no audio).

    When the limiter has to catch peaks it also takes some loudness away, so the span is
    measured again through gain + limiter and the gain corrected, a few times at most
    (audio-only passes: cheap next to the video encode).
    """
    if not info.has_audio:
        return 0.0
    integrated, peak = measure_loudness(source, start, duration, _pass(on_progress, 0))
    if integrated < SILENCE_LUFS:
        return 0.0
    gain = settings.loudness_lufs - integrated
    if peak + gain <= settings.true_peak_db - 1.0:
        return gain
    for attempt in range(1, LOUDNESS_PASSES):
        limited, _ = measure_loudness(source, start, duration, _pass(on_progress, attempt),
                                      shape=lambda audio, gain=gain: _normalise(audio, gain, settings))
        miss = settings.loudness_lufs - limited
        if limited < SILENCE_LUFS or abs(miss) < LOUDNESS_TOLERANCE:
            break
        gain = min(settings.loudness_lufs - integrated + MAX_CORRECTION_DB, gain + miss)
    return gain


def _pass(on_progress, index: int):
    if on_progress is None:
        return None
    return lambda fraction: on_progress((index + fraction) / LOUDNESS_PASSES)


def _normalise(audio, gain_db: float, settings: RenderSettings):
    """Gain to the target, then a limiter (no auto-levelling, delay compensated) so peaks stay
    under the true-peak ceiling; it only acts on the few peaks above it."""
    audio = audio.filter("volume", volume=f"{gain_db:.2f}dB")
    ceiling = 10 ** ((settings.true_peak_db - 1.0) / 20)   # sample peaks: keep a margin for inter-sample peaks
    return audio.filter("alimiter", limit=f"{max(0.0625, ceiling):.4f}", level=0, latency=1, attack=5, release=50)


# --- the filter graph -----------------------------------------------------------------------

def _graph(source: Path, info: MediaInfo, start: float, duration: float, timeline: jump_cuts.Timeline,
           ass_files: dict[str, Path], fonts_dir: Path, settings: RenderSettings, mode: str, tracks: dict, gain_db: float,
           background: Path | None, encoder: str, outputs: dict[str, Path], thumb: Path | None):
    """The ffmpeg-python graph with every requested output (and the thumbnail)."""
    source_in = ffmpeg.input(str(source), ss=start, t=duration, **_decode_threads(settings))
    length = timeline.duration
    fps = info.fps if info.has_video and 0 < info.fps <= 240 else AUDIO_ONLY_FPS
    aspects = list(dict.fromkeys(variant.split("_", 1)[1] for variant in outputs))
    visual = not info.has_video and info.has_audio and settings.audio_visual != "none"
    audio_branches = []
    if info.has_audio:
        audio = _normalise(_cut_audio(source_in.audio, timeline), gain_db, settings)
        audio_branches = _split(audio, len(outputs) + (1 if visual else 0), "asplit")
    frames = _frames(source_in, info, length, timeline, aspects, mode, tracks, settings, fps, background,
                     audio_branches.pop() if visual else None)
    encode = _encoder_args(encoder, settings, fps, length, len(outputs))
    if info.has_audio:
        encode.update(acodec="aac", audio_bitrate=settings.audio_bitrate)
    thumb_aspect = "16x9" if "16x9" in aspects else aspects[0]
    streams = []
    for aspect in aspects:
        wanted = [v for v in outputs if v.split("_", 1)[1] == aspect]
        branches = _split(frames[aspect], len(wanted) + (1 if thumb and aspect == thumb_aspect else 0), "split")
        for variant, branch in zip(wanted, branches, strict=False):
            if variant.startswith("subtitled"):
                # Keyword args only: ffmpeg-python escapes positional filter args twice, which
                # breaks paths holding quotes or colons.
                branch = branch.filter("ass", filename=str(ass_files[aspect]), fontsdir=str(fonts_dir))
            parts = [branch, audio_branches.pop(0)] if audio_branches else [branch]
            streams.append(ffmpeg.output(*parts, str(outputs[variant]), **encode))
        if thumb and aspect == thumb_aspect:
            streams.append(branches[-1].output(str(thumb), vframes=1, update=1, **{"q:v": 3}))
    return ffmpeg.merge_outputs(*streams)


def _encoder_args(encoder: str, settings: RenderSettings, fps: float, duration: float, outputs: int) -> dict:
    """Per-output encoder options. The task's ffmpeg threads (``render.threads``, set per task
    from the worker count, else all cores) are split across the encoders of one render (at
    least one each) instead of x264's default of 1.5 threads per core each: the encoders
    already run in parallel, and fewer frame threads waste less."""
    args = {"movflags": "+faststart", "r": str(Fraction(fps).limit_denominator(1001)), "t": f"{duration:.3f}"}
    if encoder == "h264_nvenc":
        args.update(vcodec="h264_nvenc", preset=NVENC_PRESETS[settings.preset], rc="vbr", cq=settings.crf,
                    **{"b:v": 0})
    else:
        args.update(vcodec="libx264", preset=settings.preset, crf=settings.crf)
        if settings.x264_params:
            args["x264-params"] = settings.x264_params
        args["threads"] = max(1, (settings.threads or os.cpu_count() or 1) // outputs)
    return args


def _decode_threads(settings: RenderSettings) -> dict:
    """Decoder threads for the source: the task's budget when set, else ffmpeg's own choice."""
    return {"threads": settings.threads} if settings.threads else {}


def _run_with_fallback(graph: Callable[[str], object], duration: float, report, encoder: str) -> None:
    try:
        media.run(graph(encoder), duration, report)
    except (Cancelled, TransientError):
        raise
    except PipelineError as exc:
        if encoder == "libx264":
            raise
        log.warning("encoder %s failed (%s); rendering with libx264 instead", encoder, exc)
        media.run(graph("libx264"), duration, report)


def _split(stream, count: int, kind: str) -> list:
    if count <= 1:
        return [stream] * count
    node = stream.filter_multi_output(kind, count)
    return [node[i] for i in range(count)]


def _frames(source_in, info: MediaInfo, duration: float, timeline: jump_cuts.Timeline, aspects: list[str],
            mode: str, tracks: dict,
            settings: RenderSettings, fps: float, background: Path | None, audio_for_visual) -> dict:
    """One video stream per aspect at its final size, square pixels, yuv420p."""
    frames = {}
    if info.has_video:
        # Make pixels square first (a no-op for most sources) so crop/fit see the display shape.
        video = _cut_video(source_in.video, timeline).filter("scale", "trunc(iw*sar/2)*2", "ih").filter("setsar", 1)
        for aspect, branch in zip(aspects, _split(video, len(aspects), "split"), strict=True):
            frames[aspect] = _reframe(branch, info, aspect, mode, tracks.get(aspect))
    else:
        visuals = _split(_visual(audio_for_visual, settings, fps), len(aspects), "split") if audio_for_visual else []
        for i, aspect in enumerate(aspects):
            width, height = SIZES[aspect]
            if background:
                bg = _cover(ffmpeg.input(str(background), loop=1, framerate=fps, t=f"{duration:.3f}").video,
                            width, height).filter("eq", brightness=-0.12)
            else:
                color = "0x" + settings.background_color.lstrip("#")
                bg = ffmpeg.input(f"color=c={color}:s={width}x{height}:r={fps}:d={duration:.3f}", f="lavfi").video
            if visuals:
                bg = ffmpeg.overlay(bg, visuals[i], x="(W-w)/2", y="(H-h)*0.4", eof_action="pass")
            frames[aspect] = bg
    return {aspect: stream.filter("setsar", 1).filter("format", "yuv420p") for aspect, stream in frames.items()}


def _cut_video(video, timeline: jump_cuts.Timeline):
    """The kept spans, back to back (nothing added when nothing is cut)."""
    if not timeline.cuts:
        return video
    parts = _split(video, len(timeline.spans), "split")
    return ffmpeg.concat(*[part.trim(start=start, end=end).setpts("PTS-STARTPTS")
                           for part, (start, end) in zip(parts, timeline.spans, strict=True)], v=1, a=0)


def _cut_audio(audio, timeline: jump_cuts.Timeline):
    """The kept spans joined with a short crossfade. Each span but the last takes
    ``CROSSFADE`` more audio (from the pause being cut), which the crossfade uses up, so the
    audio stays as long as the video."""
    if not timeline.cuts:
        return audio
    parts = _split(audio, len(timeline.spans), "asplit")
    last = len(timeline.spans) - 1
    pieces = [part.filter("atrim", start=start, end=end + (CROSSFADE if i < last else 0.0))
              .filter("asetpts", "PTS-STARTPTS")
              for i, (part, (start, end)) in enumerate(zip(parts, timeline.spans, strict=True))]
    joined = pieces[0]
    for piece in pieces[1:]:
        joined = ffmpeg.filter([joined, piece], "acrossfade", d=CROSSFADE, c1="tri", c2="tri")
    return joined


def _visual(audio, settings: RenderSettings, fps: float):
    """A 1080x360 picture of the audio, on a transparent background."""
    if settings.audio_visual == "spectrum":
        return (audio.filter("showspectrum", s="1080x360", mode="combined", slide="scroll", color="intensity",
                             fps=fps).filter("format", "yuva420p").filter("colorchannelmixer", aa=0.85))
    return (audio.filter("showwaves", s="1080x360", mode="cline", rate=fps, colors="white", scale="sqrt")
            .filter("format", "yuva420p"))


def _framing(mode: str, samples: list, crop_fraction: float) -> tuple[str, object]:
    """(what to render, its camera plan) for one narrow aspect: ``auto`` becomes the mode
    ``reframe.choose`` picks; ``split`` with never two faces apart follows the main face."""
    if mode == "auto":
        mode = reframe.choose(samples)
    if mode == "split":
        split = reframe.plan_split(samples)
        if split is not None:
            return "split", split
        mode = "face"
    if mode == "face":
        return "face", reframe.plan(reframe.main_faces(samples), crop_fraction)
    return mode, None


def _reframe(stream, info: MediaInfo, aspect: str, mode: str, framing):
    width, height = SIZES[aspect]
    if not _wider_than(info, aspect) and not _narrower_than(info, aspect):
        return stream.filter("scale", width, height)
    mode, track = framing or (mode, None)
    if _narrower_than(info, aspect) or mode in ("fit", "auto"):
        return _fit_over_blur(stream, width, height)
    if mode == "split" and track is not None:
        return _split_screen(stream, width, height, track)
    if mode == "face" and track is not None:
        ratio = f"{width}/{height}"
        return (stream.filter("crop", w=f"min(iw,ih*{ratio})", h=f"min(ih,iw/({ratio}))",
                              x=track.expression(), y="(ih-oh)/2")
                .filter("scale", width, height))
    return _fill(stream, width, height)


def _split_screen(stream, width: int, height: int, split: reframe.Split):
    """Two people stacked: each half a crop of ``SPLIT_WIDTH`` of the source following one
    face (left person on top), with a thin line between them."""
    half = (height - DIVIDER) // 2 // 2 * 2
    top, bottom = _split(stream, 2, "split")
    halves = []
    for branch, track, y in ((top, split.left, split.left_y), (bottom, split.right, split.right_y)):
        halves.append(branch.filter("crop", w=f"trunc(iw*{reframe.SPLIT_WIDTH}/2)*2",
                                    h=f"min(ih,trunc(iw*{reframe.SPLIT_WIDTH}*{half}/{width}/2)*2)",
                                    x=track.expression(), y=f"clip(ih*{y:.5f}-oh/2,0,ih-oh)")
                      .filter("scale", width, half).filter("setsar", 1))
    upper = halves[0].filter("pad", width, height - half, 0, 0, color=DIVIDER_COLOR)
    return ffmpeg.filter([upper, halves[1]], "vstack", inputs=2)


def displayed(source: Path, info: MediaInfo) -> MediaInfo:
    """``info`` with the width and height the picture is shown at: rotation metadata (phone
    videos) and non-square pixels applied, as ffmpeg's own decoding does before our filters."""
    if not info.has_video:
        return info
    try:
        with av.open(str(source)) as container:
            stream = next(s for s in container.streams.video
                          if not s.disposition & av.stream.Disposition.attached_pic)
            frame = next(container.decode(stream))
            sar = stream.sample_aspect_ratio or 1
            width, height = round(frame.width * float(sar)), frame.height
            if round(frame.rotation or 0) % 180 == 90:
                width, height = height, width
    except (av.error.FFmpegError, StopIteration):
        return info
    return dataclasses.replace(info, width=width, height=height)


def _display_ratio(info: MediaInfo) -> float:
    return info.width / info.height if info.width and info.height else 16 / 9


def _wider_than(info: MediaInfo, aspect: str) -> bool:
    width, height = SIZES[aspect]
    return _display_ratio(info) > width / height * 1.02


def _narrower_than(info: MediaInfo, aspect: str) -> bool:
    width, height = SIZES[aspect]
    return _display_ratio(info) < width / height / 1.02


def _crop_fraction(info: MediaInfo, aspect: str) -> float:
    """Width of the crop as a share of the source width."""
    width, height = SIZES[aspect]
    return min(1.0, (width / height) / _display_ratio(info))


def _fill(stream, width: int, height: int):
    """Centre-crop to the target aspect ratio, then scale to the target size."""
    ratio = f"{width}/{height}"
    return (stream
            .filter("crop", w=f"min(iw,ih*{ratio})", h=f"min(ih,iw/({ratio}))")
            .filter("scale", width, height))


def _fit(stream, width: int, height: int):
    """Scale to fit inside the target size (even dimensions)."""
    return stream.filter("scale", width, height, force_original_aspect_ratio="decrease", force_divisible_by=2)


def _cover(stream, width: int, height: int):
    """Scale to cover the target size, then centre-crop to it."""
    return (stream.filter("scale", width, height, force_original_aspect_ratio="increase")
            .filter("crop", width, height))


def _fit_over_blur(stream, width: int, height: int):
    """The whole frame, centred over a blurred, zoomed copy of itself (blurred at 1/8 size: cheap)."""
    back, front = _split(stream, 2, "split")
    small_w, small_h = max(2, width // 8 // 2 * 2), max(2, height // 8 // 2 * 2)
    blurred = (_cover(back, small_w, small_h).filter("boxblur", luma_radius=6, luma_power=2)
               .filter("scale", width, height).filter("eq", brightness=-0.08))
    return ffmpeg.overlay(blurred, _fit(front, width, height), x="(W-w)/2", y="(H-h)/2")


def _background_image(source: Path, info: MediaInfo, settings: RenderSettings, scratch: Path) -> Path | None:
    """The image behind an audio-only render: the configured one, else the source's cover art."""
    if info.has_video:
        return None
    if settings.background_image:
        path = Path(settings.background_image).expanduser()
        path = path if path.is_absolute() else PROJECT_ROOT / path
        if not path.is_file():
            raise BadInput(f"The background image {path} (render.background_image) does not exist.")
        return path
    try:
        with av.open(str(source)) as container:
            has_cover = any(s.disposition & av.stream.Disposition.attached_pic for s in container.streams.video)
    except av.error.FFmpegError:
        return None
    if not has_cover:
        return None
    cover = scratch / "cover.png"
    media.run(ffmpeg.input(str(source))["v:0"].output(str(cover), vframes=1), 0.0)
    return cover if cover.exists() and cover.stat().st_size else None


class _Phases:
    """Maps the progress of each step (measure, track, encode) into one monotonic 0..1."""

    def __init__(self, on_progress: Callable[[float], None] | None):
        self.on_progress, self.highest = on_progress, 0.0

    def part(self, low: float, high: float) -> Callable[[float], None] | None:
        if self.on_progress is None:
            return None

        def report(fraction: float) -> None:
            self.highest = max(self.highest, low + (high - low) * min(1.0, max(0.0, fraction)))
            self.on_progress(self.highest)
        return report
