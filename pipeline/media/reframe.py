"""Where a narrow crop (9x16, 1x1) of a wider source should look, over time.

``center`` crops the middle, ``fit`` shows the whole frame over a blurred copy (render_graph
builds both). ``face`` follows the main face like a camera operator would: the YuNet face
detector (OpenCV's ``FaceDetectorYN``, model in ``assets/models/yunet/``; it finds tilted and
turned faces the old Haar cascade missed) runs on a few small frames per second (decoded in
process with PyAV); isolated detections are dropped as noise; the camera holds still while
the face stays inside a dead zone around the crop centre and otherwise glides to it with an
ease-in-out move; when the face has been gone for a while it returns to the centre, and a
clip with no face at all is a centre crop. ``split`` stacks two crops, one following each of
two people side by side; ``auto`` picks ``face``, ``split`` or ``fit`` per clip from what the
detector saw (``choose``).

The result is a ``Track`` whose ``expression()`` is an ffmpeg expression of ``t`` for the
``crop`` filter's ``x``, so the render stays one native ffmpeg pass.
"""

from __future__ import annotations

import functools
import threading
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
SPLIT_WIDTH = 0.5         # in ``split``, each person's crop is this share of the source width
APART = 0.25              # two faces further apart than this share of the width cannot share one crop
SPLIT_SHARE = 0.5         # ``auto`` splits when two faces are apart in at least this share of the samples
SEEN_SHARE = 0.25         # ``auto`` follows a face seen (after denoising) in at least this share of the samples


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
                 on_progress: Callable[[float], None] | None = None,
                 detector: str = "yunet") -> list[tuple[float, float | None]]:
    """(clip time, centre x of the main face as a fraction of the width, or None) a few times a second."""
    return main_faces(detect_all_faces(source, start, duration, on_progress, detector))


@dataclass(frozen=True)
class Face:
    """One detection; coordinates are fractions of the analysed frame's width and height."""
    x: float
    y: float
    w: float
    h: float

    @property
    def cx(self) -> float:
        return self.x + self.w / 2

    @property
    def cy(self) -> float:
        return self.y + self.h / 2


Sample = tuple[float, tuple[Face, ...]]   # clip time, faces seen then (biggest first)


def detect_all_faces(source: Path, start: float, duration: float,
                     on_progress: Callable[[float], None] | None = None,
                     detector: str = "yunet") -> list[Sample]:
    """Every face in ``[start, start + duration)``, ``SAMPLE_FPS`` times a second.

    ``detector`` is ``yunet`` (what renders use) or ``haar`` (the old cascade, kept so
    ``bench/framing.py`` can compare the two on the same frames).
    """
    find = DETECTORS[detector]
    samples: list[Sample] = []
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
            image = frame.reformat(width=ANALYSIS_WIDTH, height=height, format="bgr24").to_ndarray()
            if frame.rotation:   # phone videos: see the frame the way ffmpeg will render it
                image = np.ascontiguousarray(np.rot90(image, round(frame.rotation / 90) % 4))
            samples.append((frame.time - start, find(image)))
            due = max(due, frame.time) + 1 / SAMPLE_FPS
            if on_progress:
                on_progress(min(1.0, (frame.time - start) / duration))
    return samples


def main_faces(samples: list[Sample]) -> list[tuple[float, float | None]]:
    """The main face's centre x per sample: the biggest, or among faces nearly as big, the
    one nearest the last (so two similar faces do not make the camera swap between them)."""
    result, previous = [], None
    for t, faces in samples:
        if faces:
            biggest = faces[0].w * faces[0].h
            candidates = [f.cx for f in faces if f.w * f.h >= 0.6 * biggest]
            previous = candidates[0] if previous is None else min(candidates, key=lambda c: abs(c - previous))
        else:
            previous = None
        result.append((t, previous))
    return result


MODEL = Path(__file__).resolve().parents[2] / "assets" / "models" / "yunet" / "face_detection_yunet_2023mar.onnx"
SCORE_THRESHOLD = 0.7     # YuNet confidence below this is not a face
MIN_FACE = 1 / 14         # faces smaller than this share of the frame height are ignored (background)
_local = threading.local()   # one YuNet per thread: the detector object keeps per-call state


def _yunet(image: np.ndarray) -> tuple[Face, ...]:
    import cv2
    height, width = image.shape[:2]
    detector = getattr(_local, "yunet", None)
    if detector is None:
        detector = _local.yunet = cv2.FaceDetectorYN.create(str(MODEL), "", (width, height), SCORE_THRESHOLD,
                                                             0.3, 20)
    detector.setInputSize((width, height))
    _, rows = detector.detect(image)
    boxes = [] if rows is None else [row[:4] for row in rows]
    return _faces(boxes, width, height)


@functools.cache
def _cascade():
    import cv2
    return cv2.CascadeClassifier(str(Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"))


def _haar(image: np.ndarray) -> tuple[Face, ...]:
    import cv2
    height, width = image.shape[:2]
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    size = max(24, height // 12)
    boxes = _cascade().detectMultiScale(gray, scaleFactor=1.1, minNeighbors=4, minSize=(size, size))
    return _faces(list(boxes), width, height)


def _faces(boxes, width: int, height: int) -> tuple[Face, ...]:
    faces = [Face(float(x) / width, float(y) / height, float(w) / width, float(h) / height)
             for x, y, w, h in boxes if h >= MIN_FACE * height]
    return tuple(sorted(faces, key=lambda f: f.w * f.h, reverse=True))


DETECTORS: dict[str, Callable[[np.ndarray], tuple[Face, ...]]] = {"yunet": _yunet, "haar": _haar}


@dataclass(frozen=True)
class Split:
    """Two people side by side: one camera each (``left`` follows the face on the left)."""
    left: Track
    right: Track
    left_y: float    # vertical centre of each face, fraction of the source height
    right_y: float


def choose(samples: list[Sample]) -> str:
    """What ``auto`` renders: ``split`` when two faces stay apart for most of the clip,
    ``face`` when one is seen often enough, else ``fit`` (nobody to follow: show everything)."""
    if not samples:
        return "fit"
    apart = sum(1 for _, faces in samples if _pair(faces) is not None)
    if apart >= SPLIT_SHARE * len(samples):
        return "split"
    seen = sum(1 for _, x in _denoise(main_faces(samples)) if x is not None)
    return "face" if seen >= SEEN_SHARE * len(samples) else "fit"


def plan_split(samples: list[Sample]) -> Split | None:
    """One camera per person for ``split``; None when two faces are never seen apart."""
    lefts, rights, left_ys, right_ys = [], [], [], []
    for t, faces in samples:
        pair = _pair(faces)
        lefts.append((t, pair[0].cx if pair else None))
        rights.append((t, pair[1].cx if pair else None))
        if pair:
            left_ys.append(pair[0].cy)
            right_ys.append(pair[1].cy)
    if not left_ys:
        return None
    return Split(plan(lefts, SPLIT_WIDTH), plan(rights, SPLIT_WIDTH),
                 float(np.median(left_ys)), float(np.median(right_ys)))


def _pair(faces: tuple[Face, ...]) -> tuple[Face, Face] | None:
    """The two biggest faces, left one first, if they are far enough apart to need two crops."""
    if len(faces) < 2:
        return None
    a, b = sorted(faces[:2], key=lambda f: f.cx)
    return (a, b) if b.cx - a.cx > APART else None


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
