"""End-to-end caption timing: speech whose word onsets are known, and the times at which the
rendered captions light each word, read back from the video's pixels.

Each word is said on its own by espeak-ng and the words are joined with known gaps
(``mediagen.spoken_pieces``), so every onset is known to the sample. After transcription
and a subtitled render, every frame is decoded and the highlight colour located: a word's
highlight begins in the frame where the highlighted region appears or jumps to another
place (bold-pop's yellow, #FACC15). Used by tests/test_caption_timing.py and bench/caption_timing.py.
"""

from __future__ import annotations

from pathlib import Path

import av
import ffmpeg
import mediagen
import numpy as np

from pipeline import media

WORDS = ("today", "we", "measure", "caption", "timing", "against", "known", "word", "onsets", "every",
         "highlight", "should", "appear", "when", "the", "voice", "starts", "speaking")
GAPS = (0.15, 0.35, 0.6, 0.25, 0.9, 0.2, 0.45, 0.3, 1.2, 0.15, 0.5, 0.25, 0.7, 0.2, 0.4, 0.3, 0.8)
FPS = 30


def make(folder: Path) -> tuple[Path, list[float]]:
    """(a 640x360 black video at 30 fps with the spoken words, the true onset of each word)."""
    spans = mediagen.spoken_pieces(folder / "words.wav", list(WORDS), list(GAPS))
    seconds = media.probe(folder / "words.wav").duration
    video = ffmpeg.input(f"color=c=black:s=640x360:r={FPS}:d={seconds}", f="lavfi")
    out = folder / "words.mp4"
    media.run(ffmpeg.output(video, ffmpeg.input(str(folder / "words.wav")).audio, str(out), vcodec="libx264",
                            preset="ultrafast", pix_fmt="yuv420p", acodec="aac", t=seconds), seconds)
    return out, [start for start, _ in spans]


def highlight_onsets(video: Path) -> list[float]:
    """Times at which a (new) word's highlight first shows in ``video``.

    Read straight from the decoded chroma plane: the yellow highlight is the only thing in
    the frame with a strongly negative blue difference (U far below 128); white text, its
    black outline and the black background all sit at 128.
    """
    onsets, previous = [], None
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            plane = frame.planes[1]
            u = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[:, :plane.width]
            mask = u[u.shape[0] * 2 // 3:] < 80          # captions sit in the bottom third
            if mask.sum() < 20:
                previous = None
                continue
            ys, xs = np.nonzero(mask)
            where = (xs.mean(), ys.mean())
            if previous is None or abs(where[0] - previous[0]) > 12 or abs(where[1] - previous[1]) > 8:
                onsets.append(float(frame.time))
            previous = where
    return onsets


def errors(detected: list[float], truth: list[float]) -> np.ndarray:
    """Seconds between each true onset and the highlight onset nearest to it."""
    found = np.array(detected)
    return np.array([np.abs(found - t).min() for t in truth]) if len(found) else np.full(len(truth), np.inf)
