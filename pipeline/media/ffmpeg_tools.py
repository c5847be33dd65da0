"""The one place that knows how to probe media and run ffmpeg.

ffmpeg is the binary bundled by ``imageio-ffmpeg`` (no system package needed). That
package ships no ffprobe, so probing uses PyAV (the same libav* libraries, in process;
faster-whisper already depends on it). Commands are built as ffmpeg-python graphs and
run as argument lists, never through a shell.
"""

from __future__ import annotations

import ctypes
import functools
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import av
import ffmpeg
import imageio_ffmpeg

from pipeline.errors import BadInput, PipelineError, TransientError

ProgressCallback = Callable[[float], None]


@functools.cache
def ffmpeg_exe() -> str:
    return imageio_ffmpeg.get_ffmpeg_exe()


@dataclass(frozen=True)
class MediaInfo:
    duration: float
    format_name: str
    has_video: bool
    has_audio: bool
    width: int = 0
    height: int = 0
    fps: float = 0.0
    video_codec: str = ""
    audio_codec: str = ""
    sample_rate: int = 0
    channels: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def probe(path: str | Path) -> MediaInfo:
    """Describe a media file; raise BadInput when it is not media ffmpeg can read."""
    path = Path(path)
    if path.is_dir():
        raise BadInput(f"'{path.name}' is a folder, not a media file.")
    if not path.exists():
        raise BadInput(f"File not found: {path}")
    if path.stat().st_size == 0:
        raise BadInput(f"'{path.name}' is empty (0 bytes).")
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            return _describe(container, path)
    except av.error.FFmpegError as exc:
        raise BadInput(f"'{path.name}' could not be read as audio or video: it is damaged, incomplete (an"
                       f" interrupted copy or download?) or not a media file ({exc.strerror or exc}).") from None


def _describe(container, path: Path) -> MediaInfo:
    # A stream whose codec ffmpeg does not know has no codec context: it cannot be decoded.
    videos = [s for s in container.streams.video
              if s.codec_context is not None and not s.disposition & av.stream.Disposition.attached_pic]
    audios = [s for s in container.streams.audio if s.codec_context is not None]
    if not videos and not audios:
        if any(s.type in ("video", "audio") for s in container.streams):
            raise BadInput(f"'{path.name}' uses an audio/video codec that Clipdesk's ffmpeg cannot decode;"
                           " convert it to a common format (H.264/AAC, MP3, WAV...) and try again.")
        raise BadInput(f"'{path.name}' has no audio or video streams.")
    duration = _duration(container, videos + audios)
    if duration <= 0:
        raise BadInput(f"'{path.name}' has no measurable duration; the file may be truncated.")
    info = {"duration": duration, "format_name": container.format.name,
            "has_video": bool(videos), "has_audio": bool(audios)}
    if videos:
        v = videos[0]
        rate = v.average_rate or v.guessed_rate or v.base_rate
        info.update(width=v.codec_context.width, height=v.codec_context.height,
                    fps=float(rate) if rate else 0.0, video_codec=v.codec_context.name)
    if audios:
        a = audios[0]
        info.update(audio_codec=a.codec_context.name, sample_rate=a.codec_context.sample_rate,
                    channels=a.codec_context.layout.nb_channels)
    return MediaInfo(**info)


def _duration(container, streams) -> float:
    if container.duration:
        return container.duration / av.time_base
    spans = [float(s.duration * s.time_base) for s in streams if s.duration and s.time_base]
    return max(spans, default=0.0)


_running: set[subprocess.Popen] = set()   # ffmpeg children of this process, for stop_all()
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the forked child: ask Linux to SIGKILL ffmpeg if the worker dies (e.g. SIGKILL, OOM).

    Without it an orphaned ffmpeg keeps writing the clip a resumed job is rendering again.
    """
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def run(stream, duration: float, on_progress: ProgressCallback | None = None) -> None:
    """Run an ffmpeg-python graph, reporting progress as a 0..1 fraction of ``duration``.

    If ``on_progress`` raises (for example ``Cancelled``) ffmpeg is stopped at once and
    the exception propagates. A non-zero exit raises with the tail of ffmpeg's log.
    """
    args = (stream.global_args("-nostdin", "-hide_banner", "-loglevel", "error",
                               "-progress", "pipe:1", "-nostats")
            .compile(cmd=ffmpeg_exe(), overwrite_output=True))
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL,
                                   preexec_fn=_die_with_parent)
        _running.add(process)
        try:
            _follow_progress(process, duration, on_progress)
            returncode = process.wait()
        except BaseException:
            stop(process)
            raise
        finally:
            _running.discard(process)
        if returncode != 0:
            log.seek(0)
            tail = log.read().decode("utf-8", "replace").strip().splitlines()[-5:]
            message = "; ".join(tail) or f"exit code {returncode}"
            if returncode < 0:
                raise TransientError(f"ffmpeg was stopped by signal {-returncode}.")
            raise PipelineError(f"ffmpeg failed: {message}")
    if on_progress:
        on_progress(1.0)


def _follow_progress(process: subprocess.Popen, duration: float, on_progress) -> None:
    for raw in process.stdout:
        key, _, value = raw.decode("ascii", "replace").strip().partition("=")
        if key == "out_time_us" and on_progress and duration > 0 and value.lstrip("-").isdigit():
            on_progress(min(1.0, max(0.0, int(value) / 1e6 / duration)))


def stop_all() -> None:
    """Stop every ffmpeg this process started (the worker calls it when it must exit now)."""
    for process in list(_running):
        stop(process, grace=0.5)


def stop(process: subprocess.Popen, grace: float = 2.0) -> None:
    """Terminate a child process, killing it if it does not exit within ``grace`` seconds."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def ffmpeg_query(*args: str) -> str:
    """Output of an informational ffmpeg call such as ``-version`` or ``-filters`` (no media graph)."""
    done = subprocess.run([ffmpeg_exe(), "-hide_banner", *args], capture_output=True, timeout=20,
                          stdin=subprocess.DEVNULL, check=True)
    return done.stdout.decode("utf-8", "replace")


def extract_frame(path: str | Path, at: float) -> bytes:
    """One RGB24 frame at ``at`` seconds as raw bytes (used by tests and thumbnails checks)."""
    info = probe(path)
    out, _ = (ffmpeg.input(str(path), ss=max(0.0, at))
              .output("pipe:", vframes=1, format="rawvideo", pix_fmt="rgb24")
              .run(cmd=ffmpeg_exe(), capture_stdout=True, capture_stderr=True, quiet=True))
    expected = info.width * info.height * 3
    if len(out) < expected:
        raise PipelineError(f"Could not read a frame at {at:.2f}s from {Path(path).name}.")
    return out[:expected]

