"""Jump cuts: pauses (and filler words) cut inside a clip in the one render pass, captions on
the cut timeline, no clicks at the joins. Speech is espeak-ng phrases joined with known
pauses over quiet room tone, so where every phrase is on both timelines is known."""

from __future__ import annotations

import re

import av
import mediagen
import numpy as np
import pytest

from pipeline import media
from pipeline.config import PROJECT_ROOT, RenderSettings, TranscribeSettings
from pipeline.media import jump_cuts
from pipeline.media.render_graph import render_clip
from pipeline.media.speech_envelope import Envelope

FONTS = PROJECT_ROOT / "assets" / "fonts"
PHRASES = ["the quick brown fox jumps over the lazy dog", "we render every clip in one pass",
           "long pauses are cut away", "and the captions follow the words"]
PAUSES = [1.5, 2.0, 1.2]           # inserted after each phrase but the last
TONE = 0.005                       # room tone peak amplitude (about -49 dBFS RMS)
MAX_PAUSE = 0.5
CUTTING = RenderSettings(preset="ultrafast", remove_silences=True, max_pause_seconds=MAX_PAUSE)

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def paused_speech(tmp_path_factory):
    """(video, phrase spans) of the four phrases with the known pauses between them."""
    folder = tmp_path_factory.mktemp("pauses")
    spans = mediagen.spoken_pieces(folder / "speech.wav", PHRASES, PAUSES)
    return mediagen.picture_with(folder / "speech.wav", folder / "speech.mp4", tone_amplitude=TONE), spans


def on_cut_timeline(spans: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Where each phrase should be after every pause is shortened to MAX_PAUSE."""
    moved, removed = [], 0.0
    for i, (start, end) in enumerate(spans):
        moved.append((start - removed, end - removed))
        if i < len(PAUSES):
            removed += PAUSES[i] - MAX_PAUSE
    return moved


def test_timeline_maps_times_and_words_onto_the_kept_spans():
    timeline = jump_cuts.keep([(2.0, 3.0), (3.02, 4.0), (7.5, 9.0)], 10.0)
    assert timeline.spans == ((0.0, 2.0), (4.0, 7.5), (9.0, 10.0))       # the 20 ms sliver left is dropped too
    assert timeline.duration == pytest.approx(6.5) and timeline.joins() == [2.0, 5.5]
    assert timeline.to_new(5.0) == pytest.approx(3.0) and timeline.to_new(2.5) is None
    words = [{"word": " a", "start": 11.0, "end": 11.5}, {"word": " cut", "start": 12.2, "end": 12.8},
             {"word": " across", "start": 17.0, "end": 19.5}]
    assert [(w["word"], w["start"], w["end"]) for w in timeline.words(words, clip_start=10.0)] == [
        (" a", 1.0, 1.5), (" across", pytest.approx(5.0), pytest.approx(6.0))]


def test_filler_words_are_cut_by_their_timestamps(paused_speech):
    video, spans = paused_speech
    um = {"word": " Um,", "start": spans[1][0] + 0.3, "end": spans[1][0] + 0.6}
    duration = media.probe(video).duration
    kept = jump_cuts.plan(Envelope.of(video, 0.0, duration), 0.0, duration, [um], MAX_PAUSE, cut_fillers=True)
    assert kept.to_new(spans[1][0] + 0.45) is None and kept.to_new(spans[1][0] + 0.1) is not None
    assert jump_cuts.is_filler(" uh...") and not jump_cuts.is_filler(" hum")


@pytest.mark.model
@pytest.mark.slow
def test_pauses_are_cut_in_the_render_with_captions_on_the_new_timeline(paused_speech, tmp_path):
    from pipeline.stages.transcribe import transcribe_file
    video, spans = paused_speech
    info = media.probe(video)
    words = [w for s in transcribe_file(video, TranscribeSettings(), info.duration)["segments"] for w in s["words"]]
    assert len(words) >= 15
    result = render_clip(video, info, 0.0, info.duration, words, tmp_path, FONTS, CUTTING, aspects=["9x16"])

    # Shorter by the inserted pauses beyond MAX_PAUSE each, within 0.1 s; picture and sound alike.
    expected = info.duration - sum(p - MAX_PAUSE for p in PAUSES)
    out = media.probe(result["subtitled_9x16"])
    with av.open(str(result["subtitled_9x16"])) as container:
        video_seconds = float(container.streams.video[0].duration * container.streams.video[0].time_base)
    assert out.duration == pytest.approx(expected, abs=0.1)
    assert video_seconds == pytest.approx(expected, abs=0.1)

    # Every highlighted caption word starts inside its phrase's span on the cut timeline.
    moved = on_cut_timeline(spans)
    ass = (tmp_path / "captions_9x16.ass").read_text(encoding="utf-8")
    starts = sorted({_seconds(m) for m in re.findall(r"^Dialogue: 0,([0-9:.]+),", ass, re.M)})
    assert len(starts) >= 15
    assert all(any(a - 0.1 <= t <= b + 0.1 for a, b in moved) for t in starts), (starts, moved)
    assert starts[-1] > moved[-1][0] - 0.1        # the last phrase is captioned where it now is

    # No clicks: around every join the audio moves no more than a fraction of the room tone.
    samples, rate = _audio(result["clean_9x16"])
    tone_peak = max(np.abs(samples[int((b + 0.1) * rate):int((b + 0.3) * rate)]).max() for _, b in moved[:-1])
    for (_, end), (start, _) in zip(moved, moved[1:], strict=False):
        join = (end + start) / 2
        window = samples[int((join - 0.03) * rate):int((join + 0.03) * rate)]
        assert np.abs(np.diff(window)).max() < 0.1 * tone_peak, join


def _seconds(stamp: str) -> float:
    hours, minutes, seconds = stamp.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def _audio(path) -> tuple[np.ndarray, int]:
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=stream.rate)
        chunks = [out.to_ndarray().reshape(-1) for frame in container.decode(stream)
                  for out in resampler.resample(frame)]
    return np.concatenate(chunks), stream.rate
