"""Caption timing measured end to end: known word onsets -> bundled Whisper model -> the
subtitled render -> the frames at which each word lights up (tests/caption_timing.py)."""

from __future__ import annotations

import caption_timing
import numpy as np
import pytest

from pipeline import media
from pipeline.config import PROJECT_ROOT, RenderSettings, TranscribeSettings
from pipeline.media.render_graph import render_outputs

pytestmark = [pytest.mark.model, pytest.mark.slow, pytest.mark.timeout(300)]


def test_caption_highlights_light_within_100_ms_median_200_ms_p95_of_the_voice(tmp_path):
    from pipeline.stages.transcribe import transcribe_file
    video, truth = caption_timing.make(tmp_path)
    info = media.probe(video)
    words = [w for s in transcribe_file(video, TranscribeSettings(), info.duration)["segments"] for w in s["words"]]
    assert len(words) >= 0.8 * len(truth)
    out = tmp_path / "subtitled_16x9.mp4"
    render_outputs(video, info, 0.0, info.duration, words, {"subtitled_16x9": out}, None,
                   PROJECT_ROOT / "assets" / "fonts", RenderSettings(preset="ultrafast"))
    detected = caption_timing.highlight_onsets(out)
    assert 0.8 * len(truth) <= len(detected) <= 1.5 * len(truth)      # one highlight per word, give or take
    errors = caption_timing.errors(detected, truth)
    print(f"caption onset error: median {np.median(errors) * 1000:.0f} ms, "
          f"p95 {np.percentile(errors, 95) * 1000:.0f} ms, max {errors.max() * 1000:.0f} ms")
    assert np.median(errors) <= 0.100
    assert np.percentile(errors, 95) <= 0.200
