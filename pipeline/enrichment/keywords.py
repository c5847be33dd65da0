"""Keywords of a spoken episode, offline: statistics of the transcript itself, no model.

Spoken transcripts are full of scaffolding ("welcome back to the show", "thanks for
listening") and generic verbs and adjectives, which plain frequency ranks high. A
candidate (a word, or a two-word phrase that recurs) scores by
  frequency x spread    - how often it is said and in how many parts of the episode,
  x noun bonus          - it follows "the/a/every/your..." or "real/small/clear..." at least once,
  x name bonus          - it is capitalised mid-sentence (a person, product or place),
and function words, talk-show scaffolding, generic verbs/adjectives and -ly adverbs are
left out; a word mostly said after "I/you/we/they/to" (a verb, usually) ranks lower. Words are grouped by a light stem (test/tests/testing) and shown in their most
frequent spoken form. ``distinctive`` ranks words of one part against the others (TF-IDF),
which is what names a chapter.
"""

from __future__ import annotations

import contextlib
import functools
import math
import re
from collections import Counter, defaultdict
from contextvars import ContextVar

STOPWORDS = frozenset("""a about above after again against ago all almost along already also although always am
among an and another any anyone anything are around as at away be became because become been before being
below between both but by can cannot could did do does doing done down during each either else enough even
ever every few for from further get gets getting got gotten had has have having he her here hers herself him
himself his how however i if in instead into is it its itself just least less let lets like ll may me might
more most much must my myself neither no nobody none nor not nothing now of off often on once one only onto
or other others otherwise our ours ourselves out over own per perhaps quite rather re really same say says
said she should since so some somebody someone something sometimes somewhat still such than that thats the
their theirs them themselves then there therefore these they thing things think this those though through
thus to today together too toward towards under unless until up upon us ve very via was way ways we well
were what whatever when whenever where whether which while who whoever whole whom whose why will with within
without would yet you your yours yourself yourselves don doesn didn isn wasn aren weren won wouldn couldn
shouldn can't i'm it's that's there's we're they're you're i've we've you've i'll we'll you'll he's she's
let's isn't don't doesn't didn't""".split())

# Talk-show scaffolding and conversational filler: said in every episode, about none of them.
FILLER = frozenset("""welcome back show episode episodes podcast today tonight talking talk talked talks
thanks thank listening listen listened listener listeners watching watch viewers subscribe week weeks next
guys everyone everybody folks um uh umm uhh er ah oh okay ok yeah yes yep nope sure right kind sort stuff
actually basically literally totally gonna wanna gotta maybe bit lot lots pretty great good nice cool
awesome amazing simple whole able real really sorry hey hello hi bye goodbye anyway alright fine""".split())

# Verbs and adjectives too generic to name a topic.
GENERIC = frozenset("""make makes made making take takes took taking want wants wanted need needs needed find
finds found give gives gave put puts keep keeps kept tell tells told call calls called look looks looked
looking feel feels felt try tries tried trying start starts started use uses used using come comes came
coming go goes went gone going see sees saw seen know knows knew known mean means meant happen happens
happened seem seems seemed help helps helped ask asks asked show shows showed turn turns turned leave left
run runs ran bring brings brought begin began write writes wrote written matter matters check checks
notice notices rarely new old big small little large high low long short same different important
first second third last many several sure clear hard easy best better worse worst true false full
early late later soon fast slow once twice thing time times moment part parts""".split())

DETERMINERS = frozenset("the a an every each your our their my his her this that these those its".split())
ADJECTIVES = frozenset("""new old big small little large high low long short same different important first second
third last many several clear hard easy best better worse worst true false full early late fast slow real great
good simple whole""".split())
SUBJECTS = frozenset("i you we they he she it to".split())   # a word after these is usually a verb
# Other languages' articles and possessives: a word after one is a noun (the same noun bonus).
DETERMINERS_BY_LANGUAGE = {
    "de": frozenset("der die das den dem des ein eine einen einem einer eines jede jeder jedes unser unsere "
                    "mein meine dein deine sein seine ihr ihre diese dieser dieses".split()),
    "fr": frozenset("le la les un une des du au aux ce cet cette ces mon ma mes ton ta tes son sa ses notre "
                    "nos votre vos leur leurs chaque".split()),
    "es": frozenset("el la los las un una unos unas del al este esta estos estas ese esa esos esas mi mis tu "
                    "tus su sus nuestro nuestra nuestros nuestras cada".split()),
}
# Conversational filler the generic stop-lists miss (English has FILLER above).
FILLER_BY_LANGUAGE = {
    "de": frozenset("""ja nein genau halt eben mal also okay naja äh ähm hallo tschüss danke bitte sendung folge
podcast heute willkommen zuhören zuschauer woche irgendwie eigentlich wirklich vielleicht gerade schon sagen
gesagt sagt machen macht gemacht gibt geht gehen kommen kommt sehen sieht""".split()),
    "fr": frozenset("""oui non bon voilà alors euh bah ben bref enfin bonjour salut merci émission épisode podcast
aujourd'hui bienvenue écoute semaine vraiment peut-être juste chose choses faire fait dire dit aller va voir""".split()),
    "es": frozenset("""sí bueno pues vale claro eh oye hola gracias programa episodio podcast hoy bienvenidos
semana realmente quizás cosa cosas hacer hace decir dice ir va ver""".split()),
}
_TOKEN = re.compile(r"[^\W\d_]+(?:['-][^\W\d_]+)*")   # letters of any script; inner ' and - kept
_ELISION = re.compile(r"^(?:[ldjmnstc]|qu|jusqu|lorsqu|puisqu)'(?=[^\W\d_])", re.IGNORECASE)   # French l'énergie -> énergie
_STOP_LIST_NAMES = {"de": "german", "fr": "french", "es": "spanish", "it": "italian", "pt": "portuguese",
                    "nl": "dutch", "sv": "swedish", "da": "danish", "no": "norwegian", "fi": "finnish",
                    "pl": "polish", "cs": "czech", "ru": "russian", "uk": "ukrainian", "tr": "turkish"}
_SPEAKING: ContextVar[tuple[str, frozenset[str]]] = ContextVar("keywords_speaking", default=("en", frozenset()))


@contextlib.contextmanager
def speaking(language: str | None, protected: frozenset[str] = frozenset()):
    """Within the block, keywords are picked for ``language`` (its stop-list; English when empty)
    and ``protected`` words (lower case, the operator's vocabulary) are never dropped as stop words."""
    code = (language or "en").split("-")[0].lower()
    token = _SPEAKING.set((code, frozenset(protected)))
    try:
        yield
    finally:
        _SPEAKING.reset(token)


@functools.cache
def stop_list(language: str) -> frozenset[str]:
    """The stop words of ``language`` (ISO 639-1): ours for English, the ``stop-words`` package's
    for the others it knows; an empty list for a language it does not know."""
    if language == "en":
        return STOPWORDS
    name = _STOP_LIST_NAMES.get(language)
    if name is None:
        return frozenset()
    from stop_words import get_stop_words
    return frozenset(w.lower() for w in get_stop_words(name))


def filler(language: str) -> frozenset[str]:
    return FILLER | GENERIC if language == "en" else FILLER_BY_LANGUAGE.get(language, frozenset())


def _unelided(word: str) -> str:
    return _ELISION.sub("", word)


def stem(word: str) -> str:
    """A light stem that groups plural and -ing forms: tests, testing -> test (English only;
    other languages' words are only lower-cased, and French elisions dropped)."""
    if _SPEAKING.get()[0] != "en":
        return _unelided(word.lower().strip("'-"))
    w = word.lower().strip("'-")
    if w.endswith("'s"):
        w = w[:-2]
    if len(w) > 4 and w.endswith("ies"):
        return w[:-3] + "y"
    if len(w) > 5 and w.endswith("ing"):
        w = w[:-3]
        return w[:-1] if len(w) > 3 and w[-1] == w[-2] and w[-1] not in "ls" else w
    if len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is")):
        return w[:-1]
    return w


def is_content(word: str) -> bool:
    """A word that may be a keyword in the language being spoken; the operator's vocabulary always may."""
    language, protected = _SPEAKING.get()
    w = word.lower()
    if w in protected:
        return True
    if language != "en":
        w = _unelided(w)
        return len(w) > 2 and w not in stop_list(language) and w not in filler(language)
    if len(w) <= 2 or w in STOPWORDS or w in FILLER or w in GENERIC or w.endswith("ly"):
        return False
    root = stem(w)
    return root not in STOPWORDS and root not in FILLER and root not in GENERIC


def words(text: str) -> list[str]:
    """The words of ``text`` as spoken (letters, apostrophes and hyphens), in order."""
    return _TOKEN.findall(text)


def tokens(text: str) -> list[str]:
    """Content-word stems of ``text`` (what keyword density is measured in)."""
    return [stem(t) for t in _TOKEN.findall(text) if is_content(t)]


class _Stats:
    """Counts for one list of sentences: stems, phrases, surface forms, spread, noun and name hints."""

    def __init__(self, texts: list[str], parts: int = 10):
        self.count: Counter = Counter()
        self.parts: defaultdict = defaultdict(set)
        self.forms: defaultdict = defaultdict(Counter)
        self.nounish: Counter = Counter()
        self.verbish: Counter = Counter()
        self.capitalised: Counter = Counter()
        self.content_total = 0
        n = max(1, len(texts))
        language = _SPEAKING.get()[0]
        determiners = DETERMINERS_BY_LANGUAGE.get(language, DETERMINERS)
        for index, text in enumerate(texts):
            part = index * parts // n
            words = _TOKEN.findall(text)
            elided = [language != "en" and bool(_ELISION.match(w)) for w in words]
            if any(elided):   # French l'énergie is counted and shown as énergie (a noun: l' is an article)
                words = [_unelided(w) for w in words]
            previous_key = None
            for position, word in enumerate(words):
                if not is_content(word):
                    previous_key = None
                    continue
                key = stem(word)
                self._see(key, word, part)
                self.content_total += 1
                before = words[position - 1].lower() if position else ""
                if before in determiners or before in ADJECTIVES or elided[position]:
                    self.nounish[key] += 1
                elif before in SUBJECTS:
                    self.verbish[key] += 1
                if position and word[0].isupper() and word != "I":
                    self.capitalised[key] += 1
                if previous_key is not None and _adjacent(text, words[position - 1], word):
                    phrase = f"{previous_key} {key}"
                    self._see(phrase, f"{words[position - 1]} {word}", part)
                previous_key = key

    def _see(self, key: str, form: str, part: int) -> None:
        self.count[key] += 1
        self.parts[key].add(part)
        self.forms[key][form if form[0].isupper() and form.lower() != form else form.lower()] += 1

    def display(self, key: str) -> str:
        form = self.forms[key].most_common(1)[0][0]
        return form if self.capitalised[key.split()[-1]] * 2 >= self.count[key] else form.lower()


def _adjacent(text: str, first: str, second: str) -> bool:
    """The two words follow each other with only a space between (no comma or full stop)."""
    return f"{first} {second}" in text


def _score(stats: _Stats, key: str) -> float:
    tf = stats.count[key]
    spread = len(stats.parts[key])
    score = tf * (1.0 + math.log(spread))
    last = key.split()[-1]
    if stats.nounish[last]:
        score *= 1.3
    elif stats.verbish[last] * 2 >= stats.count[last]:
        score *= 0.7
    if stats.capitalised[last] * 2 >= stats.count[last]:
        score *= 1.5
    if " " in key:
        score *= 1.6
    return score


def extract(texts: list[str], limit: int = 10) -> list[str]:
    """The ``limit`` best keywords (words or recurring two-word phrases) of a list of sentences."""
    stats = _Stats(texts)
    min_count = 2 if stats.content_total >= 300 else 1
    keys = [k for k in stats.count if stats.count[k] >= (max(2, min_count) if " " in k else min_count)]
    ranked = sorted(keys, key=lambda k: (-_score(stats, k), -stats.count[k], k))
    chosen: list[str] = []
    for key in ranked:
        if len(chosen) >= limit:
            break
        # a word said mostly inside a chosen phrase adds nothing; a phrase over a chosen word does
        if any(" " in c and key in c.split() and stats.count[key] <= stats.count[c] + 1 for c in chosen):
            continue
        chosen = [c for c in chosen if not (" " not in c and c in key.split() and stats.count[c] <= stats.count[key] + 1)]
        chosen.append(key)
    return [stats.display(k) for k in chosen]


def distinctive(groups: list[list[str]], limit: int = 3) -> list[list[str]]:
    """For each group of sentences, its ``limit`` words that set it apart from the others (TF-IDF)."""
    per_group = [_Stats(texts, parts=3) for texts in groups]
    n = len(groups)
    df = Counter(k for stats in per_group for k in stats.count if " " not in k)
    result = []
    for stats in per_group:
        scored = {k: _score(stats, k) * math.log(1 + n / df[k]) for k in stats.count if " " not in k}
        best = sorted(scored, key=lambda k: (-scored[k], k))[:limit]
        result.append([stats.display(k) for k in best])
    return result


def unique(values) -> list[str]:
    """``values`` without repeats that differ only in case, the first spelling kept, in order."""
    seen, result = set(), []
    for v in values:
        if v.lower() not in seen:
            seen.add(v.lower())
            result.append(v)
    return result


def hashtag(keyword: str) -> str:
    """``real data`` -> ``#RealData``; letters and digits only."""
    return "#" + "".join(part[:1].upper() + part[1:] for part in re.findall(r"[^\W_]+", keyword))
