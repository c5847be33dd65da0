"""Long transcripts with known topics, in the transcript schema, for enrichment tests.

Sentences are built from templates and each topic's vocabulary, words timed at a steady
pace, so tests know where each topic starts and can check chapters, windows and clips.
"""

from __future__ import annotations

import random

TOPICS = {
    "databases": ["database", "index", "query", "SQLite", "schema", "migration", "transaction", "table"],
    "cycling": ["bicycle", "saddle", "gear", "tyre", "climb", "chain", "pedal", "descent"],
    "baking": ["sourdough", "flour", "oven", "crust", "dough", "starter", "loaf", "yeast"],
    "astronomy": ["telescope", "galaxy", "orbit", "comet", "nebula", "planet", "eclipse", "Jupiter"],
}
TEMPLATES = [
    "The {a} matters because every {b} depends on the {c}.",
    "Why does the {a} fail when the {b} grows?",
    "Because the {a} was never tested against a real {b}.",
    "We measured {n} {a}s in {m} minutes with one {b}.",
    "Here's the secret about the {a} and the {c}.",
    "Most people forget the {b} until the {a} breaks.",
    "And then the {c} changed how we think about the {a}.",
    "So the {a} and the {b} work together in practice.",
]
WORD_SECONDS = 0.32
WORD_GAP = 0.04
SENTENCE_GAP = 0.45


# One subject, two sub-topics: every sentence names two of the subject's words and one of its sub-topic's.
SUBTOPICS = {"sourdough": ["starter", "ferment", "culture", "jar", "bubbles", "feeding"],
             "baking": ["oven", "steam", "crust", "stone", "bake", "tray"]}
SUBJECT = ["sourdough", "flour", "dough", "loaf", "bread", "baker"]


def transcript(topics: list[str], seconds_per_topic: float, seed: int = 7) -> dict:
    """Topics in order, each ~``seconds_per_topic`` long; sentence starts land on 0.01 s steps."""
    return _timed([(TOPICS[topic], seconds_per_topic) for topic in topics], random.Random(seed))[0]


def subtopics(seconds: list[float], seed: int = 3) -> tuple[dict, list[float]]:
    """One subject (bread) in turns of its two sub-topics (``SUBTOPICS``), ``seconds`` each: the same
    main words throughout, only one word in three tells the sub-topic. Also when each turn starts."""
    rng = random.Random(seed)
    turns = list(SUBTOPICS.values())
    return _timed([(turns[n % 2], span) for n, span in enumerate(seconds)], rng, shared=SUBJECT)


def _timed(parts: list[tuple[list[str], float]], rng: random.Random, shared: list[str] | None = None
           ) -> tuple[dict, list[float]]:
    t, segments, starts = 0.0, [], []
    for vocab, seconds in parts:
        starts.append(round(t, 2))
        end_of_topic = t + seconds
        while t < end_of_topic:
            if shared:
                (a, c), b = rng.sample(shared, 2), rng.choice(vocab)
            else:
                a, b, c = rng.sample(vocab, 3)
            text = rng.choice(TEMPLATES).format(a=a, b=b, c=c, n=rng.randint(2, 90), m=rng.randint(2, 9))
            words = []
            for token in text.split():
                words.append({"word": " " + token, "start": round(t, 2), "end": round(t + WORD_SECONDS, 2),
                              "probability": 0.9})
                t += WORD_SECONDS + WORD_GAP
            segments.append({"start": words[0]["start"], "end": words[-1]["end"], "text": " " + text,
                             "words": words})
            t += SENTENCE_GAP
    return ({"language": "en", "duration": round(t, 2), "engine": "synthetic", "model": "none",
             "segments": segments}, starts)


def topic_starts(doc: dict, topics: list[str]) -> list[float]:
    """When each topic's first sentence starts."""
    starts, current = [], None
    for seg in doc["segments"]:
        topic = next(name for name in topics if any(w in seg["text"] for w in TOPICS[name]))
        if topic != current:
            starts.append(seg["start"])
            current = topic
    return starts
