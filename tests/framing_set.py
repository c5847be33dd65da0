"""The generated framing set: the astronaut photo scikit-image bundles (NASA, public domain)
pasted into 16:9 videos, with the face's true box known at every instant, and the two
measures the framing is judged by (whole-face share, jitter). Used by tests/test_reframe.py
and bench/framing.py.

Each case is 640x360, 15 fps: one face at three sizes, rotated +-30 degrees (walking across),
mirrored, partly off the left edge, upright and walking across at 0.2 frame widths a second;
two faces side by side; no face (the photo's helmet instead).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path

import ffmpeg
import numpy as np
import skimage.data
from PIL import Image

from pipeline import media

WIDTH, HEIGHT, FPS, SECONDS = 640, 360, 15, 4.0
# The photo's face (brow to chin, ear to ear), in astronaut.png pixels, read off the image;
# the pasted patch is the head with some margin.
PATCH = (0, 235, 120, 330)           # rows, rows end, cols, cols end of the photo pasted
FACE_BOX = (172, 50, 274, 190)       # x0, y0, x1, y1 in the photo
HELMET = (330, 512, 270, 512)        # no face: the helmet, same kind of picture


@dataclass(frozen=True)
class Person:
    face_width: float       # the face's width as a share of the frame width
    x0: float               # face centre at t=0 and t=SECONDS, shares of the width
    x1: float
    angle: float = 0.0      # degrees, counter-clockwise
    mirrored: bool = False


@dataclass(frozen=True)
class Case:
    name: str
    people: tuple[Person, ...]
    expected: str           # what reframe: auto must choose


CASES = (
    Case("small", (Person(0.07, 0.3, 0.3),), "face"),
    Case("medium", (Person(0.11, 0.7, 0.7),), "face"),
    Case("large", (Person(0.15, 0.3, 0.3),), "face"),
    Case("rotated+30", (Person(0.11, 0.15, 0.85, angle=30),), "face"),
    Case("rotated-30", (Person(0.11, 0.85, 0.15, angle=-30),), "face"),
    Case("mirrored", (Person(0.11, 0.72, 0.72, mirrored=True),), "face"),
    Case("off-frame", (Person(0.11, 0.03, 0.03),), "face"),
    Case("walking", (Person(0.11, 0.1, 0.9),), "face"),
    Case("two-people", (Person(0.1, 0.25, 0.25), Person(0.1, 0.75, 0.75, mirrored=True)), "split"),
    Case("no-face", (), "fit"),
)
ONE_FACE = [case for case in CASES if len(case.people) == 1]


@functools.cache
def _patch(person: Person) -> tuple[Image.Image, tuple[float, float, float, float]]:
    """The pasted head (RGBA) and the face's box inside it, after scaling, mirroring, rotating."""
    r0, r1, c0, c1 = PATCH
    photo = Image.fromarray(skimage.data.astronaut()[r0:r1, c0:c1]).convert("RGBA")
    scale = person.face_width * WIDTH / (FACE_BOX[2] - FACE_BOX[0])
    photo = photo.resize((round(photo.width * scale), round(photo.height * scale)), Image.LANCZOS)
    fx0, fy0, fx1, fy1 = ((FACE_BOX[0] - c0) * scale, (FACE_BOX[1] - r0) * scale,
                          (FACE_BOX[2] - c0) * scale, (FACE_BOX[3] - r0) * scale)
    if person.mirrored:
        photo = photo.transpose(Image.FLIP_LEFT_RIGHT)
        fx0, fx1 = photo.width - fx1, photo.width - fx0
    w, h = photo.size
    rotated = photo.rotate(person.angle, resample=Image.BICUBIC, expand=True)
    # The face is an ellipse in its box: rotate its centre and take the rotated ellipse's box.
    a, b, theta = (fx1 - fx0) / 2, (fy1 - fy0) / 2, math.radians(person.angle)
    dx, dy = (fx0 + fx1) / 2 - w / 2, (fy0 + fy1) / 2 - h / 2
    cx = rotated.width / 2 + dx * math.cos(theta) + dy * math.sin(theta)
    cy = rotated.height / 2 - dx * math.sin(theta) + dy * math.cos(theta)
    half_w = math.hypot(a * math.cos(theta), b * math.sin(theta))
    half_h = math.hypot(a * math.sin(theta), b * math.cos(theta))
    return rotated, (cx - half_w, cy - half_h, cx + half_w, cy + half_h)


def _left(person: Person, patch_face_cx: float) -> str:
    """The overlay's x expression: the patch moves so the face centre goes x0 -> x1."""
    start = person.x0 * WIDTH - patch_face_cx
    speed = (person.x1 - person.x0) * WIDTH / SECONDS
    return f"{start:.2f}+{speed:.3f}*t"


def face_box(case: Case, index: int, t: float) -> tuple[float, float, float, float]:
    """The true box of person ``index``'s face at ``t``, in source pixels, cut to the frame."""
    person = case.people[index]
    patch, (x0, y0, x1, y1) = _patch(person)
    cx = person.x0 * WIDTH + (person.x1 - person.x0) * WIDTH * t / SECONDS
    top = (HEIGHT - patch.height) / 2
    left = cx - (x0 + x1) / 2
    return max(0.0, left + x0), max(0.0, top + y0), min(WIDTH, left + x1), min(HEIGHT, top + y1)


def make(case: Case, folder: Path) -> Path:
    """Render the case's video (4 s, a quiet tone as audio) into ``folder``."""
    out = folder / f"{case.name}.mp4"
    video = ffmpeg.input(f"color=c=0x4a6d8c:s={WIDTH}x{HEIGHT}:r={FPS}:d={SECONDS}", f="lavfi")
    pictures = []
    if case.people:
        for i, person in enumerate(case.people):
            patch, (x0, _, x1, _) = _patch(person)
            path = folder / f"{case.name}_{i}.png"
            patch.save(path)
            pictures.append((path, _left(person, (x0 + x1) / 2), (HEIGHT - patch.height) / 2))
    else:
        r0, r1, c0, c1 = HELMET
        path = folder / f"{case.name}.png"
        Image.fromarray(skimage.data.astronaut()[r0:r1, c0:c1]).save(path)
        pictures.append((path, "380", 80))
    for path, x, y in pictures:
        picture = ffmpeg.input(str(path), loop=1, framerate=FPS, t=SECONDS)
        video = ffmpeg.overlay(video, picture, x=x, y=f"{y:.1f}", eof_action="endall")
    audio = ffmpeg.input(f"sine=frequency=300:duration={SECONDS}", f="lavfi").filter("volume", 0.2)
    media.run(ffmpeg.output(video, audio, str(out), vcodec="libx264", preset="ultrafast", pix_fmt="yuv420p",
                            t=SECONDS), SECONDS)
    return out


def crop_left(centre: float, crop_width: float) -> float:
    """Left edge (pixels) of a crop centred at ``centre`` (share of the width), kept in the frame:
    what the render's crop expression computes."""
    return min(WIDTH - crop_width, max(0.0, centre * WIDTH - crop_width / 2))


def output_times() -> np.ndarray:
    return np.arange(0.0, SECONDS, 1 / FPS)


def whole_face_share(case: Case, track, crop_fraction: float, index: int = 0) -> float:
    """Share of output frames whose crop holds person ``index``'s whole face (horizontally:
    a 9x16 crop of a 16:9 frame keeps the full height)."""
    width = crop_fraction * WIDTH
    inside = 0
    for t in output_times():
        x0, _, x1, _ = face_box(case, index, t)
        left = crop_left(track.at(t), width)
        inside += left - 0.5 <= x0 and x1 <= left + width + 0.5
    return inside / len(output_times())


def jitter_frames(case: Case, track, crop_fraction: float, dead_zone: float, index: int = 0) -> int:
    """Output frames in which the crop moves although the face was inside the dead zone when
    the move began (a camera operator would have held still)."""
    width = crop_fraction * WIDTH
    count = 0
    for move in track.moves:
        x0, _, x1, _ = face_box(case, index, move.start)
        if abs((x0 + x1) / 2 / WIDTH - move.src) <= dead_zone * crop_fraction:
            count += sum(1 for t in output_times() if move.start <= t < move.end
                         and abs(crop_left(track.at(t), width) - crop_left(track.at(t - 1 / FPS), width)) > 0.5)
    return count
