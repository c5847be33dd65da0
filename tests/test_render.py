"""Render real clips with the bundled ffmpeg and check the outputs by probing them."""

from __future__ import annotations

import os
import re
import sys
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import mediagen  # noqa: E402

from pipeline import media  # noqa: E402
from pipeline.config import PROJECT_ROOT, RenderSettings  # noqa: E402
from pipeline.errors import BadInput, Cancelled  # noqa: E402
from pipeline.render import SIZES, VARIANTS, render_clip  # noqa: E402

FONTS = PROJECT_ROOT / "assets" / "fonts"
FAST = RenderSettings(preset="ultrafast")
SIZE_OF = {variant: SIZES[variant.split("_")[1]] for variant in VARIANTS}

pytestmark = pytest.mark.timeout(120)


def speech_words(start: float = 0.3, step: float = 0.35) -> list[dict]:
    """Episode-absolute words for the speech sample, evenly spaced (no transcription needed)."""
    return [{"word": f" {w}", "start": round(start + i * step, 3), "end": round(start + i * step + 0.3, 3),
             "probability": 0.9} for i, w in enumerate(mediagen.SPEECH_TEXT.split())]


def frame(path: Path, at: float) -> np.ndarray:
    info = media.probe(path)
    raw = media.extract_frame(path, at)
    return np.frombuffer(raw, dtype=np.uint8).reshape(info.height, info.width, 3).astype(np.int16)


def mean_diff(a: np.ndarray, b: np.ndarray, top: float, bottom: float) -> float:
    """Mean absolute pixel difference between rows [top, bottom) given as fractions of the height."""
    h = a.shape[0]
    rows = slice(int(h * top), int(h * bottom))
    return float(np.abs(a[rows] - b[rows]).mean())


def check_variants(result: dict[str, Path], duration: float, fps: float | None = None) -> None:
    assert set(result) == set(VARIANTS)
    for variant, path in result.items():
        assert path.exists() and path.name == f"{variant}.mp4"
        info = media.probe(path)
        assert (info.width, info.height) == SIZE_OF[variant], variant
        assert info.has_video and info.has_audio, variant
        assert abs(info.duration - duration) <= 0.1, (variant, info.duration)
        if fps:
            assert info.fps == pytest.approx(fps, abs=0.01)


def parse_srt(path: Path) -> list[str]:
    blocks = path.read_text(encoding="utf-8").strip().split("\n\n")
    for block in blocks:
        lines = block.split("\n")
        assert re.fullmatch(r"\d\d:\d\d:\d\d,\d{3} --> \d\d:\d\d:\d\d,\d{3}", lines[1])
    return blocks


def leftovers(out_dir: Path) -> list[str]:
    return sorted(p.name for p in out_dir.iterdir() if ".partial" in p.name)


def ffmpeg_processes_writing(out_dir: Path) -> list[int]:
    """Pids of live processes whose command line mentions ``out_dir``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
            state = (entry / "stat").read_text().split(") ")[-1][:1]
        except OSError:
            continue
        if str(out_dir) in cmdline and state != "Z" and int(entry.name) != os.getpid():
            pids.append(int(entry.name))
    return pids


@pytest.fixture(scope="module")
def speech_video(tmp_path_factory) -> Path:
    return mediagen.speech_video(tmp_path_factory.mktemp("src") / "speech.mp4")


@pytest.fixture(scope="module")
def rendered(speech_video, tmp_path_factory):
    """One 6 s clip of the 640x360 speech video with default (production) settings."""
    out_dir = tmp_path_factory.mktemp("clip") / "clip"
    progress: list[float] = []
    result = render_clip(speech_video, media.probe(speech_video), 2.0, 8.0, speech_words(), out_dir,
                         FONTS, RenderSettings(), progress.append)
    return out_dir, result, progress


def test_renders_four_variants_srt_and_thumbnail(rendered):
    out_dir, result, _ = rendered
    check_variants(result, 6.0, fps=15)
    assert len(parse_srt(out_dir / "captions.srt")) > 0
    thumb = out_dir / "thumb.jpg"
    assert thumb.stat().st_size > 0
    assert (media.probe(thumb).width, media.probe(thumb).height) == (1920, 1080)
    assert (out_dir / "captions_9x16.ass").exists() and (out_dir / "captions_16x9.ass").exists()
    assert leftovers(out_dir) == []


def test_progress_is_non_decreasing_and_ends_at_one(rendered):
    _, _, progress = rendered
    assert progress and progress[-1] == 1.0
    assert all(0.0 <= a <= b <= 1.0 for a, b in pairwise(progress))


@pytest.mark.parametrize("aspect, band", [("9x16", (0.55, 0.80)), ("16x9", (0.83, 0.95))])
def test_captions_are_burned_only_in_the_caption_band(rendered, aspect, band):
    _, result, _ = rendered
    at = 3.0   # the clip is covered by evenly spaced words, so a caption is on screen
    clean, subtitled = frame(result[f"clean_{aspect}"], at), frame(result[f"subtitled_{aspect}"], at)
    assert mean_diff(clean, subtitled, *band) > 3.0
    assert mean_diff(clean, subtitled, 0.0, 0.4) < 1.0


def test_audio_only_source_gets_a_colour_background(tmp_path):
    source = mediagen.speech_audio(tmp_path / "speech.m4a")
    info = media.probe(source)
    assert not info.has_video
    result = render_clip(source, info, 5.0, 9.0, speech_words(), tmp_path / "out", FONTS, FAST)
    check_variants(result, 4.0, fps=30)
    clean = frame(result["clean_9x16"], 1.0)
    assert np.abs(clean[:100] - np.array([0x11, 0x18, 0x27])).mean() < 4   # background_color #111827
    subtitled = frame(result["subtitled_9x16"], 1.0)
    assert mean_diff(clean, subtitled, 0.55, 0.80) > 1.0
    assert (tmp_path / "out" / "thumb.jpg").stat().st_size > 0


def test_portrait_source_is_pillarboxed_in_16x9(tmp_path):
    source = mediagen.tone_video(tmp_path / "portrait.mp4", 4.0, width=360, height=640)
    result = render_clip(source, media.probe(source), 0.5, 3.5, speech_words(0.0), tmp_path / "out", FONTS, FAST)
    check_variants(result, 3.0, fps=15)
    wide = frame(result["clean_16x9"], 1.0)
    assert wide[:, :600].mean() < 3 and wide[:, -600:].mean() < 3   # black bars left and right
    assert wide[:, 800:1100].mean() > 30                               # the picture in the middle


def test_clip_end_past_the_episode_is_clamped_and_odd_paths_work(tmp_path):
    source = mediagen.tone_video(tmp_path / "tone.mp4", 5.0)
    out_dir = tmp_path / "it's a [clip], 1:2; ok"   # characters ffmpeg filter args must escape
    result = render_clip(source, media.probe(source), 3.0, 12.0, speech_words(0.0), out_dir, FONTS, FAST)
    check_variants(result, 2.0)
    clean, subtitled = frame(result["clean_16x9"], 1.0), frame(result["subtitled_16x9"], 1.0)
    assert mean_diff(clean, subtitled, 0.83, 0.95) > 3.0


def test_bad_ranges_raise_bad_input(speech_video, tmp_path):
    info = media.probe(speech_video)
    with pytest.raises(BadInput):
        render_clip(speech_video, info, 50.0, 55.0, [], tmp_path / "a", FONTS, FAST)
    with pytest.raises(BadInput):
        render_clip(speech_video, info, 5.0, 5.0, [], tmp_path / "b", FONTS, FAST)
    with pytest.raises(BadInput):
        render_clip(speech_video, info, 5.0, 4.0, [], tmp_path / "c", FONTS, FAST)


def test_cancel_from_progress_callback_stops_ffmpeg_and_leaves_nothing(speech_video, tmp_path):
    out_dir = tmp_path / "out"
    seen: list[float] = []

    def cancel(fraction: float) -> None:
        seen.append(fraction)
        raise Cancelled("stop")

    with pytest.raises(Cancelled):
        render_clip(speech_video, media.probe(speech_video), 0.0, 30.0, speech_words(), out_dir, FONTS,
                    RenderSettings(), cancel)
    assert seen == [seen[0]] and seen[0] < 1.0          # raised while ffmpeg was still working
    assert ffmpeg_processes_writing(out_dir) == []
    assert not any((out_dir / f"{v}.mp4").exists() for v in VARIANTS)
    assert not (out_dir / "thumb.jpg").exists()
    assert leftovers(out_dir) == []
