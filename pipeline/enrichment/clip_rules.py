"""The rules every clip suggestion obeys, whoever made it (LLM, heuristic or operator).

- a clip starts at a sentence start and ends at a sentence end (so at word boundaries);
- its length is within the rules' min/max seconds;
- two clips overlap by at most ``MAX_OVERLAP`` of the shorter one;
- timestamps outside the episode are dropped with a note, never silently clamped;
- a clip does not run across a change of subject (``crossed``).
Chapters are sorted, start inside the episode and the first starts at 0 (they cover it).
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

from pipeline.config import EnrichSettings
from pipeline.enrichment.sentences import Sentence
from pipeline.errors import BadInput

MAX_OVERLAP = 0.2
OUTSIDE_TOLERANCE_SECONDS = 1.0   # a model rounding 39.7 s up to 40.0 s is not inventing a timestamp


@dataclass(frozen=True)
class ClipRules:
    min_seconds: float = 15.0
    max_seconds: float = 60.0
    max_clips: int = 5
    min_clips: int = 3


def rules_for(settings: EnrichSettings, options: dict | None = None) -> ClipRules:
    """The config's clip rules with the job's ``max_clips``/``min_clip_seconds``/``max_clip_seconds`` over them."""
    options = options or {}
    max_clips = int(options.get("max_clips") or settings.max_clips)
    min_seconds = float(options.get("min_clip_seconds") or settings.min_clip_seconds)
    max_seconds = float(options.get("max_clip_seconds") or settings.max_clip_seconds)
    if max_clips < 1:
        raise BadInput(f"max_clips must be at least 1 (got {max_clips}).")
    if not 0 < min_seconds <= max_seconds:
        raise BadInput(f"The clip length range {min_seconds:g}-{max_seconds:g} s is empty; "
                       "min_clip_seconds must be positive and not above max_clip_seconds.")
    return ClipRules(min_seconds, max_seconds, max_clips, min(settings.min_clips, max_clips))


def overlap(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Shared seconds as a fraction of the shorter clip (0 = disjoint, 1 = one inside the other)."""
    shared = min(a[1], b[1]) - max(a[0], b[0])
    shortest = min(a[1] - a[0], b[1] - b[0])
    return max(0.0, shared) / shortest if shortest > 0 else 1.0


def clear_of(clip: dict, others: list[dict]) -> bool:
    """Whether ``clip`` overlaps none of ``others`` by more than MAX_OVERLAP."""
    return all(overlap((clip["start"], clip["end"]), (o["start"], o["end"])) <= MAX_OVERLAP for o in others)


def crossed(span: tuple[float, float], topic_starts: list[float]) -> float | None:
    """The first change of subject strictly inside ``span`` (start, end), or None."""
    k = bisect.bisect_right(topic_starts, span[0] + 1e-6)
    return topic_starts[k] if k < len(topic_starts) and topic_starts[k] < span[1] - 1e-6 else None


def span_label(start: float, end: float | None = None) -> str:
    """``1:02.5`` or ``1:02.5-1:30.0``, as notes name times."""
    return _fmt(start) if end is None else f"{_fmt(start)}-{_fmt(end)}"


def select(clips: list[dict], limit: int, chosen: list[dict] | None = None) -> list[dict]:
    """Best score first, skipping any clip overlapping a kept one by more than MAX_OVERLAP."""
    kept = list(chosen or [])
    for clip in sorted(clips, key=lambda c: (-c["score"], c["start"])):
        if len(kept) >= limit:
            break
        if clear_of(clip, kept):
            kept.append(clip)
    return sorted(kept, key=lambda c: (-c["score"], c["start"]))


def snap(sents: list[Sentence], start: float, end: float, rules: ClipRules,
         duration: float) -> tuple[float, float] | str:
    """Snap a proposed clip to sentence bounds within the length rules; a note (str) when impossible."""
    label = f"{_fmt(start)}-{_fmt(end)}"
    if not (_finite(start) and _finite(end)) or end <= start:
        return f"Dropped the clip {label}: its times make no sense."
    if start < -OUTSIDE_TOLERANCE_SECONDS or end > duration + OUTSIDE_TOLERANCE_SECONDS:
        return f"Dropped the clip {label}: it lies outside the episode (0-{_fmt(duration)})."
    if not sents:
        return f"Dropped the clip {label}: there is no speech to cut at."
    starts = [s.start for s in sents]
    ends = [s.end for s in sents]
    i = _nearest(starts, start)
    j = max(i, _nearest(ends, end))
    while ends[j] - starts[i] < rules.min_seconds:        # too short: take in the next, else the previous sentence
        if j + 1 < len(sents) and ends[j + 1] - starts[i] <= rules.max_seconds:
            j += 1
        elif i > 0 and ends[j] - starts[i - 1] <= rules.max_seconds:
            i -= 1
        else:
            return f"Dropped the clip {label}: no run of whole sentences there lasts {rules.min_seconds:g} s."
    while ends[j] - starts[i] > rules.max_seconds and j > i:   # too long: let go of trailing sentences
        j -= 1
    if not rules.min_seconds <= ends[j] - starts[i] <= rules.max_seconds:
        return (f"Dropped the clip {label}: its sentences cannot make a clip of "
                f"{rules.min_seconds:g}-{rules.max_seconds:g} s.")
    return starts[i], ends[j]


def snap_to_words(words: list[dict], start: float, end: float) -> tuple[float, float]:
    """Nearest word start for ``start`` and nearest word end for ``end`` (operator trims)."""
    words = [w for w in words if w["word"].strip()]
    if not words:
        raise BadInput("This episode has no transcribed words to trim a clip to.")
    first = min(words, key=lambda w: abs(w["start"] - start))
    last = min((w for w in words if w["end"] > first["start"]), key=lambda w: abs(w["end"] - end), default=None)
    if last is None:
        raise BadInput("There is no word after the new start to end the clip at.")
    return round(float(first["start"]), 3), round(float(last["end"]), 3)


def check_chapters(chapters: list, duration: float) -> list[dict]:
    """Chapters as ``[{"start", "title"}]`` sorted and inside the episode; BadInput naming the problem."""
    result = []
    for n, chapter in enumerate(chapters, start=1):
        if not isinstance(chapter, dict):
            raise BadInput(f"Chapter {n} must have a start time and a title.")
        try:
            start = float(chapter.get("start"))
        except (TypeError, ValueError):
            raise BadInput(f"Chapter {n} has no valid start time.") from None
        title = str(chapter.get("title") or "").strip()
        if not title:
            raise BadInput(f"Chapter {n} needs a title.")
        if not _finite(start) or start < 0 or start >= max(duration, 1e-9):
            raise BadInput(f"Chapter {n} ('{title}') starts at {_fmt(start)}, outside the episode "
                           f"(0-{_fmt(duration)}).")
        if result and start <= result[-1]["start"]:
            raise BadInput(f"Chapter {n} ('{title}') must start after chapter {n - 1}; keep chapters in time order.")
        result.append({"start": round(start, 3), "title": title})
    if result and result[0]["start"] != 0:
        raise BadInput("The first chapter must start at 0:00 so the chapters cover the whole episode.")
    return result


def sentence_start_at_or_before(sents: list[Sentence], t: float) -> float:
    starts = [s.start for s in sents]
    k = bisect.bisect_right(starts, t + 1e-6) - 1
    return starts[max(k, 0)] if starts else 0.0


def _nearest(values: list[float], target: float) -> int:
    k = bisect.bisect_left(values, target)
    candidates = [c for c in (k - 1, k) if 0 <= c < len(values)]
    return min(candidates, key=lambda c: abs(values[c] - target))


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _fmt(seconds) -> str:
    if not _finite(seconds):
        return str(seconds)
    minutes, secs = divmod(max(0.0, float(seconds)), 60)
    return f"{int(minutes)}:{secs:04.1f}"
