"""Where a narrow crop (9x16, 1x1) of a wider source should look, over time.

``center`` crops the middle, ``fit`` shows the whole frame over a blurred copy (render.py
builds both). ``face`` follows the main face like a camera operator would: OpenCV's
frontal-face detector runs on a few small grayscale frames per second (decoded in
process with PyAV); isolated detections are dropped as noise; the camera holds still
while the face stays inside a dead zone around the crop centre and otherwise glides to
it with an ease-in-out move; when the face has been gone for a while it returns to the
centre, and a clip with no face at all is a centre crop.

The result is a ``Track`` whose ``expression()`` is an ffmpeg expression of ``t`` for the
``crop`` filter's ``x``, so the render stays one native ffmpeg pass.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np

SAMPLE_FPS = 4.0          # detector runs per second of video
ANALYSIS_WIDTH = 480      # frames are scaled to this width for detection
DEAD_ZONE = 0.18          # the face may drift this share of the crop width from its centre before the camera moves
HOLD_SECONDS = 1.5        # a face missing for longer than this sends the camera back to the centre
MIN_MOVE, MAX_MOVE = 0.4, 1.2   # seconds a camera move takes (longer for longer moves)
VELOCITY_WINDOW = 1.0     # seconds of detections that estimate how fast the face moves


@dataclass(frozen=True)
class Move:
    start: float     # clip-relative seconds
    end: float
    src: float       # crop centre, as a fraction of the source width
    dst: float


@dataclass(frozen=True)
class Track:
    first: float                       # crop centre at t=0, fraction of the source width
    moves: tuple[Move, ...] = field(default_factory=tuple)
    faces_seen: int = 0

    def at(self, t: float) -> float:
        """The crop centre at clip time ``t`` (what ``expression`` computes inside ffmpeg)."""
        centre = self.first
        for m in self.moves:
            centre += (m.dst - m.src) * _ease((t - m.start) / (m.end - m.start))
        return centre

    def expression(self) -> str:
        """ffmpeg ``crop`` x expression: the centre over time, in pixels, kept inside the frame."""
        terms = "".join(f"{m.dst - m.src:+.5f}*(1-cos(PI*clip((t-{m.start:.3f})/{m.end - m.start:.3f},0,1)))/2"
                        for m in self.moves)
        return f"clip(iw*({self.first:.5f}{terms})-ow/2,0,iw-ow)"


def _ease(u: float) -> float:
    return (1 - np.cos(np.pi * min(1.0, max(0.0, u)))) / 2


def centre() -> Track:
    return Track(first=0.5)


def follow_face(source: Path, start: float, duration: float, crop_fraction: float,
                on_progress: Callable[[float], None] | None = None) -> Track:
    """Detect faces in ``[start, start + duration)`` of ``source`` and plan the camera."""
    samples = detect_faces(source, start, duration, on_progress)
    return plan(samples, crop_fraction)


def detect_faces(source: Path, start: float, duration: float,
                 on_progress: Callable[[float], None] | None = None) -> list[tuple[float, float | None]]:
    """(clip time, centre x of the main face as a fraction of the width, or None) a few times a second."""
    detector = _detector()
    samples: list[tuple[float, float | None]] = []
    previous = None
    with av.open(str(source)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        if start > 0:
            container.seek(int(start / stream.time_base), stream=stream, backward=True)
        due = start
        for frame in container.decode(stream):
            if frame.time is None or frame.time < due - 0.5 / SAMPLE_FPS:
                continue
            if frame.time >= start + duration:
                break
            height = max(2, round(ANALYSIS_WIDTH * frame.height / frame.width / 2) * 2)
            gray = frame.reformat(width=ANALYSIS_WIDTH, height=height, format="gray").to_ndarray()
            if frame.rotation:   # phone videos: see the frame the way ffmpeg will render it
                gray = np.ascontiguousarray(np.rot90(gray, round(frame.rotation / 90) % 4))
            previous = _main_face(detector, gray, previous)
            samples.append((frame.time - start, previous))
            due = max(due, frame.time) + 1 / SAMPLE_FPS
            if on_progress:
                on_progress(min(1.0, (frame.time - start) / duration))
    return samples


@functools.cache
def _detector():
    import cv2
    return cv2.CascadeClassifier(str(Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"))


def _main_face(detector, gray: np.ndarray, previous: float | None) -> float | None:
    """Centre x (fraction) of the biggest face; among faces nearly as big, the one nearest the last."""
    height, width = gray.shape
    size = max(24, height // 12)
    faces = detector.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=4, minSize=(size, size))
    if len(faces) == 0:
        return None
    biggest = max(faces, key=lambda f: f[2] * f[3])
    if previous is None:
        return (biggest[0] + biggest[2] / 2) / width
    candidates = [(x + w / 2) / width for x, _, w, h in faces if w * h >= 0.6 * biggest[2] * biggest[3]]
    return min(candidates, key=lambda c: abs(c - previous))


def plan(samples: list[tuple[float, float | None]], crop_fraction: float) -> Track:
    """Turn noisy per-sample face positions into a few smooth camera moves."""
    faces = _denoise(samples)
    seen = [x for _, x in faces if x is not None]
    if not seen:
        return Track(first=0.5)
    low, high = crop_fraction / 2, 1 - crop_fraction / 2

    def clamp(x: float) -> float:
        return min(high, max(low, x))

    camera = clamp(seen[0])
    first, moves, busy_until, last_seen = camera, [], 0.0, None
    recent: list[tuple[float, float]] = []
    for t, x in faces:
        if x is not None:
            last_seen = t
            recent = [(s, v) for s, v in recent if t - s <= VELOCITY_WINDOW] + [(t, x)]
            target = x
        elif last_seen is not None and t - last_seen <= HOLD_SECONDS:
            continue
        else:
            recent, target = [], 0.5
        if t < busy_until or abs(clamp(target) - camera) <= DEAD_ZONE * crop_fraction:
            continue
        length = min(MAX_MOVE, max(MIN_MOVE, MIN_MOVE + 2.0 * abs(clamp(target) - camera)))
        # Lead a walking subject: aim where the face will be when the move ends.
        (t0, x0), (t1, x1) = recent[0] if recent else (t, target), recent[-1] if recent else (t, target)
        velocity = (x1 - x0) / (t1 - t0) if t1 - t0 >= VELOCITY_WINDOW / 2 else 0.0
        target = clamp(target + velocity * length)
        moves.append(Move(round(t, 3), round(t + length, 3), camera, target))
        camera, busy_until = target, t + length
    return Track(first=first, moves=tuple(moves), faces_seen=len(seen))


def _denoise(samples: list[tuple[float, float | None]]) -> list[tuple[float, float | None]]:
    """Drop detections with no detection next to them (false positives flicker), then take
    the median of each detection with its neighbours (jitter)."""
    kept = []
    for i, (t, x) in enumerate(samples):
        neighbours = [samples[j][1] for j in (i - 1, i + 1) if 0 <= j < len(samples) and samples[j][1] is not None]
        kept.append((t, x if x is not None and neighbours else None))
    result = []
    for i, (t, x) in enumerate(kept):
        if x is None:
            result.append((t, None))
            continue
        window = [v for _, v in kept[max(0, i - 1):i + 2] if v is not None]
        result.append((t, float(np.median(window))))
    return result
