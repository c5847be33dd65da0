"""Where the subject changes: TextTiling over the transcript's sentences, offline, no model.

Each gap between two sentences gets the similarity of the ``WINDOW_SECONDS`` of talk before
it and after it. Plain TF-IDF word overlap barely works on speech (a speaker rarely repeats a
word within 20 s, so two halves of one subject look as unrelated as two subjects), so each
side is the set of *lexical chains* running through it (LCseg): a content word said again
within ``CHAIN_HIATUS_SECONDS`` links everything in between. The series is smoothed, and each
valley gets a *depth* (how far it dips below the nearest peaks on both sides, Hearst 1997). A
new topic starts at a valley deep enough to be a change of subject (``MIN_DEPTH``), never
closer than ``MIN_TOPIC_SECONDS`` to another: the count follows the talk, not the clock, so
four subjects in three minutes give four topics and one subject for an hour gives one.
``chapter_seconds`` is only a preference: a topic more than twice that long is split at its
clearest sub-topic shift, if it has one (``MIN_SUBTOPIC_DEPTH``, ``SUBTOPIC_DIP``).
"""

from __future__ import annotations

import bisect
import math
import statistics

from pipeline.enrichment import keywords, sentences
from pipeline.enrichment.sentences import Sentence

WINDOW_SECONDS = 16.0      # words compared on each side of a gap (a subject lasts 30 s or more)
MIN_TOPIC_SECONDS = 20.0   # no topic shorter than this
MIN_DEPTH = 0.35           # a valley this deep is a change of subject (calibrated on tests/topic_episodes.py)
MIN_SUBTOPIC_DEPTH = 0.14  # enough to split a topic much longer than enrich.chapter_seconds
SUBTOPIC_DIP = 0.5         # ... and dips below half the topic's usual similarity (noise does not)
CLAUSE_SECONDS = 14.0       # a sentence this long is also cut at its commas for topic finding
SMOOTHING = (0.25, 0.5, 0.25)
# Units of time and quantity: said in every subject, they would chain unrelated subjects together.
TOPIC_NEUTRAL = frozenset("""second minute hour day week month year decade morning evening night half
quarter dozen hundred thousand million billion percent set""".split())
CHAIN_HIATUS_SECONDS = 40.0   # a word said again after a longer silence starts a new chain
PLACE_UNITS = 1               # a change may move this many units from its valley...
PLACE_SECONDS = 60.0          # ...to side with the words of this much talk before and after
CHAIN_KEY_LETTERS = 6         # words sharing their first six letters chain together (ferment, fermentation)


def boundaries(units: list[Sentence], chapter_seconds: float = 300.0) -> list[float]:
    """When each topic after the first starts, in seconds: the start of one of ``units``.

    ``units`` are sentences, better cut also at commas once long (``clauses``): a speech model
    sometimes runs two subjects into one long comma-spliced sentence.
    """
    return [units[g].start for g in _boundary_indexes(units, chapter_seconds)]


def clauses(words: list[dict]) -> list[Sentence]:
    """The transcript's sentences, those over ``CLAUSE_SECONDS`` also cut at every comma (the topic units)."""
    words = [w for w in words if w["word"].strip()]
    result, k = [], 0
    for s in sentences.build(words):
        own, k = words[k:k + s.word_count], k + s.word_count
        if s.duration <= CLAUSE_SECONDS:
            result.append(s)
            continue
        part: list[dict] = []
        for w in own:
            part.append(w)
            if w["word"].strip()[-1] in ",;:":
                result.append(_unit(part))
                part = []
        if part:
            result.append(_unit(part))
    return result


def _unit(words: list[dict]) -> Sentence:
    return Sentence(round(float(words[0]["start"]), 3), round(float(words[-1]["end"]), 3),
                    " ".join(w["word"].strip() for w in words), len(words))


def spans(sents: list[Sentence], starts: list[float]) -> list[tuple[float, int, int]]:
    """(start time, first, last sentence index) of each topic; a sentence belongs where it starts.

    A topic in which no sentence starts (two changes inside one long sentence) is left out.
    """
    edges = [0.0, *sorted(starts)]
    result: list[tuple[float, int, int]] = []
    k = 0
    for n, s in enumerate(sents):
        topic = bisect.bisect_right(edges, s.start + 1e-6) - 1
        if result and topic == k:
            result[-1] = (result[-1][0], result[-1][1], n)
        else:
            k = topic
            result.append((0.0 if not result else edges[topic], n, n))
    return result


def _boundary_indexes(sents: list[Sentence], chapter_seconds: float) -> list[int]:
    if len(sents) < 4:
        return []
    sims = similarities(sents)
    smooth = _smooth(sims)
    depth = depths(smooth)
    chosen: list[int] = []
    total = sents[-1].end

    def fits(g: int) -> bool:
        t = sents[g].start
        return (t >= MIN_TOPIC_SECONDS and total - t >= MIN_TOPIC_SECONDS
                and all(abs(t - sents[c].start) >= MIN_TOPIC_SECONDS for c in chosen))

    keys = [_keys(s.text) for s in sents]
    for g in sorted(depth, key=lambda g: (-depth[g], g)):
        if depth[g] < MIN_DEPTH:
            break
        g = _place(sents, keys, _sharpest(sims, g))
        if fits(g):
            chosen.append(g)
    while True:   # the preference: split a topic over twice chapter_seconds at its clearest shift
        edges = [0, *sorted(chosen), len(sents)]
        split = None
        for a, b in zip(edges, edges[1:], strict=False):
            if sents[b - 1].end - sents[a].start <= 2 * chapter_seconds or b - a < 3:
                continue
            typical = statistics.median(smooth[g] for g in range(a + 1, b))
            inside = [g for g in depth if a < g < b and depth[g] >= MIN_SUBTOPIC_DEPTH
                      and smooth[g] <= SUBTOPIC_DIP * typical and fits(_sharpest(sims, g))]
            if inside:
                split = _sharpest(sims, max(inside, key=lambda g: depth[g]))
                break
        if split is None:
            return sorted(chosen)
        chosen.append(split)


def similarities(sents: list[Sentence]) -> dict[int, float]:
    """Gap g (before sentence g) -> cosine of the lexical chains active in the windows either side of it.

    A chain is a content word said again and again, no more than ``CHAIN_HIATUS_SECONDS`` apart
    (LCseg, Galley et al. 2003): every sentence it spans counts it, said there or not, which is
    what makes a subject's sentences alike when ordinary speech rarely repeats a word within 20 s.
    A chain weighs more the more often it is said (log: one word said ten times must not outvote the rest).
    """
    said: dict[str, list[int]] = {}
    for n, s in enumerate(sents):
        for token in _keys(s.text):
            said.setdefault(token, []).append(n)
    active: list[dict[tuple[str, int], float]] = [{} for _ in sents]
    for token, where in said.items():
        chains, current = [], [where[0]]
        for n in where[1:]:
            if sents[n].start - sents[current[-1]].end > CHAIN_HIATUS_SECONDS:
                chains.append(current)
                current = []
            current.append(n)
        chains.append(current)
        for k, chain in enumerate(chains):
            if len(chain) < 2:
                continue
            weight = math.log(1.0 + len(chain))
            for n in range(chain[0], chain[-1] + 1):
                active[n][(token, k)] = weight
    result = {}
    n = len(sents)
    lo = hi = 0
    for g in range(1, n):
        t = sents[g].start
        while sents[lo].start < t - WINDOW_SECONDS and lo < g - 1:
            lo += 1
        hi = max(hi, g + 1)
        while hi < n and sents[hi].end <= t + WINDOW_SECONDS:
            hi += 1
        result[g] = _cosine(_sum(active[lo:g]), _sum(active[g:hi]))
    return result


def depths(sims: dict[int, float]) -> dict[int, float]:
    """Each valley's depth below the peaks it sits between (only local minima get one)."""
    result = {}
    for g, sim in sims.items():
        if sims.get(g - 1, math.inf) < sim or sims.get(g + 1, math.inf) < sim:
            continue
        left = right = sim
        k = g - 1
        while k in sims and sims[k] >= left:
            left, k = sims[k], k - 1
        k = g + 1
        while k in sims and sims[k] >= right:
            right, k = sims[k], k + 1
        result[g] = (left - sim) + (right - sim)
    return result


def _place(sents: list[Sentence], keys: list[set[str]], g: int) -> int:
    """The change near gap ``g`` moved to where the units around it side with their neighbours' words.

    Each unit within ``PLACE_UNITS`` of the gap is compared with the words of the ``PLACE_SECONDS``
    before and after that neighbourhood: a unit sharing more with what follows belongs after the
    change. The valley alone can be a unit or two off (a closing aside repeats no word of its subject).
    """
    lo, hi = max(1, g - PLACE_UNITS), min(len(sents) - 1, g + PLACE_UNITS)
    before = set().union(*(keys[u] for u in range(lo - 1, -1, -1) if sents[u].start >= sents[lo].start - PLACE_SECONDS))
    after = set().union(*(keys[u] for u in range(hi + 1, len(sents)) if sents[u].end <= sents[hi].end + PLACE_SECONDS))
    leaning = {u: len(keys[u] & after) - len(keys[u] & before) for u in range(lo - 1, hi + 1)}

    def fit(k: int) -> int:   # units before k that lean forward, and units from k on that lean back, count against
        return sum(leaning[u] for u in range(lo - 1, hi + 1) if u < k) - sum(leaning[u] for u in range(k, hi + 1))

    return min(range(lo, hi + 1), key=lambda k: (fit(k), abs(k - g), -k))


def _keys(text: str) -> set[str]:
    return {t[:CHAIN_KEY_LETTERS] for t in keywords.tokens(text) if t not in TOPIC_NEUTRAL}


def _sharpest(sims: dict[int, float], g: int) -> int:
    """The gap next to ``g`` where the raw similarity is lowest (smoothing can shift a valley by one).

    On a tie the later gap wins: a subject's last sentence is often an aside that repeats none of its
    words, while a new subject's first sentence names it.
    """
    return min((k for k in (g - 1, g, g + 1) if k in sims), key=lambda k: (round(sims[k], 2), -k))


def _smooth(sims: dict[int, float]) -> dict[int, float]:
    a, b, c = SMOOTHING
    return {g: a * sims.get(g - 1, s) + b * s + c * sims.get(g + 1, s) for g, s in sims.items()}


def _sum(vectors: list[dict[str, float]]) -> dict[str, float]:
    total: dict[str, float] = {}
    for v in vectors:
        for t, w in v.items():
            total[t] = total.get(t, 0.0) + w
    return total


def _cosine(a: dict[str, float], b: dict[str, float]) -> float:
    if len(a) > len(b):
        a, b = b, a
    dot = sum(w * b.get(t, 0.0) for t, w in a.items())
    norm = math.sqrt(sum(w * w for w in a.values())) * math.sqrt(sum(w * w for w in b.values()))
    return dot / norm if norm else 0.0
