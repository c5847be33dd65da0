"""Short titles that stand on their own, and whether a sentence does.

A clip or a summary that opens on "But", "And so", "Which" or a pronoun with nothing before
it to point to ("It was...", "They said...") makes no sense cut out of its episode, so
``leans_on_context`` spots such openings and ``short`` turns a sentence into a title of at
most ``MAX_TITLE_CHARS`` characters: the clause that carries it, cut at a word, never ending
on "the" or "and", never starting on a dangling word.
"""

from __future__ import annotations

import re

from pipeline.enrichment import keywords

MAX_TITLE_CHARS = 60
CONNECTIVES = frozenset("""and but so because or which also then plus anyway however although though whereas
therefore thus yet nor hence meanwhile besides instead otherwise still""".split())
PRONOUNS = frozenset("it they he she them him his her its their theirs".split())     # refer back, always
DEMONSTRATIVES = frozenset("this that these those such".split())    # refer back unless a noun follows
FILLERS = frozenset("well okay ok right now yeah yes oh um uh look see".split())
_WORD = re.compile(r"[A-Za-z']+")


def leans_on_context(text: str) -> bool:
    """Whether a sentence opens on a word that only makes sense after what came before it."""
    words = [w.lower() for w in _WORD.findall(text)[:2]]
    if not words:
        return False
    first, second = words[0], (words[1] if len(words) > 1 else "")
    if first in CONNECTIVES or first in PRONOUNS:
        return True
    if first in DEMONSTRATIVES:      # "This oven..." names its noun; "This is why..." points back
        return not second or not keywords.is_content(second)
    return False


def strip_opening(text: str) -> str:
    """``text`` without a leading connective or filler ("So, the oven..." -> "The oven...")."""
    words = text.split()
    while len(words) > 3 and words[0].lower().strip(",.;:") in CONNECTIVES | FILLERS:
        words = words[1:]
    result = " ".join(words)
    return result[:1].upper() + result[1:]


def short(text: str, limit: int = MAX_TITLE_CHARS) -> str:
    """A title from a sentence: at most ``limit`` characters, cut at a clause, else at a word."""
    text = strip_opening(" ".join(text.split())).rstrip(".!")
    if len(text) <= limit:
        return text
    head = text[:limit + 1]
    clause = max(head.rfind(mark) for mark in (", ", "; ", ": ", " - "))
    if clause >= limit // 2:
        return text[:clause].rstrip(",;: -")
    words = head[:limit].rsplit(" ", 1)[0].split()
    while len(words) > 2 and (words[-1].lower().strip(",;:") in keywords.STOPWORDS
                              or words[-1].lower().strip(",;:") in CONNECTIVES):
        words.pop()
    return " ".join(words).rstrip(",;:")


def join_names(names: list[str], limit: int = MAX_TITLE_CHARS) -> str:
    """"Bread, telescopes and mortgages": as many names as fit in ``limit`` characters, in order."""
    names = [n for n in names if n]
    for count in range(len(names), 0, -1):
        shown = names[:count]
        text = shown[0] if count == 1 else ", ".join(shown[:-1]) + " and " + shown[-1]
        if len(text) <= limit:
            return text[:1].upper() + text[1:]
    return short(names[0], limit) if names else ""
