"""The offline enricher: title, summary, chapters, keywords, hashtags and scored clips, no model.

Clips are runs of whole sentences within the clip rules. Each scores 0-100 as four 0-25 parts
(the split peers found useful):
  hook       - the first sentence: a question, a framing line ("here's why..."), a number or a
               short punchy line scores high; one that leans on what came before ("And so it...")
               or is show scaffolding ("welcome back") scores low;
  substance  - density of the episode's keywords, plus named entities and numbers;
  shape      - length near the 20-40 s sweet spot, ending on a statement rather than an open question;
  delivery   - speech rate near a lively 2.8 words/s, a question asked and answered inside the clip,
               and loudness above the episode's median (energy), when audio.wav is there.
Chapters start where the subject changes (``topics``); their titles are the words that set
them apart (TF-IDF across chapters). Clips stay inside one chapter and stand on their own
(``titles.leans_on_context``); the title and summary name each chapter's subject in order.
"""

from __future__ import annotations

import bisect
import math
import re
import statistics
from collections import Counter
from dataclasses import dataclass
from itertools import accumulate

from pipeline.enrichment import clip_rules, keywords, titles, topics
from pipeline.enrichment.clip_rules import ClipRules
from pipeline.enrichment.sentences import Sentence

FRAMING_OPENERS = ("why", "how", "what", "here's", "here is", "the first", "the second", "the third", "the secret",
                   "the problem", "the truth", "the lesson", "the key", "the reason", "imagine", "never", "stop",
                   "nobody", "most people", "the biggest", "the best", "the worst", "if you")
SCAFFOLD = re.compile(r"\b(welcome (back )?to|thanks? (you )?for (listening|watching|having)|see you next|"
                      r"subscribe|let's get (started|into it))", re.IGNORECASE)
TOPIC_FRAME = re.compile(r"\b(?:talking|talk|speaking|chatting|learning) about (?P<a>[^.?!]+)|"
                         r"\b(?:episode|show|today) is (?:all )?about (?P<b>[^.?!]+)|"
                         r"\b(?:dig|dive|look) into (?P<c>[^.?!]+)", re.IGNORECASE)
NUMBER = re.compile(r"\d|\b(one|two|three|four|five|six|seven|eight|nine|ten|hundred|thousand|million|billion|"
                    r"percent|first|second|third|half|twice)\b", re.IGNORECASE)
TENS = re.compile(r"\b(twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety)\b", re.IGNORECASE)
SWEET_SPOT = (20.0, 40.0)
LIVELY_RATE = 2.8   # words per second
SUMMARY_MIN_WORDS = 6   # a summary sentence says at least this much


@dataclass(frozen=True)
class Features:
    """Per-sentence signals, computed once and summed over windows with prefix sums."""
    keyword_weight: float
    entities: int
    numbers: int
    level: float | None


def sentence_features(sents: list[Sentence], top: list[str], levels: list[float] | None) -> list[Features]:
    weights = {keywords.stem(k.split()[-1]): 1.0 - i / (2 * len(top)) for i, k in enumerate(top)} if top else {}
    result = []
    for n, s in enumerate(sents):
        words = s.text.split()
        entities = sum(1 for w in words[1:] if w[:1].isupper() and w.strip(".,?!") not in ("I", "I'm", "I've"))
        result.append(Features(sum(weights.get(t, 0.0) for t in keywords.tokens(s.text)), entities,
                               len(NUMBER.findall(s.text)), levels[n] if levels else None))
    return result


class Scorer:
    """Scores any run of sentences i..j in constant time (prefix sums over the features)."""

    def __init__(self, sents: list[Sentence], feats: list[Features], rules: ClipRules, top: list[str]):
        self.sents, self.feats, self.rules, self.top = sents, feats, rules, top
        self.words = [0, *accumulate(s.word_count for s in sents)]
        self.weight = [0.0, *accumulate(f.keyword_weight for f in feats)]
        self.entities = [0, *accumulate(f.entities for f in feats)]
        self.numbers = [0, *accumulate(f.numbers for f in feats)]
        self.questions = [0, *accumulate(int(s.is_question) for s in sents)]
        levels = [f.level for f in feats if f.level is not None]
        self.median_level = statistics.median(levels) if levels else None
        self.level_time = [0.0, *accumulate((f.level or 0.0) * s.duration for s, f in zip(sents, feats, strict=True))]
        self.speech_time = [0.0, *accumulate(s.duration for s in sents)]
        low, high = SWEET_SPOT
        low = min(max(low, rules.min_seconds), rules.max_seconds)      # the sweet spot, inside the job's rules
        high = max(min(high, rules.max_seconds), rules.min_seconds)
        self.sweet = (low, high)

    def parts(self, i: int, j: int) -> dict[str, float]:
        first, last = self.sents[i], self.sents[j]
        duration = last.end - first.start
        words = self.words[j + 1] - self.words[i]
        lowered = first.text.lower()
        opener = lowered.split(" ", 1)[0].strip(",.")

        if first.is_question:
            hook = 25.0
        elif lowered.startswith(FRAMING_OPENERS):
            hook = 21.0
        elif NUMBER.search(first.text):
            hook = 18.0
        else:
            hook = 14.0 if first.word_count <= 8 else 10.0
        if opener in titles.CONNECTIVES:      # "And so it..." leans on what came before
            hook -= 8.0
        elif titles.leans_on_context(first.text):   # "It was...", "This is why..."
            hook -= 4.0
        if SCAFFOLD.search(first.text):
            hook -= 10.0

        density = (self.weight[j + 1] - self.weight[i]) / max(1, words)
        extras = (self.entities[j + 1] - self.entities[i]) + (self.numbers[j + 1] - self.numbers[i])
        substance = min(25.0, density * 70.0 + min(6.0, 1.5 * extras))

        low, high = self.sweet
        distance = 0.0 if low <= duration <= high else min(abs(duration - low), abs(duration - high))
        shape = max(0.0, 18.0 - distance * 0.8)
        if not last.is_question and not SCAFFOLD.search(last.text):
            shape += 7.0

        rate = words / max(duration, 1e-6)
        delivery = 10.0 * math.exp(-((rate - LIVELY_RATE) ** 2) / 2.0)
        if self.questions[j] - self.questions[i] > 0:     # a question before the last sentence: asked and answered
            delivery += 7.0
        if self.median_level is not None:
            spoken = self.speech_time[j + 1] - self.speech_time[i]
            level = (self.level_time[j + 1] - self.level_time[i]) / max(spoken, 1e-6)
            delivery += 4.0 + 4.0 * max(-1.0, min(1.0, (level - self.median_level) / 6.0))
        else:
            delivery += 4.0
        if self.numbers[j + 1] - self.numbers[i]:
            delivery += 4.0
        return {"hook": _clamp(hook), "substance": _clamp(substance), "shape": _clamp(shape),
                "delivery": _clamp(delivery)}

    def reason(self, i: int, j: int, parts: dict[str, float]) -> str:
        """What the scorer measured for this clip, in words: only what its parts actually counted."""
        first, last = self.sents[i], self.sents[j]
        text = " ".join(s.text for s in self.sents[i:j + 1]).lower()
        duration = last.end - first.start
        reasons = []
        if first.is_question:
            reasons.append("opens with a question" + (" and answers it" if j > i else ""))
        elif first.text.lower().startswith(FRAMING_OPENERS):
            reasons.append("opens with a strong framing line")
        elif NUMBER.search(first.text):
            reasons.append(f'opens with a number ("{NUMBER.search(first.text).group(0)}")')
        elif first.word_count <= 8:
            reasons.append("opens with a short, direct line")
        hits = [k for k in self.top if k.lower() in text][:3]
        words = self.words[j + 1] - self.words[i]
        if (self.weight[j + 1] - self.weight[i]) / max(1, words) * 70.0 >= 8.0 and hits:   # the substance part's own
            reasons.append("dense in the episode's keywords (" + ", ".join(hits) + ")")
        extras = (self.entities[j + 1] - self.entities[i]) + (self.numbers[j + 1] - self.numbers[i])
        if extras >= 3:
            reasons.append(f"{extras} names and numbers")
        if self.questions[j] - self.questions[i] > 0 and not first.is_question:
            reasons.append("asks a question and answers it")
        if self.median_level is not None:
            spoken = self.speech_time[j + 1] - self.speech_time[i]
            level = (self.level_time[j + 1] - self.level_time[i]) / max(spoken, 1e-6)
            if level - self.median_level >= 1.0:
                reasons.append(f"{level - self.median_level:.0f} dB louder than the episode's median")
        reasons.append(f"{duration:.0f} s of whole sentences on one topic"
                       + (", ending on a statement" if not last.is_question else ""))
        sentence = "; ".join(reasons)
        return sentence[0].upper() + sentence[1:] + "."


def clips(sents: list[Sentence], top: list[str], rules: ClipRules, levels: list[float] | None = None,
          limit: int | None = None, chapter_starts: list[float] | None = None,
          around: list[dict] | None = None, fences: list[float] | None = None) -> list[dict]:
    """The best-scoring runs of sentences, overlapping each other by at most 20%.

    A run never crosses a chapter start (``chapter_starts``: where the topic changes), opens
    where a thought opens (not on "But", "Which" or a pronoun pointing back) and ends on a
    complete sentence; only when that leaves fewer than ``rules.min_clips`` do runs with a
    leaning opening or an unfinished end fill the gap, still inside one topic. No chapter gets
    more than its share of the clips, so suggestions spread over the topics. With ``around``
    (clips already chosen, say by an LLM), only runs that stay clear of those count. ``fences``
    (``topics.fences``: likelier changes than chapters need) are crossed by no run either.
    """
    scorer = Scorer(sents, sentence_features(sents, top, levels), rules, top)
    starts = sorted(chapter_starts or [0.0])
    walls = sorted({*starts, *(fences or [])})
    punctuated = any(s.text[-1:] in ".?!" for s in sents)
    candidates, fallback = [], []
    for i in range(len(sents)):
        opens = not titles.leans_on_context(sents[i].text)
        k = bisect.bisect_right(walls, sents[i].start + 1e-6)
        next_topic = walls[k] if k < len(walls) else math.inf
        for j in range(i, len(sents)):
            duration = sents[j].end - sents[i].start
            if duration > rules.max_seconds or sents[j].end > next_topic + 1e-6:
                break
            if duration >= rules.min_seconds:
                parts = scorer.parts(i, j)
                complete = not punctuated or sents[j].text.rstrip("\"')] ")[-1:] in ".?!"
                (candidates if opens and complete else fallback).append(
                    {"start": sents[i].start, "end": sents[j].end, "i": i, "j": j,
                     "score": round(min(100.0, sum(parts.values())), 1), "parts": parts})
    if around:
        candidates = [c for c in candidates if clip_rules.clear_of(c, around)]
        fallback = [c for c in fallback if clip_rules.clear_of(c, around)]
    limit = limit or rules.max_clips
    chosen = _spread(candidates, limit, starts)
    if len(chosen) < min(rules.min_clips, limit):   # long clean picks crowd a short topic: try shorter clean ones
        alternative = clip_rules.select([c for c in candidates if c["end"] - c["start"] <= rules.min_seconds * 1.5],
                                        limit)
        if len(alternative) > len(chosen):
            chosen = alternative
    if len(chosen) < min(rules.min_clips, limit):   # too few clean runs: fill in with the others
        chosen = clip_rules.select(fallback, min(rules.min_clips, limit), chosen=chosen)
    if len(chosen) < min(rules.min_clips, limit):   # long picks crowd a short episode: try shorter ones
        short = [c for c in candidates + fallback if c["end"] - c["start"] <= rules.min_seconds * 1.5]
        alternative = clip_rules.select(short, limit)
        if len(alternative) > len(chosen):
            chosen = alternative
    result = []
    for c in chosen:
        i, j = c["i"], c["j"]
        text = " ".join(s.text for s in sents[i:j + 1]).lower()
        result.append({"start": c["start"], "end": c["end"], "score": c["score"], "title": clip_title(sents[i:j + 1], top),
                       "reason": scorer.reason(i, j, c["parts"]), "score_detail": c["parts"],
                       "hashtags": [keywords.hashtag(k) for k in top if k.lower() in text][:3],
                       "source": "heuristic"})
    return result


def _spread(candidates: list[dict], limit: int, chapter_starts: list[float]) -> list[dict]:
    cap = math.ceil(limit / len(chapter_starts))
    per_chapter: Counter = Counter()
    kept: list[dict] = []
    for clip in sorted(candidates, key=lambda c: (-c["score"], c["start"])):
        if len(kept) >= limit:
            break
        chapter = bisect.bisect_right(chapter_starts, clip["start"]) - 1
        if per_chapter[chapter] >= cap:
            continue
        if clip_rules.clear_of(clip, kept):
            kept.append(clip)
            per_chapter[chapter] += 1
    if len(kept) < limit:      # the caps left room: fill it with the best of the rest
        kept = clip_rules.select(candidates, limit, chosen=kept)
    return sorted(kept, key=lambda c: (-c["score"], c["start"]))


def clip_title(run: list[Sentence], top: list[str]) -> str:
    """The clip's opening line as a title, or its most central line when the opening is too long."""
    first = titles.short(run[0].text)
    if len(run[0].text.rstrip(".!")) <= titles.MAX_TITLE_CHARS or len(run) == 1:
        return first
    fitting = [s for s in run[1:] if len(s.text.rstrip(".!?")) <= titles.MAX_TITLE_CHARS
               and not titles.leans_on_context(s.text)]
    central = _central(fitting, top, lambda s: s.word_count >= 5)
    return titles.short(central[0].text) if central else first


def chapters(sents: list[Sentence], target_seconds: float, starts: list[float] | None = None) -> list[dict]:
    """Chapters covering the episode, one per topic (``topics.boundaries``), named by what sets each apart."""
    if not sents:
        return []
    starts = topics.boundaries(sents, target_seconds) if starts is None else starts
    found = topics.spans(sents, starts)
    groups = [sents[a:b + 1] for _, a, b in found]
    names = keywords.distinctive([[s.text for s in g] for g in groups]) if len(groups) > 1 else \
        [keywords.extract([s.text for s in groups[0]], limit=3)]
    return [{"start": round(start, 3), "title": _chapter_title(name, group)}
            for (start, _, _), group, name in zip(found, groups, names, strict=True)]


def _chapter_title(words: list[str], group: list[Sentence]) -> str:
    return titles.join_names(words) if words else clip_title(group, [])


def title(sents: list[Sentence], top: list[str], chapter_names: list[list[str]] | None = None,
          spans: list[tuple[int, int]] | None = None) -> str:
    """What the host says the episode is about ("today we're talking about X"); else, with several
    topics, the subject of each ("Bread, telescopes and mortgages"); else its most central line that
    names one of its two top keywords, else its top keywords."""
    opening = [s for s in sents if s.start <= max(120.0, 0.1 * sents[-1].end)] if sents else []
    for s in opening:
        match = TOPIC_FRAME.search(s.text)
        if match:
            topic = next(g for g in match.groups() if g).strip(" ,;:")
            if 2 <= len(topic.split()) <= 12:
                return titles.short(topic[0].upper() + topic[1:])
    if chapter_names and spans and len(chapter_names) > 1:
        said = Counter(t for s in sents for t in keywords.tokens(s.text))
        return titles.join_names(keywords.unique(_subject(names, sents[a:b + 1], said)
                                         for names, (a, b) in zip(chapter_names, spans, strict=True) if names))
    subject = {keywords.stem(k.split()[-1]) for k in top[:2]}      # the line must name the episode's subject
    central = _central(sents, top, lambda s: 4 <= s.word_count <= 14 and not s.is_question
                       and not titles.leans_on_context(s.text) and len(s.text) <= titles.MAX_TITLE_CHARS + 1
                       and bool(subject & set(keywords.tokens(s.text))))
    if central:
        return titles.short(central[0].text)
    return titles.join_names(top[:3])


def _subject(names: list[str], group: list[Sentence], said: Counter) -> str:
    """The word of the chapter's opening line that is most its own (a new subject is named as it starts):
    said often in the chapter and rarely elsewhere, a noun (after "a", "the", "good"...) preferred."""
    here = Counter(t for s in group for t in keywords.tokens(s.text))
    words = keywords.words(group[0].text)
    opening = {w: 1.5 if n and words[n - 1].lower() in keywords.DETERMINERS | keywords.ADJECTIVES else 1.0
               for n, w in enumerate(words) if keywords.is_content(w) and not NUMBER.search(w) and not TENS.search(w)}
    if not opening:
        return names[0]
    best = max(opening, key=lambda w: opening[w] * here[keywords.stem(w)] ** 3 / said[keywords.stem(w)] ** 2)
    return best if best[:1].isupper() and best.lower() != best and group[0].text.split()[0] != best \
        else best.lower()


def summary(sents: list[Sentence], top: list[str], chapter_spans: list[tuple[int, int]] | None = None,
            max_words: int = 110) -> str:
    """One paragraph: the host's framing line, then the most central sentence of each topic, in order.

    One topic only: its four quarters stand in for topics. Sentences that lean on what came
    before ("But it...") are skipped. Each topic's pick fits its share of ``max_words``, so a short
    subject is not crowded out by long sentences of the others; only when even the shortest picks
    do not fit do the longest topics win.
    """
    if not sents:
        return ""
    chosen = [s for s in sents[:10] if TOPIC_FRAME.search(s.text)][:1]
    spans = chapter_spans if chapter_spans and len(chapter_spans) > 1 else None
    if spans is None:
        total, parts = sents[-1].end, 4
        spans = []
        for k in range(parts):
            inside = [n for n, s in enumerate(sents) if k * total / parts <= s.start < (k + 1) * total / parts]
            if inside:
                spans.append((inside[0], inside[-1]))
    budget = max_words - sum(s.word_count for s in chosen)
    share = max(SUMMARY_MIN_WORDS, budget // max(1, len(spans)))
    picks = []
    for a, b in spans:      # each topic's most central sentence that fits its share of the words
        ranked = _central(sents[a:b + 1], top, lambda s: SUMMARY_MIN_WORDS <= s.word_count <= 35
                          and not s.is_question and not titles.leans_on_context(s.text)
                          and not SCAFFOLD.search(s.text))
        fitting = [s for s in ranked if s.word_count <= share] or sorted(ranked, key=lambda s: s.word_count)[:1]
        if fitting and fitting[0] not in chosen:
            picks.append((sents[b].end - sents[a].start, fitting[0]))
    for _, s in sorted(picks, key=lambda p: (-p[0], p[1].start)):   # the longest topics first, if not all fit
        if s.word_count <= budget:
            chosen.append(s)
            budget -= s.word_count
    chosen.sort(key=lambda s: s.start)
    return " ".join(s.text if s.text[-1:] in ".!?" else s.text + "." for s in chosen)


def _central(sents: list[Sentence], top: list[str], keep) -> list[Sentence]:
    """Sentences ranked by how much of the episode's vocabulary they carry; scaffolding last."""
    weights = {keywords.stem(k.split()[-1]): 1.0 - i / (2 * len(top)) for i, k in enumerate(top)} if top else {}

    def weight(s: Sentence) -> float:
        value = sum(weights.get(t, 0.0) for t in keywords.tokens(s.text)) / math.sqrt(s.word_count)
        return value - (10.0 if SCAFFOLD.search(s.text) else 0.0)

    return sorted((s for s in sents if keep(s)), key=lambda s: (-weight(s), s.start))


def enrich(sents: list[Sentence], rules: ClipRules, keyword_count: int = 10, chapter_seconds: float = 300.0,
           levels: list[float] | None = None, topic_starts: list[float] | None = None,
           fences: list[float] | None = None) -> tuple[dict, list[dict]]:
    """Enrichment (title, summary, chapters, keywords, hashtags) and clip suggestions.

    ``topic_starts``: where the topics change (``topics.boundaries`` of the transcript's clauses);
    found from ``sents`` when not given. ``fences``: where clips must not cross (``topics.fences``).
    """
    top = keywords.extract([s.text for s in sents], limit=keyword_count)
    starts = topics.boundaries(sents, chapter_seconds) if topic_starts is None else topic_starts
    spans = [(a, b) for _, a, b in topics.spans(sents, starts)]
    names = keywords.distinctive([[s.text for s in sents[a:b + 1]] for a, b in spans], limit=5) \
        if len(spans) > 1 else None
    parts = chapters(sents, chapter_seconds, starts)
    enrichment = {
        "title": title(sents, top, names, spans) if sents else "",
        "summary": summary(sents, top, spans),
        "chapters": parts,
        "keywords": top,
        "hashtags": [keywords.hashtag(k) for k in top[:5]],
    }
    return enrichment, clips(sents, top, rules, levels, chapter_starts=[c["start"] for c in parts], fences=fences)


def _clamp(value: float) -> float:
    return round(max(0.0, min(25.0, value)), 1)
