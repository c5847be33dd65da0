"""Jump cuts: which parts of a clip to keep when its dead air (and optionally filler words) goes.

Pauses are found in the audio itself (``speech_envelope``), not in the word timestamps:
Whisper stretches word edges over silence by up to a few hundred milliseconds, which would
leave much of a pause in place. Every silent run longer than ``max_pause`` is
shortened to ``max_pause`` (half of it kept after the last sound, half before the next), so
speech keeps a natural breath. Filler words (``um``, ``uh``...) are cut by their word
timestamps.

The result is a ``Timeline``: the spans kept (clip-relative seconds on the original
timeline) and how to map times (face samples, caption words) onto the cut timeline. The
render graph trims and joins the spans in its one ffmpeg pass.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pipeline.media.speech_envelope import Envelope

MIN_KEEP = 0.05            # spans shorter than this are dropped (they would only flash)
FILLERS = frozenset({"um", "uh", "uhm", "umm", "erm", "er", "ah", "hmm", "mm"})


@dataclass(frozen=True)
class Timeline:
    """The spans of a clip kept after cutting, clip-relative, in order, not overlapping."""
    spans: tuple[tuple[float, float], ...]

    @property
    def duration(self) -> float:
        return sum(end - start for start, end in self.spans)

    @property
    def cuts(self) -> int:
        return max(0, len(self.spans) - 1)

    def to_new(self, t: float) -> float | None:
        """Where original clip time ``t`` lands on the cut timeline (None: it was cut)."""
        offset = 0.0
        for start, end in self.spans:
            if start <= t <= end:
                return offset + t - start
            offset += end - start
        return None

    def joins(self) -> list[float]:
        """Times on the cut timeline where two kept spans meet."""
        result, offset = [], 0.0
        for start, end in self.spans[:-1]:
            offset += end - start
            result.append(offset)
        return result

    def words(self, words: list[dict], clip_start: float) -> list[dict]:
        """Episode-timed words -> words on the cut timeline (starting at 0); a word cut away is
        dropped, a word cut in part keeps the part that remains."""
        result = []
        for word in words:
            start, end = word["start"] - clip_start, word["end"] - clip_start
            kept = [(max(start, s), min(end, e)) for s, e in self.spans if min(end, e) > max(start, s)]
            if not kept:
                continue
            new_start, new_end = self.to_new(kept[0][0]), self.to_new(kept[-1][1])
            result.append({**word, "start": new_start, "end": new_end})
        return result


def uncut(duration: float) -> Timeline:
    return Timeline(((0.0, duration),))


def plan(envelope: Envelope, start: float, duration: float, words: list[dict], max_pause: float,
         cut_fillers: bool = False) -> Timeline:
    """The spans of the clip ``[start, start + duration)`` to keep (clip-relative), from its
    audio ``envelope`` and its episode-timed ``words``."""
    removed = [(s + max_pause / 2, min(duration, e) - max_pause / 2)
               for s, e in envelope.runs() if min(duration, e) - s > max_pause]
    if cut_fillers:
        removed += [(w["start"] - start, w["end"] - start) for w in words
                    if is_filler(w["word"]) and w["end"] > start and w["start"] < start + duration]
    return keep(removed, duration)


def keep(removed: list[tuple[float, float]], duration: float) -> Timeline:
    """The complement of ``removed`` inside ``[0, duration]``, without slivers."""
    spans, position = [], 0.0
    for start, end in sorted((max(0.0, s), min(duration, e)) for s, e in removed):
        if end <= start:
            continue
        if start - position >= MIN_KEEP:
            spans.append((position, start))
        position = max(position, end)
    if duration - position >= MIN_KEEP:
        spans.append((position, duration))
    if not spans:   # nothing but silence: keep it all rather than render nothing
        spans = [(0.0, duration)]
    return Timeline(tuple((round(s, 3), round(e, 3)) for s, e in spans))


def is_filler(word: str) -> bool:
    return re.sub(r"[^a-z]", "", word.lower()) in FILLERS
