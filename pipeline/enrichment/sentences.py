"""Sentences rebuilt from Whisper's word timestamps: the unit every clip boundary snaps to.

A sentence ends at a word ending in ``.``, ``?`` or ``!``. Transcripts without punctuation
(some models and languages) would otherwise be one endless sentence, so a pause of at least
``PAUSE_BREAK_SECONDS`` between two words also ends one, and a run-on sentence longer than
``LONG_SENTENCE_SECONDS`` ends at its next comma or semicolon (a clause is still a clean cut).
Language-aware: a full stop after a known abbreviation of the episode's language ("Dr.",
"z.B.", "M.", "Sra.") does not end a sentence, and Chinese/Japanese full stops (。！？) do; words
of scripts written without spaces are joined without them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pipeline.transcript import join_words

PAUSE_BREAK_SECONDS = 1.5
LONG_SENTENCE_SECONDS = 30.0
_TERMINAL = re.compile(r"[.?!…。！？][\"')\]»”]*$")
# Abbreviations whose full stop does not end a sentence, per language (lower case, with their dots).
ABBREVIATIONS = {
    "en": frozenset("mr. mrs. ms. dr. prof. st. vs. etc. e.g. i.e. approx. no. jr. sr. inc. ltd. co.".split()),
    "de": frozenset("z.b. bzw. usw. dr. prof. ca. nr. vgl. d.h. u.a. evtl. ggf. inkl. hr. fr. st. str. "
                    "bzw. etc. z.t. s.o. u.s.w.".split()),
    "fr": frozenset("m. mme. mlle. mm. dr. pr. etc. p.ex. cf. av. bd. st. ste. env. n°.".split()),
    "es": frozenset("sr. sra. srta. sres. dr. dra. ud. uds. etc. p.ej. av. avda. núm. pág. aprox. st.".split()),
}


@dataclass(frozen=True)
class Sentence:
    start: float
    end: float
    text: str
    word_count: int

    @property
    def duration(self) -> float:
        return self.end - self.start

    @property
    def is_question(self) -> bool:
        return self.text.rstrip("\"')] ").endswith("?")


def build(words: list[dict], language: str | None = None) -> list[Sentence]:
    """Sentences from a transcript's words (``transcript.all_words``), in time order; ``language``
    (the transcript's, e.g. "de") chooses the abbreviations that do not end one."""
    abbreviations = ABBREVIATIONS.get((language or "en").split("-")[0].lower(), frozenset())
    result: list[Sentence] = []
    current: list[dict] = []
    for word in words:
        text = word["word"].strip()
        if not text:
            continue
        if current and word["start"] - current[-1]["end"] >= PAUSE_BREAK_SECONDS:
            result.append(_sentence(current))
            current = []
        current.append(word)
        run_on = text[-1] in ",;" and word["end"] - current[0]["start"] >= LONG_SENTENCE_SECONDS
        if (_TERMINAL.search(text) and text.lower().lstrip("\"'(«“") not in abbreviations) or run_on:
            result.append(_sentence(current))
            current = []
    if current:
        result.append(_sentence(current))
    return result


def _sentence(words: list[dict]) -> Sentence:
    text = join_words([w["word"].strip() for w in words])
    return Sentence(round(float(words[0]["start"]), 3), round(float(words[-1]["end"]), 3), text, len(words))


def text_between(sents: list[Sentence], start: float, end: float) -> str:
    return " ".join(s.text for s in sents if s.start >= start - 1e-6 and s.end <= end + 1e-6)
