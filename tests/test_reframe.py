"""Face-following 9x16 crops: a real face photo moving across a generated video, and the
generated framing set (tests/framing_set.py) judged case by case for YuNet and ``auto``."""

from __future__ import annotations

import math
from pathlib import Path

import ffmpeg
import framing_set
import numpy as np
import pytest
import skimage.data
from PIL import Image

from pipeline import media
from pipeline.config import PROJECT_ROOT, RenderSettings
from pipeline.media import reframe
from pipeline.media.render_graph import render_clip

FONTS = PROJECT_ROOT / "assets" / "fonts"
FAST = RenderSettings(preset="ultrafast")
WIDTH, HEIGHT, FACE, SECONDS = 640, 360, 160, 4.0
CROP = (9 / 16) / (WIDTH / HEIGHT)   # width of a 9x16 crop as a share of the source width

pytestmark = pytest.mark.timeout(180)


def face_x(t: float) -> float:
    """Where the generated video's face centre is at ``t`` (fraction of the width)."""
    return (20 + 110 * t + FACE / 2) / WIDTH


@pytest.fixture(scope="module")
def moving_face(tmp_path_factory) -> Path:
    """The astronaut photo scikit-image bundles (NASA, public domain), cropped to the face,
    gliding left to right over a plain background for 4 s."""
    folder = tmp_path_factory.mktemp("face")
    face = folder / "face.png"
    Image.fromarray(skimage.data.astronaut()[20:230, 125:325]).resize((FACE, FACE * 21 // 20)).save(face)
    background = ffmpeg.input(f"color=c=0x4a6d8c:s={WIDTH}x{HEIGHT}:r=15:d={SECONDS}", f="lavfi")
    picture = ffmpeg.input(str(face), loop=1, framerate=15, t=SECONDS)
    video = ffmpeg.overlay(background, picture, x="20+110*t", y=90, eof_action="endall")
    audio = ffmpeg.input(f"sine=frequency=300:duration={SECONDS}", f="lavfi")
    out = folder / "moving_face.mp4"
    media.run(ffmpeg.output(video, audio, str(out), vcodec="libx264", preset="ultrafast", pix_fmt="yuv420p",
                            t=SECONDS), SECONDS)
    return out


@pytest.fixture(scope="module")
def faceless(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("noface") / "pattern.mp4"
    video = ffmpeg.input(f"testsrc2=size={WIDTH}x{HEIGHT}:rate=15:duration=3", f="lavfi")
    media.run(ffmpeg.output(video, str(out), vcodec="libx264", preset="ultrafast", pix_fmt="yuv420p"), 3)
    return out


def evaluate(expression: str, t: float, iw: float, ow: float) -> float:
    """Evaluate the crop x expression (ffmpeg syntax is valid Python for these functions)."""
    names = {"clip": lambda v, lo, hi: min(hi, max(lo, v)), "cos": math.cos, "PI": math.pi,
             "t": t, "iw": iw, "ow": ow}
    return eval(expression, {"__builtins__": {}}, names)   # noqa: S307 - our own generated arithmetic


def test_face_track_follows_a_face_moving_left_to_right(moving_face):
    samples = reframe.detect_faces(moving_face, 0.0, SECONDS)
    seen = [(t, x) for t, x in samples if x is not None]
    assert len(seen) >= 0.8 * len(samples) >= 10                       # the real face is found
    assert all(abs(x - face_x(t)) < 0.05 for t, x in seen)
    track = reframe.plan(samples, CROP)
    assert track.moves, "the camera must move"
    centres = [track.at(t) for t in np.arange(0.0, SECONDS, 0.25)]
    assert all(b >= a - 1e-9 for a, b in zip(centres, centres[1:], strict=False))   # only ever pans right
    for t in (0.5, 1.5, 2.5, 3.5):
        # The face stays inside the crop (its centre within the middle of the 9x16 window).
        assert abs(track.at(t) - min(face_x(t), 1 - CROP / 2)) < CROP * 0.45, t
    assert centres[-1] - centres[0] > 0.4


def test_face_mode_render_keeps_the_face_in_the_portrait_frame(moving_face, tmp_path):
    import cv2
    result = render_clip(moving_face, media.probe(moving_face), 0.0, SECONDS, [], tmp_path / "face", FONTS, FAST,
                         aspects=["9x16"], reframe_mode="face")
    centred = render_clip(moving_face, media.probe(moving_face), 0.0, SECONDS, [], tmp_path / "centre", FONTS, FAST,
                          aspects=["9x16"], reframe_mode="center")
    detector = cv2.CascadeClassifier(str(Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"))

    def faces(path: Path, at: float) -> list:
        gray = np.frombuffer(media.extract_frame(path, at), np.uint8).reshape(1920, 1080, 3).mean(axis=2)
        small = cv2.resize(gray.astype(np.uint8), (540, 960))
        return list(detector.detectMultiScale(small, 1.1, 4, minSize=(60, 60)))

    for at in (0.5, 2.0, 3.5):
        found = faces(result["clean_9x16"], at)
        assert found, at
        x, _, w, _ = found[0]
        assert 0.15 < (x + w / 2) / 540 < 0.85, at                   # wholly inside the portrait frame
        if at != 2.0:   # mid-way the face passes the centre; at both ends a centre crop misses it
            assert not faces(centred["clean_9x16"], at), at


def test_faceless_video_falls_back_to_a_centre_crop(faceless):
    track = reframe.follow_face(faceless, 0.5, 2.0, CROP)
    assert track.faces_seen == 0 and track.moves == ()
    assert track.at(1.0) == 0.5
    assert evaluate(track.expression(), 1.0, 640, 202) == pytest.approx(320 - 101)


def test_expression_matches_the_planned_track_inside_the_frame():
    track = reframe.Track(first=0.3, moves=(reframe.Move(1.0, 2.0, 0.3, 0.7), reframe.Move(3.0, 3.5, 0.7, 0.95)))
    iw, ow = 1920, 608
    for t in np.arange(0.0, 4.0, 0.1):
        expected = min(iw - ow, max(0, track.at(t) * iw - ow / 2))
        assert evaluate(track.expression(), t, iw, ow) == pytest.approx(expected, abs=0.05)
    assert evaluate(track.expression(), 3.9, iw, ow) == iw - ow          # never past the right edge


def test_jitter_inside_the_dead_zone_does_not_move_the_camera():
    samples = [(i / 4, 0.5 + (0.02 if i % 2 else -0.02)) for i in range(40)]
    track = reframe.plan(samples, CROP)
    assert track.moves == () and track.first == pytest.approx(0.5, abs=0.03)


def test_lone_false_detections_are_ignored_and_a_lost_face_returns_to_centre():
    flicker = [(i / 4, 0.9 if i == 8 else None) for i in range(40)]
    assert reframe.plan(flicker, CROP).faces_seen == 0
    gone = [(i / 4, 0.2 if i < 8 else None) for i in range(40)]    # a face for 2 s, then none
    track = reframe.plan(gone, CROP)
    assert track.at(1.0) == pytest.approx(0.2, abs=0.01)
    assert track.at(9.5) == pytest.approx(0.5)
    leaving = track.moves[-1]
    assert leaving.start >= 1.75 + reframe.HOLD_SECONDS - 0.01          # it held on the last position first
    assert reframe.MIN_MOVE <= leaving.end - leaving.start <= reframe.MAX_MOVE


@pytest.fixture(scope="module")
def framing_cases(tmp_path_factory) -> dict[str, tuple[framing_set.Case, list]]:
    """Every case of the framing set rendered once and run through YuNet: {name: (case, samples)}."""
    folder = tmp_path_factory.mktemp("framing")
    result = {}
    for case in framing_set.CASES:
        video = framing_set.make(case, folder)
        result[case.name] = (case, reframe.detect_all_faces(video, 0.0, framing_set.SECONDS), video)
    return result


def test_yunet_keeps_the_whole_face_in_the_crop_in_every_one_face_case(framing_cases):
    report = {}
    for case in framing_set.ONE_FACE:
        _, samples, _ = framing_cases[case.name]
        track = reframe.plan(reframe.main_faces(samples), CROP)
        report[case.name] = (framing_set.whole_face_share(case, track, CROP),
                             framing_set.jitter_frames(case, track, CROP, reframe.DEAD_ZONE))
    print("\n".join(f"{name}: whole face {share:.0%}, jitter {jitter}" for name, (share, jitter) in report.items()))
    assert all(share >= 0.95 for share, _ in report.values()), report
    assert all(jitter == 0 for _, jitter in report.values()), report
    # The case that moves the camera most must really have moved it (the measure is not vacuous).
    _, samples, _ = framing_cases["walking"]
    assert reframe.plan(reframe.main_faces(samples), CROP).moves


def test_yunet_finds_the_tilted_faces_the_old_haar_cascade_missed(framing_cases):
    for name in ("rotated+30", "rotated-30"):
        case, samples, video = framing_cases[name]
        assert all(faces for _, faces in samples), name
        haar = reframe.detect_all_faces(video, 0.0, framing_set.SECONDS, detector="haar")
        assert not any(faces for _, faces in haar), name


def test_auto_chooses_the_right_framing_on_every_case(framing_cases):
    chosen = {name: reframe.choose(samples) for name, (_, samples, _) in framing_cases.items()}
    print(chosen)
    assert chosen == {case.name: case.expected for case in framing_set.CASES}


def test_split_follows_each_of_two_people_in_its_own_crop(framing_cases):
    case, samples, _ = framing_cases["two-people"]
    split = reframe.plan_split(samples)
    assert split is not None
    assert split.left.at(1.0) < 0.5 < split.right.at(1.0)
    for index, track in ((0, split.left), (1, split.right)):
        assert framing_set.whole_face_share(case, track, reframe.SPLIT_WIDTH, index) == 1.0
        x0, y0, x1, y1 = framing_set.face_box(case, index, 0.0)
        y = split.left_y if index == 0 else split.right_y
        assert y0 / framing_set.HEIGHT < y < y1 / framing_set.HEIGHT
    assert reframe.plan_split(framing_cases["walking"][1]) is None    # one person: nothing to split


def test_auto_renders_two_people_stacked_with_a_divider(framing_cases, tmp_path):
    import cv2

    from pipeline.media.render_graph import DIVIDER
    _, _, video = framing_cases["two-people"]
    result = render_clip(video, media.probe(video), 0.0, framing_set.SECONDS, [], tmp_path, FONTS, FAST,
                         aspects=["9x16"], reframe_mode="auto")
    info = media.probe(result["clean_9x16"])
    assert (info.width, info.height) == (1080, 1920)
    rgb = np.frombuffer(media.extract_frame(result["clean_9x16"], 2.0), np.uint8).reshape(1920, 1080, 3)
    half = (1920 - DIVIDER) // 2
    assert rgb[half + 1:half + DIVIDER - 1].min() > 200                  # the white line between them
    detector = cv2.FaceDetectorYN.create(str(reframe.MODEL), "", (540, 479), 0.7, 0.3, 5)
    for rows in (slice(0, half), slice(1920 - half, 1920)):
        small = cv2.resize(cv2.cvtColor(rgb[rows], cv2.COLOR_RGB2BGR), (540, 479))
        _, faces = detector.detect(small)
        assert faces is not None and len(faces) == 1                      # one person per half
        x, _, w, _ = faces[0][:4]
        assert 0.15 < (x + w / 2) / 540 < 0.85                            # wholly inside, near the middle
