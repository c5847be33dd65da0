"""Render one clip into its four variants with a single ffmpeg process.

The source is seeked and decoded once; the video is split into a 9x16 branch (centre
crop) and a 16x9 branch (fit + pad), each split again into clean and subtitled outputs,
and the audio is split to all four. A fifth, one-frame output of the clean 16x9 branch is
the thumbnail. Outputs are written to temp names and moved into place only on success.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import ffmpeg

from pipeline import media
from pipeline.captions import build_ass, build_srt
from pipeline.config import RenderSettings
from pipeline.errors import BadInput
from pipeline.media import MediaInfo
from pipeline.storage import temp_path, write_text_atomic

VARIANTS = ("clean_9x16", "subtitled_9x16", "clean_16x9", "subtitled_16x9")
SIZES = {"9x16": (1080, 1920), "16x9": (1920, 1080)}
AUDIO_ONLY_FPS = 30


def render_clip(source: Path, info: MediaInfo, start: float, end: float, words: list[dict],
                out_dir: Path, fonts_dir: Path, settings: RenderSettings,
                on_progress: Callable[[float], None] | None = None) -> dict[str, Path]:
    """Render ``[start, end)`` of ``source`` into ``out_dir``; return {variant: mp4 path}.

    Also writes captions.srt, thumb.jpg and the captions_<aspect>.ass files burned in.
    """
    start, end = max(0.0, start), min(end, info.duration)
    if start >= info.duration:
        raise BadInput(f"The clip starts at {start:.2f}s, outside the media ({info.duration:.2f}s long).")
    if end <= start:
        raise BadInput(f"The clip {start:.2f}s-{end:.2f}s is empty.")
    duration = end - start
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    ass_files = {}
    for aspect, (width, height) in SIZES.items():
        ass_files[aspect] = out_dir / f"captions_{aspect}.ass"
        write_text_atomic(ass_files[aspect], build_ass(words, start, end, width, height, settings))

    finals = {variant: out_dir / f"{variant}.mp4" for variant in VARIANTS}
    thumb = out_dir / "thumb.jpg"
    temps = {final: temp_path(final) for final in [*finals.values(), thumb]}
    graph = _graph(source, info, start, duration, ass_files, Path(fonts_dir), settings,
                   {variant: temps[path] for variant, path in finals.items()}, temps[thumb])
    try:
        media.run(graph, duration, _monotonic(on_progress))
        for final, temp in temps.items():
            os.replace(temp, final)
    except BaseException:
        for temp in temps.values():
            temp.unlink(missing_ok=True)
        raise
    write_text_atomic(out_dir / "captions.srt", build_srt(words, start, end))
    return finals


def _monotonic(on_progress: Callable[[float], None] | None) -> Callable[[float], None] | None:
    """Never report progress going backwards (ffmpeg's out_time may jitter across outputs)."""
    if on_progress is None:
        return None
    highest = 0.0

    def report(fraction: float) -> None:
        nonlocal highest
        highest = max(highest, fraction)
        on_progress(highest)
    return report


def _graph(source: Path, info: MediaInfo, start: float, duration: float, ass_files: dict[str, Path],
           fonts_dir: Path, settings: RenderSettings, outputs: dict[str, Path], thumb: Path):
    """The ffmpeg-python graph with the four variant outputs and the thumbnail."""
    source_in = ffmpeg.input(str(source), ss=start, t=duration)
    frames = _frames(source_in, info, duration, settings)
    fps = info.fps if info.has_video and 0 < info.fps <= 240 else AUDIO_ONLY_FPS
    audio = source_in.audio.filter_multi_output("asplit", len(VARIANTS)) if info.has_audio else None
    encode = {"vcodec": "libx264", "preset": settings.preset, "crf": settings.crf, "movflags": "+faststart",
              "r": str(Fraction(fps).limit_denominator(1001)), "t": f"{duration:.3f}"}
    if settings.threads > 0:
        encode["threads"] = settings.threads
    if info.has_audio:
        encode.update(acodec="aac", audio_bitrate=settings.audio_bitrate)

    streams = []
    for aspect, video in frames.items():
        branches = video.filter_multi_output("split", 3 if aspect == "16x9" else 2)
        # Keyword args only: ffmpeg-python escapes positional filter args twice, which
        # breaks paths holding quotes or colons.
        subtitled = branches[1].filter("ass", filename=str(ass_files[aspect]), fontsdir=str(fonts_dir))
        for variant, stream in ((f"clean_{aspect}", branches[0]), (f"subtitled_{aspect}", subtitled)):
            parts = [stream, audio[VARIANTS.index(variant)]] if audio else [stream]
            streams.append(ffmpeg.output(*parts, str(outputs[variant]), **encode))
        if aspect == "16x9":
            streams.append(branches[2].output(str(thumb), vframes=1, update=1, **{"q:v": 3}))
    return ffmpeg.merge_outputs(*streams)


def _frames(source_in, info: MediaInfo, duration: float, settings: RenderSettings) -> dict:
    """One video stream per aspect at its final size, square pixels, yuv420p."""
    if info.has_video:
        # Make pixels square first (a no-op for most sources) so crop/fit see the display shape.
        video = (source_in.video.filter("scale", "trunc(iw*sar/2)*2", "ih").filter("setsar", 1)
                 .filter_multi_output("split", 2))
        frames = {"9x16": _fill(video[0], *SIZES["9x16"]), "16x9": _fit(video[1], *SIZES["16x9"])}
    else:
        color = "0x" + settings.background_color.lstrip("#")
        frames = {aspect: ffmpeg.input(f"color=c={color}:s={w}x{h}:r={AUDIO_ONLY_FPS}:d={duration:.3f}",
                                       f="lavfi").video
                  for aspect, (w, h) in SIZES.items()}
    return {aspect: stream.filter("setsar", 1).filter("format", "yuv420p") for aspect, stream in frames.items()}


def _fill(stream, width: int, height: int):
    """Centre-crop to the target aspect ratio, then scale to the target size."""
    ratio = f"{width}/{height}"
    return (stream
            .filter("crop", w=f"min(iw,ih*{ratio})", h=f"min(ih,iw/({ratio}))")
            .filter("scale", width, height))


def _fit(stream, width: int, height: int):
    """Scale to fit inside the target size, then pad (letterbox/pillarbox) centred."""
    return (stream
            .filter("scale", width, height, force_original_aspect_ratio="decrease", force_divisible_by=2)
            .filter("pad", width, height, "(ow-iw)/2", "(oh-ih)/2", color="black"))
