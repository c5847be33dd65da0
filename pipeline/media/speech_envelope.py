"""Where a clip's audio is sound and where it is silence, 20 ms at a time.

Used twice at render time: jump cuts cut the long silent runs, and caption words get their
edges snapped to the sound. Whisper's word timestamps come from attention, not from the
waveform: a word after a pause often starts a few hundred milliseconds early (in the
silence) and a word before one ends late, so a highlight lit from them runs ahead of the
voice. ``snap`` moves a word start back to the onset of a sound that began after the word
before ended and at most ``LOOKBACK`` before the start (Whisper sometimes places a word
late, after the sound that was really it); otherwise a start that lies in silence moves
forward to the first sound inside the word. A word end that lies in silence moves back to
the last sound, and no word overlaps the one before.

The audio is decoded in process (PyAV, mono 16 kHz); a frame is silent when it is
``SILENCE_BELOW_DB`` under the clip's loud level (its 95th percentile) or under
``FLOOR_DB``, so room tone and quiet music beds count as silence.
"""

from __future__ import annotations

from dataclasses import dataclass

import av
import numpy as np

SAMPLE_RATE = 16_000
FRAME = 0.02               # seconds per level frame
SILENCE_BELOW_DB = 30.0    # a frame this far under the clip's loud level is silence
FLOOR_DB = -60.0           # ... and anything under this is silence whatever the clip's level
MAX_SHIFT = 0.6            # a word end never moves back further than this
LOOKBACK = 0.6             # a sound that began at most this long before a word's start can be its onset


@dataclass(frozen=True)
class Envelope:
    silent: np.ndarray     # one bool per FRAME, clip-relative

    @classmethod
    def of(cls, source, start: float, duration: float) -> Envelope:
        level = frame_levels(source, start, duration)
        if not len(level):
            return cls(np.zeros(0, bool))
        return cls(level < max(FLOOR_DB, float(np.percentile(level, 95)) - SILENCE_BELOW_DB))

    def runs(self) -> list[tuple[float, float]]:
        """Clip-relative (start, end) of every silent stretch."""
        runs, begin = [], None
        for i, quiet in enumerate([*self.silent, False]):
            if quiet and begin is None:
                begin = i
            elif not quiet and begin is not None:
                runs.append((begin * FRAME, i * FRAME))
                begin = None
        return runs

    def is_silent(self, t: float) -> bool:
        i = int(t / FRAME)
        return 0 <= i < len(self.silent) and bool(self.silent[i])

    def snap(self, words: list[dict], clip_start: float) -> list[dict]:
        """Episode-timed words with their edges moved onto the sound (see the module doc)."""
        if not len(self.silent) or not self.silent.any():
            return words
        onsets = self.onsets()
        result: list[dict] = []
        for word in words:
            start, end = word["start"] - clip_start, word["end"] - clip_start
            previous_end = result[-1]["end"] - clip_start if result else 0.0
            # A sound that began after the word before ended, shortly before this start: this word's onset.
            earlier = [o for o in onsets if max(previous_end, start - LOOKBACK) <= o <= start]
            if earlier:
                start = earlier[0]
            elif self.is_silent(start):
                start = self._next_sound(start, end) or start
            if self.is_silent(end - FRAME / 2):
                sound = self._last_sound(max(start, end - MAX_SHIFT), end)
                if sound is not None and sound > start:
                    end = sound
            if result and result[-1]["end"] > start + clip_start:   # never overlap the word before
                result[-1]["end"] = max(result[-1]["start"], start + clip_start)
            result.append({**word, "start": start + clip_start, "end": max(start, end) + clip_start})
        return result

    def onsets(self) -> list[float]:
        """Clip times where sound begins after silence."""
        starts = np.flatnonzero(~self.silent[1:] & self.silent[:-1]) + 1
        return [float(i) * FRAME for i in starts]

    def _next_sound(self, t0: float, t1: float) -> float | None:
        for i in range(max(0, int(t0 / FRAME)), min(len(self.silent), int(np.ceil(t1 / FRAME)))):
            if not self.silent[i]:
                return max(t0, i * FRAME)
        return None

    def _last_sound(self, t0: float, t1: float) -> float | None:
        for i in range(min(len(self.silent), int(np.ceil(t1 / FRAME))) - 1, max(-1, int(t0 / FRAME) - 1), -1):
            if not self.silent[i]:
                return min(t1, (i + 1) * FRAME)
        return None


def frame_levels(source, start: float, duration: float) -> np.ndarray:
    """RMS level (dBFS) of each FRAME of the span, mono 16 kHz, decoded in process (PyAV).

    Streamed: only the levels are kept, so a whole episode costs a few MB, not its samples.
    """
    size = int(SAMPLE_RATE * FRAME)
    wanted = round(duration * SAMPLE_RATE)
    levels, pending, skip, taken = [], np.zeros(0, np.float32), None, 0
    with av.open(str(source)) as container:
        if not container.streams.audio:
            return np.zeros(0)
        stream = container.streams.audio[0]
        if start > 0:
            container.seek(int(start / stream.time_base), stream=stream, backward=True)
        resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        for frame in container.decode(stream):
            if frame.time is None:
                continue
            if frame.time >= start + duration or taken >= wanted:
                break
            if skip is None:   # the seek lands on a packet at or before ``start``
                skip = max(0, round((start - frame.time) * SAMPLE_RATE))
            for out in resampler.resample(frame):
                samples = out.to_ndarray().reshape(-1)
                cut = min(skip, len(samples))
                samples, skip = samples[cut:], skip - cut
                samples = samples[: wanted - taken]
                taken += len(samples)
                pending = np.concatenate([pending, samples])
                whole = len(pending) // size * size
                if whole:
                    block = pending[:whole].reshape(-1, size).astype(np.float64)
                    levels.append(10 * np.log10(np.mean(block ** 2, axis=1) + 1e-12))
                    pending = pending[whole:]
    return np.concatenate(levels) if levels else np.zeros(0)
