"""Build real test media with the bundled ffmpeg (lavfi sources + the committed speech sample)."""

from __future__ import annotations

from pathlib import Path

import ffmpeg

from pipeline.media import ffmpeg_exe

DATA = Path(__file__).parent / "data"
SPEECH = DATA / "speech.opus"          # espeak-ng reading speech.txt, ~40 s
SPEECH_TEXT = (DATA / "speech.txt").read_text(encoding="utf-8").strip()


def _run(stream) -> None:
    stream.run(cmd=ffmpeg_exe(), overwrite_output=True, quiet=True)


def speech_video(out: Path, width: int = 640, height: int = 360, fps: int = 15) -> Path:
    """A test-pattern video with the speech sample as its soundtrack."""
    video = ffmpeg.input(f"testsrc2=size={width}x{height}:rate={fps}", f="lavfi")
    audio = ffmpeg.input(str(SPEECH))
    _run(ffmpeg.output(video, audio, str(out), vcodec="libx264", preset="ultrafast", pix_fmt="yuv420p",
                       acodec="aac", shortest=None))
    return out


def speech_audio(out: Path) -> Path:
    """The speech sample re-encoded to ``out``'s container (mp3, wav, m4a...)."""
    _run(ffmpeg.input(str(SPEECH)).output(str(out)))
    return out


def tone_video(out: Path, seconds: float, width: int = 640, height: int = 360, fps: int = 15) -> Path:
    """A test-pattern video with a sine tone, ``seconds`` long (VP9 + Opus for .webm, else H.264 + AAC)."""
    video = ffmpeg.input(f"testsrc2=size={width}x{height}:rate={fps}:duration={seconds}", f="lavfi")
    audio = ffmpeg.input(f"sine=frequency=440:duration={seconds}", f="lavfi")
    codecs = (dict(vcodec="libvpx-vp9", acodec="libopus", deadline="realtime") if out.suffix.lower() == ".webm"
              else dict(vcodec="libx264", preset="ultrafast", acodec="aac"))
    _run(ffmpeg.output(video, audio, str(out), pix_fmt="yuv420p", **codecs))
    return out


def silent_video(out: Path, seconds: float, width: int = 640, height: int = 360, fps: int = 15) -> Path:
    """A video with no audio stream at all."""
    video = ffmpeg.input(f"testsrc2=size={width}x{height}:rate={fps}:duration={seconds}", f="lavfi")
    _run(ffmpeg.output(video, str(out), vcodec="libx264", preset="ultrafast", pix_fmt="yuv420p"))
    return out


def tone_audio(out: Path, seconds: float) -> Path:
    """A sine tone in ``out``'s audio container (mp3, wav, m4a...)."""
    _run(ffmpeg.input(f"sine=frequency=440:duration={seconds}", f="lavfi").output(str(out)))
    return out
