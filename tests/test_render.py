"""Render real clips with the bundled ffmpeg and check the outputs by probing them."""

from __future__ import annotations

import logging
import os
import re
import sys
from itertools import pairwise
from pathlib import Path

import ffmpeg
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import mediagen  # noqa: E402

from pipeline import media  # noqa: E402
from pipeline.config import PROJECT_ROOT, RenderSettings  # noqa: E402
from pipeline.errors import BadInput, Cancelled  # noqa: E402
from pipeline.media import render_graph  # noqa: E402
from pipeline.media.render_graph import SIZES, VARIANTS, measure_loudness, render_clip, render_episode  # noqa: E402

FONTS = PROJECT_ROOT / "assets" / "fonts"
FAST = RenderSettings(preset="ultrafast")
TARGET = FAST.loudness_lufs
# Rows (fractions of the height) where the default preset (bold-pop) draws: bottom margin 0.28
# of a portrait frame, 0.07 of a landscape one, up to two lines of 0.05 x height above it.
BANDS = {"9x16": (0.58, 0.73), "16x9": (0.78, 0.94), "1x1": (0.78, 0.94)}

pytestmark = pytest.mark.timeout(180)


def speech_words(start: float = 0.3, step: float = 0.35, count: int | None = None) -> list[dict]:
    """Episode-absolute words for the speech sample, evenly spaced (no transcription needed)."""
    text = mediagen.SPEECH_TEXT.split()[:count]
    return [{"word": f" {w}", "start": round(start + i * step, 3), "end": round(start + i * step + 0.3, 3),
             "probability": 0.9} for i, w in enumerate(text)]


def frame(path: Path, at: float) -> np.ndarray:
    info = media.probe(path)
    raw = media.extract_frame(path, at)
    return np.frombuffer(raw, dtype=np.uint8).reshape(info.height, info.width, 3).astype(np.int16)


def mean_diff(a: np.ndarray, b: np.ndarray, top: float, bottom: float) -> float:
    """Mean absolute pixel difference between rows [top, bottom) given as fractions of the height."""
    h = a.shape[0]
    rows = slice(int(h * top), int(h * bottom))
    return float(np.abs(a[rows] - b[rows]).mean())


def check_variants(result: dict[str, Path], duration: float, fps: float | None = None,
                   variants=VARIANTS, audio: bool = True) -> None:
    """Every output: name, size, streams, duration +-0.1 s, frame rate and loudness +-1.5 LU of the target."""
    assert set(result) == set(variants)
    for variant, path in result.items():
        assert path.exists() and path.name == f"{variant}.mp4"
        info = media.probe(path)
        assert (info.width, info.height) == SIZES[variant.split("_", 1)[1]], variant
        assert info.has_video and info.video_codec == "h264", variant
        assert info.has_audio == audio and (not audio or info.audio_codec == "aac"), variant
        assert abs(info.duration - duration) <= 0.1, (variant, info.duration)
        if fps:
            assert info.fps == pytest.approx(fps, abs=0.01)
        if audio:
            loudness, peak = measure_loudness(path, 0, info.duration)
            assert abs(loudness - TARGET) <= 1.5, (variant, loudness)
            assert peak <= FAST.true_peak_db + 2.5, (variant, peak)   # AAC itself overshoots a limited signal


def parse_srt(path: Path) -> list[str]:
    blocks = path.read_text(encoding="utf-8").strip().split("\n\n")
    for block in blocks:
        lines = block.split("\n")
        assert re.fullmatch(r"\d\d:\d\d:\d\d,\d{3} --> \d\d:\d\d:\d\d,\d{3}", lines[1])
    return blocks


def leftovers(out_dir: Path) -> list[str]:
    return sorted(p.name for p in out_dir.iterdir() if ".partial" in p.name or p.name.startswith(".render-"))


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


def make(graph, seconds: float) -> None:
    media.run(graph, seconds)


@pytest.fixture(scope="module")
def speech_video(tmp_path_factory) -> Path:
    return mediagen.speech_video(tmp_path_factory.mktemp("src") / "speech.mp4")


@pytest.fixture(scope="module")
def rendered(speech_video, tmp_path_factory):
    """One 6 s clip of the 640x360 speech video (x264 ultrafast); words cover
    the clip's first 3.5 s only, so the end of the clip has no caption."""
    out_dir = tmp_path_factory.mktemp("clip") / "clip"
    progress: list[float] = []
    result = render_clip(speech_video, media.probe(speech_video), 2.0, 8.0, speech_words(2.3, 0.35, 10), out_dir,
                         FONTS, FAST, progress.append)
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


@pytest.mark.parametrize("aspect", ["9x16", "16x9"])
def test_captions_are_burned_only_in_the_caption_band_and_only_while_words_are_spoken(rendered, aspect):
    _, result, _ = rendered
    band = BANDS[aspect]
    spoken = 1.5   # clip time inside the words
    clean, subtitled = frame(result[f"clean_{aspect}"], spoken), frame(result[f"subtitled_{aspect}"], spoken)
    assert mean_diff(clean, subtitled, *band) > 3.0
    assert mean_diff(clean, subtitled, 0.0, band[0] - 0.1) < 1.0
    assert mean_diff(clean, subtitled, min(1.0, band[1] + 0.03), 1.0) < 1.0
    silent = 5.0   # after the last word (3.5 s) and its hold: no caption
    assert mean_diff(frame(result[f"clean_{aspect}"], silent), frame(result[f"subtitled_{aspect}"], silent),
                     0.0, 1.0) < 1.0


@pytest.mark.slow
def test_audio_only_source_gets_a_colour_background_a_waveform_and_captions(tmp_path):
    source = mediagen.speech_audio(tmp_path / "speech.m4a")
    info = media.probe(source)
    assert not info.has_video
    result = render_clip(source, info, 5.0, 9.0, speech_words(), tmp_path / "out", FONTS, FAST)
    check_variants(result, 4.0, fps=30)
    clean = frame(result["clean_9x16"], 1.0)
    assert np.abs(clean[:300] - np.array([0x11, 0x18, 0x27])).mean() < 4   # background_color #111827
    top = int((1920 - 360) * 0.4)   # the waveform's rows; speech has pauses, so look at a few moments

    def drawn(at: float) -> int:
        rows = frame(result["clean_9x16"], at)[top:top + 360]
        return int((np.abs(rows - np.array([0x11, 0x18, 0x27])).max(axis=2) > 60).sum())
    assert max(drawn(at) for at in (0.5, 1.5, 2.0, 2.5)) > 500
    subtitled = frame(result["subtitled_9x16"], 1.0)
    assert mean_diff(clean, subtitled, *BANDS["9x16"]) > 1.0
    assert (tmp_path / "out" / "thumb.jpg").stat().st_size > 0


@pytest.mark.slow
def test_audio_only_source_with_cover_art_renders_over_the_artwork(tmp_path):
    cover = tmp_path / "cover.png"
    make(ffmpeg.input("color=c=0xC02020:s=300x300:d=1", f="lavfi").output(str(cover), vframes=1), 0)
    source = tmp_path / "episode.mp3"
    make(ffmpeg.output(ffmpeg.input(str(mediagen.SPEECH), t=4).audio, ffmpeg.input(str(cover)).video, str(source),
                       acodec="libmp3lame", vcodec="png", **{"disposition:v": "attached_pic", "id3v2_version": 3}), 4)
    info = media.probe(source)
    assert not info.has_video
    result = render_clip(source, info, 0.5, 3.5, speech_words(0.0), tmp_path / "out", FONTS,
                         RenderSettings(preset="ultrafast", audio_visual="spectrum"))
    check_variants(result, 3.0, fps=30)
    top = frame(result["clean_16x9"], 1.0)[:150].reshape(-1, 3).mean(axis=0)
    assert top[0] > 120 and top[1] < 60 and top[2] < 60   # red artwork (a little darkened), not the colour


def test_portrait_source_fits_over_a_blurred_copy_in_16x9(tmp_path):
    source = mediagen.tone_video(tmp_path / "portrait.mp4", 4.0, width=360, height=640)
    result = render_clip(source, media.probe(source), 0.5, 3.5, speech_words(0.0), tmp_path / "out", FONTS, FAST)
    check_variants(result, 3.0, fps=15)
    wide = frame(result["clean_16x9"], 1.0)
    sides = np.concatenate([wide[:, :500], wide[:, -500:]], axis=1)
    assert sides.mean() > 10                                        # not black bars: the blurred picture
    sharpness = lambda part: np.abs(np.diff(part, axis=1)).mean()   # noqa: E731
    assert sharpness(sides) * 3 < sharpness(wide[:, 700:1200])       # blurred sides, sharp middle


def test_phone_video_with_rotation_metadata_is_treated_as_portrait(tmp_path):
    landscape = mediagen.tone_video(tmp_path / "landscape.mp4", 3.0, width=480, height=270)
    rotated = tmp_path / "rotated.mp4"
    make(ffmpeg.input(str(landscape), display_rotation=90).output(str(rotated), c="copy"), 3)
    info = media.probe(rotated)
    result = render_clip(rotated, info, 0.5, 2.5, speech_words(0.0), tmp_path / "out", FONTS, FAST)
    check_variants(result, 2.0)
    sharpness = lambda part: np.abs(np.diff(part, axis=1)).mean()   # noqa: E731
    wide = frame(result["clean_16x9"], 1.0)
    assert sharpness(np.concatenate([wide[:, :500], wide[:, -500:]], axis=1)) * 3 < sharpness(wide[:, 800:1100])
    tall = frame(result["clean_9x16"], 1.0)   # a 9:16 picture fills the portrait frame: no blurred bands
    assert sharpness(tall[:200]) > 0.3 * sharpness(tall[800:1100])


@pytest.mark.parametrize("width, height", [(320, 240), (321, 241)])
def test_4x3_and_odd_sized_sources_render(tmp_path, width, height):
    source = mediagen.tone_video(tmp_path / "src.mp4", 3.0, width=width, height=height)
    result = render_clip(source, media.probe(source), 0.5, 2.5, speech_words(0.0), tmp_path / "out", FONTS, FAST)
    check_variants(result, 2.0, fps=15)


def test_variable_frame_rate_source_renders_at_a_constant_rate(tmp_path):
    source = tmp_path / "vfr.mkv"
    # Frames 20-40 are thinned to one in three and the rest kept: a variable frame rate.
    video = (ffmpeg.input("testsrc2=size=480x270:rate=30:duration=4", f="lavfi")
             .filter("select", "not(between(n,20,40)*mod(n,3))"))
    audio = ffmpeg.input("sine=frequency=500:duration=4", f="lavfi")
    make(ffmpeg.output(video, audio, str(source), vcodec="libx264", preset="ultrafast", pix_fmt="yuv420p",
                       fps_mode="vfr"), 4)
    info = media.probe(source)
    result = render_clip(source, info, 0.0, 3.0, speech_words(0.0), tmp_path / "out", FONTS, FAST)
    check_variants(result, 3.0)
    rates = {media.probe(p).fps for p in result.values()}
    assert len(rates) == 1 and rates.pop() > 0


def test_clip_at_the_very_end_of_the_episode_and_odd_paths(tmp_path):
    source = mediagen.tone_video(tmp_path / "tone.mp4", 5.0)
    info = media.probe(source)
    out_dir = tmp_path / "it's a [clip], 1:2; ok"   # characters ffmpeg filter args must escape
    words = speech_words(3.0, 0.25)                    # words run past the end of the episode
    result = render_clip(source, info, 3.0, 12.0, words, out_dir, FONTS, FAST)
    check_variants(result, info.duration - 3.0)
    last = info.duration - 3.0 - 0.2
    clean, subtitled = frame(result["clean_16x9"], last), frame(result["subtitled_16x9"], last)
    assert mean_diff(clean, subtitled, *BANDS["16x9"]) > 3.0
    srt_end = parse_srt(out_dir / "captions.srt")[-1].split("\n")[1].split(" --> ")[1]
    h, m, s = srt_end.replace(",", ".").split(":")
    assert int(h) * 3600 + int(m) * 60 + float(s) <= info.duration - 3.0 + 0.001   # captions never outlast it


def test_square_variants_fit_mode_and_caption_style_choice(speech_video, tmp_path):
    result = render_clip(speech_video, media.probe(speech_video), 2.0, 4.0, speech_words(), tmp_path / "out", FONTS,
                         FAST, aspects=["9x16", "1x1"], reframe_mode="fit", caption_style="boxed")
    check_variants(result, 2.0, variants=("clean_9x16", "subtitled_9x16", "clean_1x1", "subtitled_1x1"))
    tall = frame(result["clean_9x16"], 1.0)
    # The whole 16:9 picture sits in the middle third; above and below is its blurred copy, not black.
    assert tall[:500].mean() > 10 and tall[-500:].mean() > 10
    sharpness = lambda part: np.abs(np.diff(part, axis=1)).mean()   # noqa: E731
    assert sharpness(tall[:500]) * 3 < sharpness(tall[700:1200])
    assert "BorderStyle" in (tmp_path / "out" / "captions_1x1.ass").read_text()
    style = next(line for line in (tmp_path / "out" / "captions_1x1.ass").read_text().splitlines()
                 if line.startswith("Style:")).split(",")
    assert style[15] == "3"   # the boxed preset draws an opaque box
    assert not (tmp_path / "out" / "clean_16x9.mp4").exists()
    assert media.probe(tmp_path / "out" / "thumb.jpg").width == 1080


def test_nvenc_failure_falls_back_to_libx264(speech_video, tmp_path, caplog, monkeypatch):
    # NVENC must fail wherever this runs, GPU or not: the preset it is given is one no h264_nvenc
    # accepts (a machine without NVENC fails on the encoder itself, as before).
    monkeypatch.setitem(render_graph.NVENC_PRESETS, "ultrafast", "no-such-preset")
    encoders = []
    real_run = media.run

    def recording_run(stream, *args, **kwargs):
        command = stream.get_args()
        encoders.extend(command[i + 1] for i, arg in enumerate(command) if arg == "-vcodec")
        return real_run(stream, *args, **kwargs)
    monkeypatch.setattr(media, "run", recording_run)
    settings = RenderSettings(preset="ultrafast", encoder="h264_nvenc")
    with caplog.at_level(logging.WARNING, logger="clipdesk.render"):
        result = render_clip(speech_video, media.probe(speech_video), 1.0, 3.0, speech_words(), tmp_path / "out",
                             FONTS, settings)
    check_variants(result, 2.0)
    assert set(encoders) == {"h264_nvenc", "libx264"} and encoders.index("h264_nvenc") < encoders.index("libx264")
    assert any("h264_nvenc failed" in r.getMessage() for r in caplog.records)
    assert leftovers(tmp_path / "out") == []


def test_full_episode_render_is_one_subtitled_16x9_file(tmp_path):
    source = mediagen.tone_video(tmp_path / "episode.mp4", 4.0, width=480, height=270)
    info = media.probe(source)
    progress: list[float] = []
    out = render_episode(source, info, speech_words(0.0, 0.3, 12), tmp_path / "full_16x9.mp4", FONTS, FAST,
                         progress.append, caption_style="clean-lower-third")
    probed = media.probe(out)
    assert (probed.width, probed.height) == (1920, 1080) and probed.has_audio
    assert abs(probed.duration - info.duration) <= 0.1
    assert progress[-1] == 1.0 and all(a <= b for a, b in pairwise(progress))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["episode.mp4", "full_16x9.mp4", "full_16x9_captions_16x9.ass"]


def test_bad_ranges_and_unknown_choices_raise_bad_input(speech_video, tmp_path):
    info = media.probe(speech_video)
    with pytest.raises(BadInput):
        render_clip(speech_video, info, 50.0, 55.0, [], tmp_path / "a", FONTS, FAST)
    with pytest.raises(BadInput):
        render_clip(speech_video, info, 5.0, 5.0, [], tmp_path / "b", FONTS, FAST)
    with pytest.raises(BadInput):
        render_clip(speech_video, info, 5.0, 4.0, [], tmp_path / "c", FONTS, FAST)
    with pytest.raises(BadInput, match="caption style 'comic-sans'"):
        render_clip(speech_video, info, 1.0, 2.0, [], tmp_path / "d", FONTS, FAST, caption_style="comic-sans")
    with pytest.raises(BadInput, match="reframe mode"):
        render_clip(speech_video, info, 1.0, 2.0, [], tmp_path / "e", FONTS, FAST, reframe_mode="zoom")


def test_cancel_from_progress_callback_stops_ffmpeg_and_leaves_nothing(speech_video, tmp_path):
    out_dir = tmp_path / "out"
    seen: list[float] = []

    def cancel(fraction: float) -> None:
        seen.append(fraction)
        if fraction > 0.05:   # past the loudness measurement: ffmpeg is encoding
            raise Cancelled("stop")

    with pytest.raises(Cancelled):
        render_clip(speech_video, media.probe(speech_video), 0.0, 30.0, speech_words(), out_dir, FONTS,
                    RenderSettings(), cancel)
    assert seen[-1] < 1.0                               # raised while ffmpeg was still working
    assert ffmpeg_processes_writing(out_dir) == []
    assert not any((out_dir / f"{v}.mp4").exists() for v in VARIANTS)
    assert not (out_dir / "thumb.jpg").exists()
    assert leftovers(out_dir) == []
