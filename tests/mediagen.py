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


def speech_at_offsets(out: Path, total_seconds: float, offsets: list[float], sample_rate: int = 16_000) -> Path:
    """Silence ``total_seconds`` long with a copy of the speech sample starting at each offset.

    Cheap stand-in for a long episode: the concat filter places every copy at an exact
    sample position, so transcripts can be checked for drift. Offsets must be increasing and
    the copies must not overlap or run past the end.
    """
    from pipeline.media import probe
    speech_seconds = probe(SPEECH).duration
    speech = (ffmpeg.input(str(SPEECH)).audio.filter("aresample", sample_rate)
              .filter("aformat", channel_layouts="mono").filter_multi_output("asplit", len(offsets)))
    parts, position = [], 0.0
    for i, offset in enumerate(offsets):
        if offset < position or offset + speech_seconds > total_seconds:
            raise ValueError(f"speech copy at {offset}s overlaps another copy or the end")
        if offset > position:
            parts.append(ffmpeg.input(f"anullsrc=r={sample_rate}:cl=mono:d={offset - position}", f="lavfi"))
        parts.append(speech[i].filter("atrim", end=speech_seconds))
        position = offset + speech_seconds
    if total_seconds > position:
        parts.append(ffmpeg.input(f"anullsrc=r={sample_rate}:cl=mono:d={total_seconds - position}", f="lavfi"))
    joined = ffmpeg.concat(*parts, v=0, a=1)
    _run(ffmpeg.output(joined, str(out), ac=1, ar=sample_rate, acodec="pcm_s16le"))
    return out


def truncated_copy(source: Path, out: Path, fraction: float = 0.33) -> Path:
    """The first ``fraction`` of a file, like an interrupted copy (an mp4 loses its index)."""
    data = source.read_bytes()
    out.write_bytes(data[: int(len(data) * fraction)])
    return out


def unknown_codec_mkv(out: Path, seconds: float = 2) -> Path:
    """A Matroska file whose streams name codecs ffmpeg does not know (the codec ids are rewritten)."""
    data = bytearray(tone_video(out.with_suffix(".src.webm"), seconds).read_bytes())
    for old, new in ((b"V_VP9", b"V_ZZZ"), (b"A_OPUS", b"A_ZZZZ")):
        at = data.index(old)
        data[at:at + len(old)] = new
    out.write_bytes(data)
    return out


def huge_declared_duration_mkv(out: Path, seconds: float = 2, declared_seconds: float = 36_000) -> Path:
    """A short Matroska file whose header claims ``declared_seconds`` (the Segment Duration is rewritten)."""
    import struct
    data = bytearray(tone_video(out.with_suffix(".src.mkv"), seconds).read_bytes())
    at = data.index(b"\x44\x89")   # EBML id of Segment/Info/Duration, in milliseconds
    if data[at + 2] == 0x88:
        struct.pack_into(">d", data, at + 3, declared_seconds * 1000)
    else:
        struct.pack_into(">f", data, at + 3, declared_seconds * 1000)
    out.write_bytes(data)
    return out


def silence_audio(out: Path, seconds: float) -> Path:
    """``seconds`` of digital silence, small (16 kHz mono AAC at 16 kbit/s)."""
    _run(ffmpeg.input("anullsrc=r=16000:cl=mono", f="lavfi", t=seconds)
         .output(str(out), acodec="aac", audio_bitrate="16k"))
    return out


def spoken_pieces(out: Path, pieces: list[str], gaps: list[float], lead: float = 0.5,
                  sample_rate: int = 16_000) -> list[tuple[float, float]]:
    """espeak-ng says each piece (a word or a phrase) on its own; the pieces, cut to their
    sound (leading/trailing silence removed), are joined with ``gaps[i]`` seconds of silence
    after piece ``i`` (``lead`` before the first) into the mono WAV ``out``. Returns each
    piece's (start, end) in ``out``: known onsets to check transcripts and renders against."""
    import subprocess

    from pipeline.media import probe
    folder = out.parent / f"{out.stem}_pieces"
    folder.mkdir(exist_ok=True)
    trimmed = []
    for i, text in enumerate(pieces):
        raw, cut = folder / f"{i}.wav", folder / f"{i}_cut.wav"
        subprocess.run(["espeak-ng", "-w", str(raw), "-s", "160", text], check=True, capture_output=True)
        edge = dict(start_periods=1, start_threshold="-45dB", start_silence=0.0)
        _run(ffmpeg.input(str(raw)).audio.filter("silenceremove", **edge).filter("areverse")
             .filter("silenceremove", **edge).filter("areverse")
             .output(str(cut), ac=1, ar=sample_rate, acodec="pcm_s16le"))
        trimmed.append(cut)
    parts, spans, position = [], [], lead
    parts.append(ffmpeg.input(f"anullsrc=r={sample_rate}:cl=mono:d={lead}", f="lavfi"))
    for path, gap in zip(trimmed, [*gaps, 0.0][:len(trimmed)], strict=True):
        length = probe(path).duration
        spans.append((position, position + length))
        parts.append(ffmpeg.input(str(path)))
        position += length
        if gap > 0:
            parts.append(ffmpeg.input(f"anullsrc=r={sample_rate}:cl=mono:d={gap}", f="lavfi"))
            position += gap
    parts.append(ffmpeg.input(f"anullsrc=r={sample_rate}:cl=mono:d=0.5", f="lavfi"))
    _run(ffmpeg.output(ffmpeg.concat(*parts, v=0, a=1), str(out), ac=1, ar=sample_rate, acodec="pcm_s16le"))
    return spans


def picture_with(audio: Path, out: Path, tone_amplitude: float = 0.0, width: int = 640, height: int = 360,
                 fps: int = 15) -> Path:
    """A test-pattern video with ``audio`` as its soundtrack, optionally over a quiet 157 Hz
    tone (room tone: pauses are then not digital silence and a hard cut would click)."""
    from pipeline.media import probe
    seconds = probe(audio).duration
    sound = ffmpeg.input(str(audio)).audio
    if tone_amplitude:
        tone = ffmpeg.input(f"sine=frequency=157:sample_rate=16000:duration={seconds}", f="lavfi").filter(
            "volume", tone_amplitude * 8)   # lavfi's sine peaks at 1/8 of full scale
        sound = ffmpeg.filter([sound, tone], "amix", inputs=2, normalize=0, duration="first")
    video = ffmpeg.input(f"testsrc2=size={width}x{height}:rate={fps}:duration={seconds}", f="lavfi")
    _run(ffmpeg.output(video, sound, str(out), vcodec="libx264", preset="ultrafast", pix_fmt="yuv420p",
                       acodec="aac", audio_bitrate="128k", t=seconds))
    return out


def spoken(out: Path, text: str, voice: str = "en-us", words_per_minute: int = 150) -> Path:
    """``text`` read by espeak-ng (a Debian package) into the WAV file ``out``."""
    import shutil
    import subprocess
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        raise RuntimeError("espeak-ng is needed to generate test speech: apt-get install espeak-ng")
    subprocess.run([espeak, "-v", voice, "-s", str(words_per_minute), "-w", str(out), text],
                   check=True, capture_output=True)
    return out
