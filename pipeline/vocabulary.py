"""An operator's own vocabulary: names, brands and jargon the transcript must spell right.

The list comes from three places, merged in this order: the config (``transcribe.vocabulary``,
for every job), a feed's options (every episode of the feed) and a job's options. Whisper gets
it as a hint (faster-whisper's ``hotwords``, which it repeats before every 30-second window;
openai-whisper's ``initial_prompt``, given to every piece Clipdesk hands it). A hint makes a
name likely, not certain, so the transcript's casing is fixed afterwards ("quorbex" ->
"Quorbex"), and the keyword extractor never drops a vocabulary word as a stop word ("Go").
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MAX_TERMS = 100
MAX_TERM_CHARS = 60
# Whisper's prompt holds at most ~220 tokens (half its text context); the hint stays well inside.
MAX_HINT_CHARS = 600


class VocabularyError(ValueError):
    """A vocabulary that cannot be used, with a sentence saying why."""


def parse(value) -> list[str]:
    """Terms from a list, or from text separated by commas or new lines; duplicates (any case)
    and empty entries dropped, order kept. VocabularyError for anything else."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        items = re.split(r"[,\n;]", value)
    elif isinstance(value, (list, tuple)) and all(isinstance(item, str) for item in value):
        items = list(value)
    else:
        raise VocabularyError(f"vocabulary must be a list of words or phrases (got {value!r}).")
    terms: list[str] = []
    for item in items:
        term = " ".join(item.split())
        if not term:
            continue
        if len(term) > MAX_TERM_CHARS:
            raise VocabularyError(f"vocabulary entry '{term[:30]}...' is longer than {MAX_TERM_CHARS} characters; "
                                  "give names, brands or short phrases.")
        if term.lower() not in {t.lower() for t in terms}:
            terms.append(term)
    if len(terms) > MAX_TERMS:
        raise VocabularyError(f"vocabulary has {len(terms)} entries; at most {MAX_TERMS} are allowed.")
    return terms


def merge(*lists: Iterable[str]) -> list[str]:
    """One list from several (config, feed, job), first spelling of a term wins."""
    merged: list[str] = []
    seen: set[str] = set()
    for terms in lists:
        for term in terms or ():
            if term.lower() not in seen:
                seen.add(term.lower())
                merged.append(term)
    return merged


def hint(terms: list[str]) -> str | None:
    """The text handed to Whisper: the terms, comma-separated, cut to fit its prompt."""
    text = ""
    for term in terms:
        candidate = f"{text}, {term}" if text else term
        if len(candidate) > MAX_HINT_CHARS:
            break
        text = candidate
    return text or None


def words(terms: list[str]) -> frozenset[str]:
    """The single words of the terms, lower-cased: what keyword stop-lists must keep."""
    return frozenset(w.lower() for term in terms for w in _WORD.findall(term))


_WORD = re.compile(r"\w[\w'+.&-]*\w|\w", re.UNICODE)


def _spellings(terms: list[str]) -> dict[str, str]:
    """lower-case word -> the spelling the vocabulary gives it (the first one given)."""
    spellings: dict[str, str] = {}
    for term in terms:
        for word in _WORD.findall(term):
            spellings.setdefault(word.lower(), word)
    return spellings


def fix_casing(doc: dict, terms: list[str]) -> dict:
    """Give words of the transcript that match a vocabulary word (ignoring case) its spelling;
    segment texts and word entries alike. Changes ``doc`` in place and returns it."""
    spellings = _spellings(terms)
    if not spellings:
        return doc
    pattern = re.compile(r"(?<![\w'])(" + "|".join(re.escape(w) for w in sorted(spellings, key=len, reverse=True))
                         + r")(?![\w'])", re.IGNORECASE)

    def respell(text: str) -> str:
        return pattern.sub(lambda m: spellings[m.group(1).lower()], text)

    for segment in doc.get("segments", []):
        segment["text"] = respell(segment["text"])
        for word in segment.get("words", []):
            word["word"] = respell(word["word"])
    return doc
