"""What a re-transcription changed: the words of the previous transcript against the current one.

Reprocessing an episode with another model or vocabulary keeps the replaced transcript as
``transcript.previous.json`` (see the transcribe stage). The two word sequences are aligned with
``difflib`` on their spoken form (case and punctuation ignored, so "quorbex," and "Quorbex" are
the same word) and each differing stretch is one change, placed at the time it is said in the
new transcript (or in the old one when words were only dropped).
"""

from __future__ import annotations

import difflib
import re

from pipeline import storage, transcript
from pipeline.config import Settings

_SPOKEN = re.compile(r"[^\w']+", re.UNICODE)


def _spoken(word: str) -> str:
    return _SPOKEN.sub("", word).lower()


def compare(old: dict, new: dict) -> dict:
    """``{"old": {model, engine, language, vocabulary}, "new": {...}, "changes": [{start, old, new}],
    "words_changed", "words"}`` for two transcripts."""
    old_words = [w for w in transcript.all_words(old) if _spoken(w["word"])]
    new_words = [w for w in transcript.all_words(new) if _spoken(w["word"])]
    matcher = difflib.SequenceMatcher(a=[_spoken(w["word"]) for w in old_words],
                                      b=[_spoken(w["word"]) for w in new_words], autojunk=False)
    changes = []
    for tag, a1, a2, b1, b2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        at = new_words[b1] if b1 < b2 else old_words[a1]
        changes.append({"start": at["start"],
                        "old": transcript.join_words([w["word"].strip() for w in old_words[a1:a2]]),
                        "new": transcript.join_words([w["word"].strip() for w in new_words[b1:b2]])})
    return {"old": _about(old), "new": _about(new), "changes": changes,
            "words_changed": sum(max(len(c["old"].split()), len(c["new"].split())) for c in changes),
            "words": len(new_words)}


def _about(doc: dict) -> dict:
    return {key: doc.get(key) for key in ("engine", "model", "language", "vocabulary")}


def for_episode(settings: Settings, episode_id: str) -> dict | None:
    """The changes of the episode's last re-transcription, or None when it was transcribed once."""
    previous = storage.previous_transcript_path(settings.data_dir, episode_id)
    current = storage.transcript_path(settings.data_dir, episode_id)
    if not previous.exists() or not current.exists():
        return None
    return compare(transcript.load(previous), transcript.load(current))
