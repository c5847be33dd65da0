"""How loud each sentence is, from the episode's 16 kHz mono PCM ``audio.wav``.

Read in 0.5 s frames with the standard library's ``wave`` (no ffmpeg pass needed: the
extract_audio stage already wrote plain PCM), so a two-hour file costs one streaming read.
Values are in dBFS; the heuristic only compares a passage with the episode's median.
"""

from __future__ import annotations

import bisect
import math
import wave
from pathlib import Path

import numpy as np

from pipeline.enrichment.sentences import Sentence

FRAME_SECONDS = 0.5
SILENCE_DB = -90.0


def frame_levels(path: Path) -> list[float]:
    """RMS level of every 0.5 s frame, in dBFS."""
    levels = []
    with wave.open(str(path), "rb") as wav:
        if wav.getsampwidth() != 2:
            return []
        channels, rate = wav.getnchannels(), wav.getframerate()
        size = max(1, int(rate * FRAME_SECONDS))
        while chunk := wav.readframes(size):
            samples = np.frombuffer(chunk, dtype="<i2").astype(np.float32) / 32768.0
            if channels > 1:
                samples = samples[: len(samples) // channels * channels].reshape(-1, channels).mean(axis=1)
            rms = float(np.sqrt(np.mean(samples * samples))) if samples.size else 0.0
            levels.append(20 * math.log10(rms) if rms > 0 else SILENCE_DB)
    return levels


def sentence_levels(path: Path, sents: list[Sentence]) -> list[float] | None:
    """Mean level of each sentence, or None when there is no readable audio."""
    try:
        levels = frame_levels(path)
    except (OSError, EOFError, wave.Error):
        return None
    if not levels:
        return None
    times = [i * FRAME_SECONDS for i in range(len(levels))]
    result = []
    for s in sents:
        lo = max(0, bisect.bisect_right(times, s.start) - 1)
        hi = max(lo + 1, bisect.bisect_left(times, s.end))
        window = levels[lo:hi] or [SILENCE_DB]
        result.append(sum(window) / len(window))
    return result
