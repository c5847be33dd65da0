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
Chapters start where the vocabulary shifts most (TextTiling: similarity of the words either
side of each point); their titles are the words that set them apart (TF-IDF across chapters).
"""

from __future__ import annotations

import bisect
import math
import re
import statistics
from collections import Counter
from dataclasses import dataclass
from itertools import accumulate

from pipeline.enrichment import clip_rules, keywords
from pipeline.enrichment.clip_rules import ClipRules
from pipeline.enrichment.sentences import Sentence

FRAMING_OPENERS = ("why", "how", "what", "here's", "here is", "the first", "the second", "the third", "the secret",
                   "the problem", "the truth", "the lesson", "the key", "the reason", "imagine", "never", "stop",
                   "nobody", "most people", "the biggest", "the best", "the worst", "if you")
DANGLING = ("and", "but", "so", "because", "or", "which", "also", "then", "plus", "anyway")
PRONOUNS = ("it", "this", "that", "they", "he", "she", "them", "those", "these", "there")
SCAFFOLD = re.compile(r"\b(welcome (back )?to|thanks? (you )?for (listening|watching|having)|see you next|"
                      r"subscribe|let's get (started|into it))", re.IGNORECASE)
TOPIC_FRAME = re.compile(r"\b(?:talking|talk|speaking|chatting|learning) about (?P<a>[^.?!]+)|"
                         r"\b(?:episode|show|today) is (?:all )?about (?P<b>[^.?!]+)|"
                         r"\b(?:dig|dive|look) into (?P<c>[^.?!]+)", re.IGNORECASE)
NUMBER = re.compile(r"\d|\b(one|two|three|four|five|six|seven|eight|nine|ten|hundred|thousand|million|billion|"
                    r"percent|first|second|third|half|twice)\b", re.IGNORECASE)
SWEET_SPOT = (20.0, 40.0)
LIVELY_RATE = 2.8   # words per second


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
        if opener in DANGLING:
            hook -= 8.0
        elif opener in PRONOUNS:
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
        first, text = self.sents[i], " ".join(s.text for s in self.sents[i:j + 1]).lower()
        duration = self.sents[j].end - first.start
        reasons = []
        if first.is_question:
            reasons.append("opens with a question" + (" and answers it" if j > i else ""))
        elif first.text.lower().startswith(FRAMING_OPENERS):
            reasons.append("opens with a strong framing line")
        elif NUMBER.search(first.text):
            reasons.append("opens with a concrete number")
        if parts["substance"] >= 10:
            hits = [k for k in self.top if k.lower() in text][:3]
            if hits:
                reasons.append("stays on the episode's key topics (" + ", ".join(hits) + ")")
        if parts["delivery"] >= 18 and self.median_level is not None:
            reasons.append("delivered with more energy than the rest of the episode")
        reasons.append(f"{duration:.0f} s of whole sentences" + (" that stand on their own" if parts["hook"] >= 10
                                                                   else ""))
        sentence = "; ".join(reasons)
        return sentence[0].upper() + sentence[1:] + "."


def clips(sents: list[Sentence], top: list[str], rules: ClipRules, levels: list[float] | None = None,
          limit: int | None = None, chapter_starts: list[float] | None = None,
          around: list[dict] | None = None) -> list[dict]:
    """The best-scoring runs of sentences, overlapping each other by at most 20%.

    With ``chapter_starts``, no chapter gets more than its share of the clips, so a long
    episode's suggestions are spread over its topics instead of piling up in one. With
    ``around`` (clips already chosen, say by an LLM), only runs that stay clear of those count.
    """
    scorer = Scorer(sents, sentence_features(sents, top, levels), rules, top)
    candidates = []
    for i in range(len(sents)):
        for j in range(i, len(sents)):
            duration = sents[j].end - sents[i].start
            if duration > rules.max_seconds:
                break
            if duration >= rules.min_seconds:
                parts = scorer.parts(i, j)
                candidates.append({"start": sents[i].start, "end": sents[j].end, "i": i, "j": j,
                                   "score": round(min(100.0, sum(parts.values())), 1), "parts": parts})
    if around:
        candidates = [c for c in candidates if clip_rules.clear_of(c, around)]
    limit = limit or rules.max_clips
    chosen = _spread(candidates, limit, chapter_starts or [0.0])
    if len(chosen) < min(rules.min_clips, limit):   # long picks crowd a short episode: try shorter ones
        short = [c for c in candidates if c["end"] - c["start"] <= rules.min_seconds * 1.5]
        alternative = clip_rules.select(short, limit)
        if len(alternative) > len(chosen):
            chosen = alternative
    result = []
    for c in chosen:
        i, j = c["i"], c["j"]
        text = " ".join(s.text for s in sents[i:j + 1]).lower()
        result.append({"start": c["start"], "end": c["end"], "score": c["score"], "title": clip_title(sents[i]),
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


def clip_title(first: Sentence) -> str:
    title = first.text.rstrip(".!")
    return title if len(title) <= 70 else title[:67].rsplit(" ", 1)[0] + "..."


def chapters(sents: list[Sentence], target_seconds: float) -> list[dict]:
    """Chapters covering the episode, split where the vocabulary shifts most, ~``target_seconds`` long."""
    if not sents:
        return []
    total = sents[-1].end
    count = max(1, round(total / target_seconds))
    block_seconds = max(10.0, min(60.0, target_seconds / 6))
    blocks: list[list[int]] = [[]]                    # sentence indexes per block of ~block_seconds
    for n, s in enumerate(sents):
        if blocks[-1] and s.start - sents[blocks[-1][0]].start >= block_seconds:
            blocks.append([])
        blocks[-1].append(n)
    bags = [Counter(t for n in block for t in keywords.tokens(sents[n].text)) for block in blocks]
    reach = max(1, round(target_seconds / 2 / block_seconds))     # blocks compared on each side of a point
    boundaries = _topic_boundaries(bags, [sents[b[0]].start for b in blocks], count - 1,
                                   min_gap=target_seconds / 2, total=total, reach=reach)
    starts = [0] + [blocks[b][0] for b in boundaries]
    groups = [sents[a:b] for a, b in zip(starts, starts[1:] + [len(sents)], strict=True)]
    names = keywords.distinctive([[s.text for s in g] for g in groups]) if len(groups) > 1 else \
        [keywords.extract([s.text for s in groups[0]], limit=3)]
    return [{"start": 0.0 if n == 0 else group[0].start, "title": _chapter_title(name, group)}
            for n, (group, name) in enumerate(zip(groups, names, strict=True))]


def _topic_boundaries(bags: list[Counter], times: list[float], wanted: int, min_gap: float, total: float,
                      reach: int) -> list[int]:
    """Block indexes where a new chapter starts: deepest similarity valleys first (TextTiling), then even fill."""
    if wanted <= 0 or len(bags) < 2:
        return []
    sims = {}
    for b in range(1, len(bags)):
        sims[b] = _cosine(sum(bags[max(0, b - reach):b], Counter()), sum(bags[b:b + reach], Counter()))
    depth = {}
    for b, sim in sims.items():
        left = right = sim
        k = b - 1
        while k in sims and sims[k] >= left:
            left, k = sims[k], k - 1
        k = b + 1
        while k in sims and sims[k] >= right:
            right, k = sims[k], k + 1
        depth[b] = (left - sim) + (right - sim)
    chosen: list[int] = []

    def fits(b: int) -> bool:
        t = times[b]
        return t >= min_gap and total - t >= min_gap and all(abs(t - times[c]) >= min_gap for c in chosen)

    for b in sorted(depth, key=lambda b: (-depth[b], b)):
        if len(chosen) >= wanted or depth[b] <= 0:
            break
        if fits(b):
            chosen.append(b)
    for k in range(1, wanted + 1):                    # no clear shift there: fall back to even spacing
        if len(chosen) >= wanted:
            break
        b = min(range(1, len(bags)), key=lambda b: abs(times[b] - k * total / (wanted + 1)))
        if fits(b):
            chosen.append(b)
    return sorted(chosen)


def _cosine(a: Counter, b: Counter) -> float:
    dot = sum(v * b[k] for k, v in a.items())
    norm = math.sqrt(sum(v * v for v in a.values())) * math.sqrt(sum(v * v for v in b.values()))
    return dot / norm if norm else 0.0


def _chapter_title(words: list[str], group: list[Sentence]) -> str:
    if not words:
        return clip_title(group[0])
    words = [words[0][:1].upper() + words[0][1:], *words[1:]]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def title(sents: list[Sentence], top: list[str]) -> str:
    """What the host says the episode is about ("today we're talking about X"), else its most central line."""
    opening = [s for s in sents if s.start <= max(120.0, 0.1 * sents[-1].end)] if sents else []
    for s in opening:
        match = TOPIC_FRAME.search(s.text)
        if match:
            topic = next(g for g in match.groups() if g).strip(" ,;:")
            if 2 <= len(topic.split()) <= 12:
                return topic[0].upper() + topic[1:]
    central = _central(sents, top, lambda s: 4 <= s.word_count <= 14 and not s.is_question)
    if central:
        return central[0].text.rstrip(".!")
    return ", ".join(top[:3]).capitalize()


def summary(sents: list[Sentence], top: list[str], parts: int = 4, max_words: int = 110) -> str:
    """One paragraph: the host's framing line, then the most central sentence of each part of the episode."""
    if not sents:
        return ""
    chosen = [s for s in sents[:10] if TOPIC_FRAME.search(s.text)][:1]
    total = sents[-1].end
    for k in range(parts):
        part = [s for s in sents if k * total / parts <= s.start < (k + 1) * total / parts]
        best = _central(part, top, lambda s: 6 <= s.word_count <= 35 and not s.is_question
                        and s.text.split(" ", 1)[0].lower().strip(",") not in DANGLING)
        if best and best[0] not in chosen:
            chosen.append(best[0])
    chosen.sort(key=lambda s: s.start)
    text, words = [], 0
    for s in chosen:
        if words + s.word_count > max_words and text:
            break
        text.append(s.text if s.text[-1:] in ".!?" else s.text + ".")
        words += s.word_count
    return " ".join(text)


def _central(sents: list[Sentence], top: list[str], keep) -> list[Sentence]:
    """Sentences ranked by how much of the episode's vocabulary they carry; scaffolding last."""
    weights = {keywords.stem(k.split()[-1]): 1.0 - i / (2 * len(top)) for i, k in enumerate(top)} if top else {}

    def weight(s: Sentence) -> float:
        value = sum(weights.get(t, 0.0) for t in keywords.tokens(s.text)) / math.sqrt(s.word_count)
        return value - (10.0 if SCAFFOLD.search(s.text) else 0.0)

    return sorted((s for s in sents if keep(s)), key=lambda s: (-weight(s), s.start))


def enrich(sents: list[Sentence], rules: ClipRules, keyword_count: int = 10, chapter_seconds: float = 300.0,
           levels: list[float] | None = None) -> tuple[dict, list[dict]]:
    """Enrichment (title, summary, chapters, keywords, hashtags) and clip suggestions."""
    top = keywords.extract([s.text for s in sents], limit=keyword_count)
    parts = chapters(sents, chapter_seconds)
    enrichment = {
        "title": title(sents, top) if sents else "",
        "summary": summary(sents, top),
        "chapters": parts,
        "keywords": top,
        "hashtags": [keywords.hashtag(k) for k in top[:5]],
    }
    return enrichment, clips(sents, top, rules, levels, chapter_starts=[c["start"] for c in parts])


def _clamp(value: float) -> float:
    return round(max(0.0, min(25.0, value)), 1)
