"""Enrichment by an LLM: windows of the transcript in, validated clips and chapters out.

A long transcript is cut into overlapping windows of whole sentences, each line prefixed by
its start time in seconds, so that system prompt + instructions + window + ``llm.max_tokens``
of answer never exceed ``llm.context_tokens``. Each window's answer is validated; clips are
snapped to sentence bounds within the clip rules (invented times are dropped with a note),
merged across windows and de-duplicated (at most 20% overlap). With more than one window a
last request turns the windows' summaries into the episode's title, summary and keywords.
The offline topic finder's changes of subject (``topic_starts``) go into each window's prompt
as chapter hints, and a clip that runs across one is dropped with a note: a clip about two
subjects does not stand on its own.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from pipeline.config import Settings
from pipeline.enrichment import clip_rules, keywords
from pipeline.enrichment.clip_rules import ClipRules
from pipeline.enrichment.llm import CHARS_PER_TOKEN, ChatClient
from pipeline.enrichment.sentences import Sentence

SYSTEM = ("You are a video editor who finds the moments of a podcast or video that people will want to watch "
          "as short clips, and who describes episodes accurately. You only use what the transcript says. "
          "You answer with one JSON object and nothing else.")
PROMPT_MARGIN_CHARS = 600   # headroom for the numbers in the prompt and a repair request's extra message

_CLIP = {"type": "object", "properties": {
    "start": {"type": "number"}, "end": {"type": "number"}, "score": {"type": "number"},
    "title": {"type": "string"}, "reason": {"type": "string"}}, "required": ["start", "end", "score", "title", "reason"]}
_CHAPTER = {"type": "object", "properties": {"start": {"type": "number"}, "title": {"type": "string"}},
            "required": ["start", "title"]}
_STRINGS = {"type": "array", "items": {"type": "string"}}
WINDOW_SCHEMA = {"type": "object", "properties": {
    "title": {"type": "string"}, "summary": {"type": "string"}, "keywords": _STRINGS, "hashtags": _STRINGS,
    "chapters": {"type": "array", "items": _CHAPTER}, "clips": {"type": "array", "items": _CLIP}},
    "required": ["title", "summary", "keywords", "hashtags", "chapters", "clips"]}
EPISODE_SCHEMA = {"type": "object", "properties": {
    "title": {"type": "string"}, "summary": {"type": "string"}, "keywords": _STRINGS, "hashtags": _STRINGS},
    "required": ["title", "summary", "keywords", "hashtags"]}

WINDOW_PROMPT = """Episode length: {duration:.1f} seconds. This is part {part} of {parts} of its transcript, from \
{start:.1f} s to {end:.1f} s. Each line starts with the time in seconds at which that sentence starts; a sentence \
ends where the next one starts.

Answer with this JSON object:
{{"title": "the episode's title, under 70 characters",
 "summary": "one paragraph on what this part covers",
 "keywords": ["5 to 10 topics, most important first"],
 "hashtags": ["3 to 5 hashtags such as #Testing"],
 "chapters": [{{"start": seconds, "title": "a short chapter title"}}],
 "clips": [{{"start": seconds, "end": seconds, "score": 0-100, "title": "a hook title", \
"reason": "one sentence on why people will watch it"}}]}}

Chapters: one where each topic starts in this part.{hints} Clips: up to {max_clips} of the best moments, \
each {min_seconds:g} to {max_seconds:g} seconds long, starting at a sentence start and ending at a sentence end, \
that make sense on their own and stay on one topic; score is how likely a viewer watches to the end. Use only \
times from the transcript.

Transcript:
"""

EPISODE_PROMPT = """These are summaries of the consecutive parts of one {duration:.0f}-second episode, with \
their keywords. Answer with this JSON object: {{"title": "the episode's title, under 70 characters", \
"summary": "one paragraph on the whole episode", "keywords": ["5 to 10 topics, most important first"], \
"hashtags": ["3 to 5 hashtags such as #Testing"]}}

"""


def line(s: Sentence) -> str:
    return f"[{s.start:.1f}] {s.text}"


def prompt_budget_chars(settings: Settings) -> int:
    """Characters of prompt allowed: the context minus the answer, in our conservative characters per token."""
    return (settings.llm.context_tokens - settings.llm.max_tokens) * CHARS_PER_TOKEN


def windows(sents: list[Sentence], budget_chars: int, overlap_seconds: float) -> list[tuple[int, int]]:
    """(first, last) sentence indexes of each window; consecutive windows share ~``overlap_seconds``."""
    result: list[tuple[int, int]] = []
    lo = 0
    while lo < len(sents):
        used, hi = 0, lo
        while hi < len(sents) and (hi == lo or used + len(line(sents[hi])) + 1 <= budget_chars):
            used += len(line(sents[hi])) + 1
            hi += 1
        result.append((lo, hi - 1))
        if hi >= len(sents):
            break
        back = hi
        while back - 1 > lo + 1 and sents[hi - 1].end - sents[back - 1].start <= overlap_seconds:
            back -= 1
        lo = back
    return result


def enrich(sents: list[Sentence], duration: float, settings: Settings, rules: ClipRules,
           progress: Callable[[float], None], client: ChatClient | None = None,
           topic_starts: list[float] | None = None) -> tuple[dict, list[dict], list[str]]:
    """(enrichment, clips, notes) from the LLM. Raises LLMError for the caller to fall back on."""
    topic_starts = sorted(topic_starts or [])
    client = client or ChatClient(settings.llm)
    fixed = len(SYSTEM) + len(WINDOW_PROMPT) + PROMPT_MARGIN_CHARS + 200
    spans = windows(sents, max(400, prompt_budget_chars(settings) - fixed), settings.llm.window_overlap_seconds)
    steps = len(spans) + (1 if len(spans) > 1 else 0)
    notes: list[str] = []
    answers = []
    for n, (lo, hi) in enumerate(spans):
        progress(n / steps)
        header = WINDOW_PROMPT.format(duration=duration, part=n + 1, parts=len(spans), start=sents[lo].start,
                                      end=sents[hi].end, max_clips=rules.max_clips, min_seconds=rules.min_seconds,
                                      max_seconds=rules.max_seconds,
                                      hints=_hints(topic_starts, sents[lo].start, sents[hi].end))
        body = _fit("\n".join(line(s) for s in sents[lo:hi + 1]),
                    prompt_budget_chars(settings) - len(SYSTEM) - len(header) - PROMPT_MARGIN_CHARS)
        messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": header + body}]
        answers.append(client.chat_json(messages, WINDOW_SCHEMA, validate_window))

    clips = _merge_clips(answers, sents, duration, rules, notes, topic_starts)
    chapters = _merge_chapters(answers, spans, sents, duration, settings.enrich.chapter_seconds, notes)
    if len(answers) == 1:
        episode = answers[0]
    else:
        progress(len(spans) / steps)
        episode = _episode_answer(client, answers, duration, settings)
    enrichment = {
        "title": episode["title"] or (answers[0]["title"] if answers else ""),
        "summary": episode["summary"],
        "chapters": chapters,
        "keywords": keywords.unique(episode["keywords"])[:settings.enrich.keyword_count],
        "hashtags": keywords.unique([keywords.hashtag(h) for h in episode["hashtags"] if keywords.hashtag(h) != "#"])[:5],
        "llm": {"model": settings.llm.model, "windows": len(spans), "requests": client.requests,
                "retries": client.retries, "repairs": client.repairs},
    }
    progress(1.0)
    return enrichment, clips, notes


def _episode_answer(client: ChatClient, answers: list[dict], duration: float, settings: Settings) -> dict:
    budget = prompt_budget_chars(settings) - len(SYSTEM) - len(EPISODE_PROMPT) - PROMPT_MARGIN_CHARS
    per_part = max(200, budget // len(answers) - 40)
    parts = "\n".join(_fit(f"Part {n}: {a['summary']} (keywords: {', '.join(a['keywords'][:8])})", per_part)
                      for n, a in enumerate(answers, start=1))
    messages = [{"role": "system", "content": SYSTEM},
                {"role": "user", "content": EPISODE_PROMPT.format(duration=duration) + _fit(parts, budget)}]
    return client.chat_json(messages, EPISODE_SCHEMA, validate_episode)


def validate_episode(data: dict) -> dict:
    return {"title": _text(data.get("title"), 120), "summary": _text(data.get("summary"), 2000),
            "keywords": _strings(data.get("keywords"), "keywords"), "hashtags": _strings(data.get("hashtags"),
                                                                                         "hashtags")}


def validate_window(data: dict) -> dict:
    """The window answer's shape (ValueError -> one repair request); bad single items are dropped later."""
    result = validate_episode(data)
    for key in ("clips", "chapters"):
        value = data.get(key, [])
        if not isinstance(value, list):
            raise ValueError(f'"{key}" must be a list')
        result[key] = [item for item in value if isinstance(item, dict)]
    return result


def _hints(topic_starts: list[float], start: float, end: float) -> str:
    inside = [t for t in topic_starts if start < t < end]
    if not inside:
        return ""
    return (" The subject changes at about " + ", ".join(f"{t:.1f}" for t in inside)
            + " seconds (found by word statistics: use them as chapter hints).")


def _merge_clips(answers: list[dict], sents: list[Sentence], duration: float, rules: ClipRules,
                 notes: list[str], topic_starts: list[float] | None = None) -> list[dict]:
    candidates = []
    for answer in answers:
        for item in answer["clips"]:
            start, end = parse_time(item.get("start")), parse_time(item.get("end"))
            snapped = clip_rules.snap(sents, start, end, rules, duration)
            if isinstance(snapped, str):
                notes.append(snapped)
                continue
            across = clip_rules.crossed(snapped, topic_starts or [])
            if across is not None:
                notes.append(f"Dropped the clip {clip_rules.span_label(*snapped)}: it runs across the change of "
                             f"subject at {clip_rules.span_label(across)}.")
                continue
            score = parse_time(item.get("score"))
            candidates.append({
                "start": snapped[0], "end": snapped[1],
                "score": round(max(0.0, min(100.0, score)), 1) if math.isfinite(score) else 50.0,
                "title": _text(item.get("title"), 100) or _first_words(sents, snapped[0]),
                "reason": _first_sentence(_text(item.get("reason"), 300)) or "Suggested by the LLM.",
                "hashtags": [], "score_detail": None, "source": "llm"})
    chosen = clip_rules.select(candidates, rules.max_clips)
    dropped = len(candidates) - len(chosen)
    if dropped and len(candidates) > rules.max_clips:
        notes.append(f"Kept the {len(chosen)} best of {len(candidates)} suggested clips (duplicates across "
                     "windows and overlaps over 20% removed).")
    return chosen


def _merge_chapters(answers: list[dict], spans: list[tuple[int, int]], sents: list[Sentence], duration: float,
                    chapter_seconds: float, notes: list[str]) -> list[dict]:
    """Each window's chapters inside the part it owns (overlaps split in the middle), snapped to sentences."""
    owned = [0.0] + [(sents[lo].start + sents[spans[k - 1][1]].end) / 2 for k, (lo, _) in enumerate(spans) if k]
    owned.append(math.inf)
    min_gap = min(30.0, chapter_seconds / 4, duration / 10)   # chapters closer than this are one chapter
    result: list[dict] = []
    for k, answer in enumerate(answers):
        for item in sorted(answer["chapters"], key=lambda c: _sort_key(parse_time(c.get("start")))):
            start, title = parse_time(item.get("start")), _text(item.get("title"), 100)
            if not title:
                continue
            if not math.isfinite(start) or start < -clip_rules.OUTSIDE_TOLERANCE_SECONDS or start > duration:
                notes.append(f"Dropped the chapter '{title}': its start ({item.get('start')}) is outside the episode.")
                continue
            if not owned[k] <= start < owned[k + 1]:
                continue
            start = clip_rules.sentence_start_at_or_before(sents, start) if result else 0.0
            if result and start - result[-1]["start"] < min_gap:
                continue
            result.append({"start": round(start, 3), "title": title})
    if not result or result[0]["start"] != 0.0:
        first = answers[0]["title"] if answers else "Episode"
        result.insert(0, {"start": 0.0, "title": first or "Introduction"})
    return result


def parse_time(value) -> float:
    """Seconds from a number, a numeric string, or "mm:ss" / "hh:mm:ss"; NaN when it is none of those."""
    if isinstance(value, bool) or value is None:
        return math.nan
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip().rstrip("s").strip()
    try:
        if ":" in text:
            total = 0.0
            for part in text.split(":"):
                total = total * 60 + float(part)
            return total
        return float(text)
    except ValueError:
        return math.nan


def _sort_key(value: float) -> float:
    return value if math.isfinite(value) else math.inf


def _text(value, limit: int) -> str:
    text = " ".join(str(value or "").split())
    return text if len(text) <= limit else text[:limit - 3].rsplit(" ", 1)[0] + "..."


def _strings(value, key: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError(f'"{key}" must be a list of strings')
    return [_text(v, 60) for v in value if isinstance(v, str) and v.strip()]


def _first_sentence(text: str) -> str:
    for mark in (". ", "! ", "? "):
        if mark in text:
            text = text[:text.index(mark) + 1]
    return text if not text or text[-1] in ".!?" else text + "."


def _first_words(sents: list[Sentence], start: float) -> str:
    first = next((s for s in sents if s.start >= start - 1e-6), None)
    return _text(first.text.rstrip(".!?"), 70) if first else "Clip"


def _fit(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:max(0, limit - 3)] + "..."
