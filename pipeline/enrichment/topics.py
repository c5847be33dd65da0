"""Where the subject changes: a lexical segmentation of the transcript's sentences, offline, no model.

A topic uses its own words again and again, so the topics are the split of the sentences that
describes their content words most briefly: each topic's words under a word distribution learnt
from that topic alone (Dirichlet-multinomial with ``PRIOR`` pseudo-counts; learning a
distribution costs words, so splitting one steady subject does not pay; Eisenstein & Barzilay
2008), each change of subject priced at ``PENALTY`` times the log of the episode's word count
(what naming its place costs, Utiyama & Isahara 2001). Dynamic programming finds the split,
never a topic shorter than ``MIN_TOPIC_SECONDS``, dropping starts that fall ``PRUNE_NATS``
behind (PELT-style pruning: near-linear for many topics). The count follows the talk, not the
clock: four subjects in three minutes give four topics, one subject for an hour gives one. A
sentence opening with a spoken transition ("now let's turn to...", "moving on", "our next
guest") is a cheaper place for a change (``CUE_DISCOUNT``): a handover naming no subject has no
words to place it by.

Clips are held to a stricter line than chapters (``find``'s fences): the changes found at a
lower price (``FENCE_PENALTY``), and the units next to each that would start the new topic
almost as well (``PLACE_UNITS``, ``PLACE_MARGIN``), so a change placed a sentence late leaves no
clip across the real one. ``chapter_seconds`` is only a preference: a topic more than twice that
long is split at its clearest sub-topic shift, if it has one, measured by TextTiling over
*lexical chains* (LCseg: a content word said again within ``CHAIN_HIATUS_SECONDS`` links
everything in between; ``WINDOW_SECONDS`` of talk either side of each gap, smoothed, each valley
scored by its depth below the peaks around it, Hearst 1997): ``MIN_SUBTOPIC_DEPTH``, ``SUBTOPIC_DIP``.

The constants are tuned on tests/topic_episodes.py's tuning texts only (bench/topics.py); its
held-out texts measure them.
"""

from __future__ import annotations

import bisect
import math
import re
import statistics

import numpy as np

from pipeline.enrichment import keywords, sentences
from pipeline.enrichment.sentences import Sentence

PRIOR_WORDS = 80        # pseudo-counts of a topic's word distribution, spread over the episode's distinct words
PENALTY = 1.0              # a change of subject costs this times log(words in the episode), besides its words
FENCE_PENALTY = 0.75       # ... and this lower price marks a change no clip may cross
MIN_TOPIC_SECONDS = 25.0   # no topic shorter than this
PLACE_UNITS = 2            # a clip also keeps clear of the units this close to a change...
PLACE_MARGIN = 2.0         # ...that would start the new topic almost as well (nats of description length)
CUE_DISCOUNT = 0.5         # a change where a spoken transition opens a sentence costs this much of the price
# A sentence opening on one of these hands over to a new subject ("So, now let's turn to...").
TRANSITION_CUE = re.compile(
    r"^(?:(?:so|okay|ok|alright|all right|right|well|now|and|next)\W+)*"
    r"(?:let's (?:turn|move|switch|get|go|talk|head)\b|moving on\b|turning (?:now )?to\b|on to\b|onto\b|"
    r"next up\b|our next (?:guest|topic|subject|story|question)\b|switching gears\b|(?:a )?change of subject\b|"
    r"(?:on )?(?:a|to) (?:different|new|another) (?:topic|subject)\b|another (?:topic|subject)\b)",
    re.IGNORECASE)
WINDOW_SECONDS = 16.0      # words compared on each side of a gap (for the sub-topic split)
MIN_SUBTOPIC_DEPTH = 0.14  # enough to split a topic much longer than enrich.chapter_seconds
SUBTOPIC_DIP = 0.5         # ... and dips below half the topic's usual similarity (noise does not)
PRUNE_NATS = 10.0          # a topic start this far behind the best split so far is dropped from the search
CLAUSE_SECONDS = 14.0       # a sentence this long is also cut at its commas for topic finding
SMOOTHING = (0.25, 0.5, 0.25)
# Units of time and quantity: said in every subject, they would tie unrelated subjects together.
TOPIC_NEUTRAL = frozenset("""second minute hour day week month year decade morning evening night half
quarter dozen hundred thousand million billion percent set""".split())
CHAIN_HIATUS_SECONDS = 40.0   # a word said again after a longer silence starts a new chain
CHAIN_KEY_LETTERS = 6         # words sharing their first six letters count as one (ferment, fermentation)


def find(units: list[Sentence], chapter_seconds: float = 300.0) -> tuple[list[float], list[float]]:
    """(chapter starts, fences) in seconds, each the start of one of ``units``: where each topic after
    the first starts, and where a clip must not run across (``fences``).

    ``units`` are sentences, better cut also at commas once long (``clauses``): a speech model
    sometimes runs two subjects into one long comma-spliced sentence.
    """
    if len(units) < 4:
        return [], []
    said = [_key_list(u.text) for u in units]
    lengths = _Lengths(said)
    sims = similarities(units, [set(keys) for keys in said])
    chapters = _split_long(units, segment(units, PENALTY, lengths), chapter_seconds, sims)
    changes = segment(units, FENCE_PENALTY, lengths)
    walls = {*changes, *_near_alternatives(changes, len(units), lengths)}
    return [units[g].start for g in chapters], [units[g].start for g in sorted(walls)]


def boundaries(units: list[Sentence], chapter_seconds: float = 300.0) -> list[float]:
    """When each topic after the first starts (``find``'s chapter starts)."""
    return find(units, chapter_seconds)[0]


def fences(units: list[Sentence]) -> list[float]:
    """Where a clip must not run across: the changes found at ``FENCE_PENALTY``, a lower price than
    chapters pay (a clip can be stricter than a chapter), and the units next to each that would
    start the new topic almost as well (``PLACE_UNITS``, ``PLACE_MARGIN``)."""
    return find(units)[1]


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


def _split_long(sents: list[Sentence], chosen: list[int], chapter_seconds: float, sims: dict[int, float]
                ) -> list[int]:
    """``chosen`` changes, plus a split of every topic over twice ``chapter_seconds`` at its clearest
    sub-topic shift (a valley of the chains ``MIN_SUBTOPIC_DEPTH`` deep that dips below
    ``SUBTOPIC_DIP`` of the topic's usual similarity), if it has one."""
    chosen = list(chosen)
    total = sents[-1].end
    smooth = _smooth(sims)
    depth = depths(smooth)

    def fits(g: int) -> bool:
        t = sents[g].start
        return (t >= MIN_TOPIC_SECONDS and total - t >= MIN_TOPIC_SECONDS
                and all(abs(t - sents[c].start) >= MIN_TOPIC_SECONDS for c in chosen))

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


class _Lengths:
    """Description lengths of runs of units: each run's words under its own word distribution, learnt as
    it is read (Dirichlet-multinomial, ``PRIOR`` pseudo-counts per distinct word of the episode).

    A run costs ``-log P(its words)``: a run whose words repeat is cheap, and learning a distribution
    costs words, so splitting one subject in two does not pay (Eisenstein & Barzilay 2008). A word
    said once in the whole episode costs the same wherever the changes are, so only repeated words
    are counted one by one (prefix sums per word, so a run's counts are one subtraction).
    """

    def __init__(self, said: list[list[str]]):
        """``said``: each unit's subject words (``_key_list``)."""
        distinct: dict[str, int] = {}
        for keys in said:
            for key in keys:
                distinct[key] = distinct.get(key, 0) + 1
        repeated = {key: n for n, key in enumerate(k for k, c in distinct.items() if c > 1)}
        counts = np.zeros((len(said) + 1, max(1, len(repeated))), dtype=np.int64)
        for u, keys in enumerate(said):
            for key in keys:
                if key in repeated:
                    counts[u + 1, repeated[key]] += 1
        self.counts = np.cumsum(counts, axis=0)
        self.words = np.cumsum([0, *(len(keys) for keys in said)])
        most = int(self.words[-1]) + 1
        alpha = PRIOR_WORDS / max(1, len(distinct))     # the same prior weight however many words the episode has
        # log Γ(k + α) - log Γ(α) for a word said k times, log Γ(m + Vα) - log Γ(Vα) for m words
        self.word_table = np.array([math.lgamma(k + alpha) - math.lgamma(alpha) for k in range(most)])
        self.run_table = np.array([math.lgamma(m + PRIOR_WORDS) - math.lgamma(PRIOR_WORDS) for m in range(most)])

    def ending_at(self, b: int, firsts: np.ndarray) -> np.ndarray:
        """The lengths of runs a..b-1 for every a in ``firsts``."""
        f = self.counts[b] - self.counts[firsts]
        m = self.words[b] - self.words[firsts]
        return self.run_table[m] - self.word_table[f].sum(axis=1)

    def run(self, a: int, b: int) -> float:
        return float(self.ending_at(b, np.array([a]))[0]) if a < b else 0.0


def segment(units: list[Sentence], penalty: float, lengths: _Lengths | None = None) -> list[int]:
    """Indexes of the units that start a new topic: the split with the shortest description.

    Each change costs ``penalty * log(words)`` (less at a spoken transition), each topic the
    description length of its words (``_Lengths``); dynamic programming, no topic shorter than
    ``MIN_TOPIC_SECONDS``. At worst O(units² x repeated words), vectorised; pruning makes it
    near-linear when there are many topics.
    """
    lengths = lengths or _Lengths([_key_list(u.text) for u in units])
    n = len(units)
    price = penalty * math.log(max(2.0, float(lengths.words[-1])))
    prices = np.array([0.0, *(price * (CUE_DISCOUNT if TRANSITION_CUE.match(u.text) else 1.0) for u in units[1:])])
    starts = [u.start for u in units]
    best = np.full(n + 1, math.inf)      # best[b]: the shortest description of units 0..b-1
    best[0] = 0.0
    back = np.zeros(n + 1, dtype=int)
    alive = np.zeros(n + 1, dtype=bool)    # topic starts still worth trying (PELT-style pruning)
    alive[0] = True
    for b in range(1, n + 1):
        last = bisect.bisect_right(starts, units[b - 1].end - MIN_TOPIC_SECONDS) - 1   # a topic's first unit <= this
        if b == n:
            last = max(last, 0)             # the whole episode is one topic, however short
        if last < 0:
            continue
        firsts = np.flatnonzero(alive[:last + 1])
        if not firsts.size:
            firsts = np.arange(last + 1)
        cost = best[firsts] + prices[firsts] + lengths.ending_at(b, firsts)
        a = int(np.argmin(cost))
        best[b], back[b] = cost[a], firsts[a]
        alive[firsts[cost > best[b] + PRUNE_NATS]] = False   # that far behind, a start does not catch up
        alive[b] = True
    result, b = [], n
    while b > 0:
        b = int(back[b])
        if b:
            result.append(b)
    return sorted(result)


def _near_alternatives(changes: list[int], n: int, lengths: _Lengths) -> set[int]:
    """Units within ``PLACE_UNITS`` of a change that start the new topic almost as well (within
    ``PLACE_MARGIN`` of the best description): the change could be there as well."""
    result = set()
    edges = [0, *changes, n]
    for k in range(1, len(edges) - 1):
        a, g, c = edges[k - 1], edges[k], edges[k + 1]
        best = lengths.run(a, g) + lengths.run(g, c)
        for h in range(max(a + 1, g - PLACE_UNITS), min(c - 1, g + PLACE_UNITS) + 1):
            if h != g and lengths.run(a, h) + lengths.run(h, c) - best <= PLACE_MARGIN:
                result.add(h)
    return result


def similarities(sents: list[Sentence], keys: list[set[str]] | None = None) -> dict[int, float]:
    """Gap g (before sentence g) -> cosine of the lexical chains active in the windows either side of it.

    A chain is a content word said again and again, no more than ``CHAIN_HIATUS_SECONDS`` apart
    (LCseg, Galley et al. 2003): every sentence it spans counts it, said there or not, which is
    what makes a subject's sentences alike when ordinary speech rarely repeats a word within 20 s.
    A chain weighs more the more often it is said (log: one word said ten times must not outvote the rest).
    """
    said: dict[str, list[int]] = {}
    for n, s in enumerate(sents):
        for token in (keys[n] if keys is not None else _keys(s.text)):
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


def _keys(text: str) -> set[str]:
    return set(_key_list(text))


def _key_list(text: str) -> list[str]:
    """The content words that carry a subject, as many times as said (first six letters: press, pressing)."""
    return [t[:CHAIN_KEY_LETTERS] for t in keywords.tokens(text) if t not in TOPIC_NEUTRAL]


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
