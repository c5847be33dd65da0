"""Enrich: title, summary, chapters, keywords and scored clip suggestions.

This is the offline heuristic enricher. It works on sentences rebuilt from Whisper's
word timestamps, so every clip starts at a sentence start and ends at a sentence end.
A clip's score (0-100) sums four 0-25 parts, the pattern peers found useful:
  hook          - opens with a question, a number or a framing phrase ("the first...")
  substance     - density of the episode's keywords
  shape         - length close to the 20-40 s sweet spot for short-form video
  delivery      - lively speech rate, questions answered, concrete numbers
"""

from __future__ import annotations

import json
import math
import re
import time
import uuid
from collections import Counter
from dataclasses import dataclass

from pipeline import db, storage, transcript
from pipeline.config import EnrichSettings
from pipeline.context import StageContext

STOPWORDS = set("""a about above after again against all also am an and any are as at be because been before
being below between both but by can could did do does doing down during each even every few for from
further get gets got had has have having he her here hers herself him himself his how i if in into is it
its itself just let like ll me more most much my myself no nor not now of off on once one only or other
our ours ourselves out over own really re same say says she should so some such than that thats the
their theirs them themselves then there these they thing things think this those through to today too
under until up us ve very was way we well were what when where which while who whom why will with would
yeah you your yours yourself yourselves back see going know right lot""".split())

HOOK_OPENERS = ("why", "how", "what", "here's", "here is", "the first", "the second", "the third",
                "the secret", "the problem", "the truth", "the lesson", "imagine", "never", "stop")
SWEET_SPOT = (20.0, 40.0)


@dataclass(frozen=True)
class Sentence:
    start: float
    end: float
    text: str
    word_count: int


def sentences(words: list[dict]) -> list[Sentence]:
    """Rebuild sentences from words: a sentence ends at a word ending in . ? or !"""
    result, current = [], []
    for word in words:
        if not word["word"].strip():
            continue
        current.append(word)
        if re.search(r"[.?!][\"')\]]*$", word["word"].strip()):
            result.append(_sentence(current))
            current = []
    if current:
        result.append(_sentence(current))
    return result


def _sentence(words: list[dict]) -> Sentence:
    text = " ".join(w["word"].strip() for w in words)
    return Sentence(words[0]["start"], words[-1]["end"], text, len(words))


def tokens(text: str) -> list[str]:
    return [t for t in re.findall(r"[a-z][a-z'-]+", text.lower()) if t not in STOPWORDS and len(t) > 2]


def keywords(sents: list[Sentence], limit: int = 8) -> list[str]:
    """Frequent content words, ranked by count with a bonus for spread across sentences."""
    counts = Counter(t for s in sents for t in tokens(s.text))
    spread = Counter(t for s in sents for t in set(tokens(s.text)))
    ranked = sorted(counts, key=lambda t: (counts[t] + 0.5 * spread[t], len(t)), reverse=True)
    return ranked[:limit]


def _keyword_weight(text: str, top: list[str]) -> float:
    weights = {word: 1.0 - i / (2 * len(top)) for i, word in enumerate(top)}
    toks = tokens(text)
    return sum(weights.get(t, 0.0) for t in toks) / max(1, len(text.split()))


def score_window(window: list[Sentence], top: list[str]) -> tuple[float, str]:
    """Score a run of sentences 0-100 and say why in one sentence."""
    first, text = window[0], " ".join(s.text for s in window)
    duration = window[-1].end - first.start
    lowered = first.text.lower()
    reasons = []

    if first.text.endswith("?"):
        hook = 25.0
        reasons.append("opens with a question")
    elif lowered.startswith(HOOK_OPENERS):
        hook = 20.0
        reasons.append("opens with a strong framing line")
    elif re.search(r"\d", first.text):
        hook = 18.0
        reasons.append("opens with a concrete number")
    else:
        hook = 14.0 if first.word_count <= 8 else 8.0

    density = _keyword_weight(text, top)
    substance = min(25.0, density * 100.0)
    if substance >= 12:
        hits = [k for k in top if k in text.lower()][:3]
        reasons.append("dense in the episode's key topics (" + ", ".join(hits) + ")")

    low, high = SWEET_SPOT
    distance = 0.0 if low <= duration <= high else min(abs(duration - low), abs(duration - high))
    shape = max(0.0, 25.0 - distance * 1.2)
    if shape >= 20:
        reasons.append(f"{duration:.0f} s, a good length for short video")

    words = sum(s.word_count for s in window)
    rate = words / max(duration, 1e-6)
    delivery = 10.0 * math.exp(-((rate - 2.8) ** 2) / 1.0)
    questions = sum(s.text.endswith("?") for s in window[:-1])
    if questions:
        delivery += 8.0
        reasons.append("asks a question and answers it")
    if re.search(r"\d|\b(first|second|third|one|two|three)\b", text.lower()):
        delivery += 7.0
    delivery = min(25.0, delivery)

    total = round(hook + substance + shape + delivery, 1)
    reason = (reasons[0][0].upper() + "; ".join(reasons)[1:] + ".") if reasons else "A complete passage of steady speech."
    return min(100.0, total), reason


def candidate_windows(sents: list[Sentence], settings: EnrichSettings) -> list[list[Sentence]]:
    windows = []
    for i in range(len(sents)):
        for j in range(i, len(sents)):
            duration = sents[j].end - sents[i].start
            if duration > settings.max_clip_seconds:
                break
            if duration >= settings.min_clip_seconds:
                windows.append(sents[i:j + 1])
    return windows


def pick_clips(sents: list[Sentence], top: list[str], settings: EnrichSettings, max_clips: int) -> list[dict]:
    """Best-scoring windows first, never overlapping each other."""
    scored = [(score_window(w, top), w) for w in candidate_windows(sents, settings)]
    scored.sort(key=lambda item: (-item[0][0], item[1][0].start))
    chosen: list[dict] = []
    for (score, reason), window in scored:
        start, end = window[0].start, window[-1].end
        if any(start < c["end"] and c["start"] < end for c in chosen):
            continue
        chosen.append({"id": uuid.uuid4().hex[:12], "start": round(start, 3), "end": round(end, 3),
                       "score": score, "title": _clip_title(window), "reason": reason})
        if len(chosen) == max_clips:
            break
    return chosen


def _clip_title(window: list[Sentence]) -> str:
    title = window[0].text.rstrip(".!")
    return title if len(title) <= 70 else title[:67].rsplit(" ", 1)[0] + "..."


def chapters(sents: list[Sentence], target_seconds: float = 300.0) -> list[dict]:
    """Chapters of roughly ``target_seconds`` at sentence boundaries, titled by their keywords."""
    if not sents:
        return []
    total = sents[-1].end
    count = max(1, round(total / target_seconds))
    length = total / count
    groups: list[list[Sentence]] = [[]]
    for sentence in sents:
        if groups[-1] and sentence.start >= len(groups) * length:
            groups.append([])
        groups[-1].append(sentence)
    result = []
    for group in groups:
        words = keywords(group, limit=3)
        title = ", ".join(w.capitalize() for w in words) if words else _clip_title(group)
        result.append({"start": round(group[0].start if result else 0.0, 3), "title": title})
    return result


def heuristic(doc: dict, settings: EnrichSettings, max_clips: int | None = None) -> tuple[dict, list[dict]]:
    """Enrichment and clip suggestions for a transcript, with no model at all."""
    sents = sentences(transcript.all_words(doc))
    top = keywords(sents)
    ranked = sorted(sents, key=lambda s: _keyword_weight(s.text, top), reverse=True)
    short = [s for s in ranked if 4 <= s.word_count <= 14]
    summary_sents = sorted(ranked[:3], key=lambda s: s.start)
    enrichment = {
        "source": "heuristic",
        "title": short[0].text.rstrip(".!?") if short else "",
        "summary": " ".join(s.text for s in summary_sents),
        "chapters": chapters(sents),
        "keywords": top,
        "note": "" if sents else "No speech was found, so there are no clip suggestions.",
    }
    return enrichment, pick_clips(sents, top, settings, max_clips or settings.max_clips)


def run(ctx: StageContext) -> None:
    doc = transcript.load(ctx.transcript_path())
    enrichment, clips = heuristic(doc, ctx.settings.enrich, ctx.options.get("max_clips"))
    ctx.progress(0.5)
    with db.session(ctx.settings.app_db_path) as conn, db.transaction(conn):
        now = time.time()
        db.set_episode_enrichment(conn, ctx.episode_id, json.dumps(enrichment), now)
        if enrichment["title"]:
            db.set_episode_title_if_empty(conn, ctx.episode_id, enrichment["title"], now)
        db.replace_clips(conn, ctx.episode_id, clips, now)
    storage.remove_tree(ctx.episode_dir / "clips")   # renders of earlier suggestions, if any
    ctx.progress(1.0)
