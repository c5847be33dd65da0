"""Enrich-stage benchmark: the offline enricher on a 60-minute transcript, against the stage's own floor.

The issue's budget is 2 s on 2 cores for a 60-minute transcript. Two transcripts are timed:
the measurement set's subjects read one after another for an hour (tests/topic_episodes.py, a
new subject every ~45 s: the most chapters and topic changes) and four 15-minute topics
(tests/synthetic_transcript.py). The peer, measured in the same run, is the floor every
enrichment pays: building the sentences from the words and ranking the keywords.

    .venv/bin/python bench/enrich.py [--minutes 60] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import synthetic_transcript  # noqa: E402
import topic_episodes  # noqa: E402

from pipeline import transcript  # noqa: E402
from pipeline.config import Settings  # noqa: E402
from pipeline.enrichment import keywords, sentences, topics  # noqa: E402
from pipeline.stages import enrich  # noqa: E402


def subjects_for(minutes: float) -> dict:
    """The measurement set's subjects in turn, at 160 words a minute, until ``minutes`` are filled."""
    names, order = list(topic_episodes.SUBJECTS), []
    while topic_episodes.transcript(order, 160)[0]["duration"] < minutes * 60 if order else True:
        order.append(names[len(order) % len(names)])
    return topic_episodes.transcript(order, 160)[0]


def best_of(repeat: int, run) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    docs = {"a new subject every ~45 s": subjects_for(args.minutes),
            "four long topics": synthetic_transcript.transcript(["databases", "cycling", "baking", "astronomy"],
                                                                args.minutes * 15)}
    settings = Settings()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    for name, doc in docs.items():
        words = transcript.all_words(doc)

        def floor(words=words):
            keywords.extract([s.text for s in sentences.build(words)])

        floor_s = best_of(args.repeat, floor)
        topics_s = best_of(args.repeat, lambda words=words: topics.boundaries(topics.clauses(words)))
        stage_s = best_of(args.repeat, lambda doc=doc: enrich.enrich_transcript(doc, settings))
        enrichment, clips = enrich.enrich_transcript(doc, settings)
        print(f"{name}: {doc['duration'] / 60:.0f} min, {len(words)} words, {len(enrichment['chapters'])} chapters, "
              f"{len(clips)} clips")
        print(f"  enrich stage {stage_s:.2f} s (budget 2 s: {stage_s / 2:.0%}); topic finding {topics_s:.2f} s; "
              f"floor (sentences + keywords) {floor_s:.2f} s; stage / floor = {stage_s / floor_s:.1f}x")


if __name__ == "__main__":
    main()
