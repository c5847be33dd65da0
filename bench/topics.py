"""Topic segmentation quality on the tuning set and on the held-out set (tests/topic_episodes.py).

The constants of ``pipeline/enrichment/topics.py`` are tuned on ``tuning``: the tuning texts'
fixed episodes plus ``--random`` more strung from the same texts at random (3-6 subjects,
115-190 words a minute). ``held-out`` is episodes of other texts, never used for tuning: its
figures are the honest ones (its fixed episodes, and ``--held-out-random`` more of its texts). Printed per set: true changes found within 5 s (and 10 s),
spurious chapter starts per 10 minutes, Pk / WindowDiff, clips straddling a true change; the
peer is the fixed-length chapters of ``enrich.chapter_seconds`` (what chapters were before).

    .venv/bin/python bench/topics.py [--random 160] [--held-out-random 100] [--sets tuning held-out] [--misses]
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import topic_episodes  # noqa: E402
import topic_metrics  # noqa: E402

from pipeline import transcript  # noqa: E402
from pipeline.config import Settings  # noqa: E402
from pipeline.enrichment import sentences, titles  # noqa: E402
from pipeline.stages import enrich  # noqa: E402


def random_episodes(count: int, texts: dict[str, str], seed: int = 20) -> list[tuple[list[str], int]]:
    rng = random.Random(seed)
    names = sorted(texts)
    return [(rng.sample(names, rng.randint(3, 6)), rng.randint(115, 190)) for _ in range(count)]


def measure(episodes, texts: dict[str, str], show_misses: bool = False) -> dict:
    settings = Settings()
    totals = {"truth": 0, "hits5": 0, "hits10": 0, "spurious": 0, "minutes": 0.0, "pk": [], "wd": [],
              "clips": 0, "straddling": 0, "fixed_pk": [], "leaning": 0}
    for subjects, pace in episodes:
        doc, starts = topic_episodes.transcript(subjects, pace, texts)
        truth = starts[1:]
        enrichment, clips = enrich.enrich_transcript(doc, settings)
        found = [c["start"] for c in enrichment["chapters"][1:]]
        hits5, extra = topic_metrics.matched(truth, found, 5.0)
        hits10, _ = topic_metrics.matched(truth, found, 10.0)
        pk, wd = topic_metrics.pk_and_windowdiff(truth, found, doc["duration"])
        fixed = [t for t in range(int(settings.enrich.chapter_seconds), int(doc["duration"]),
                                  int(settings.enrich.chapter_seconds))]
        totals["fixed_pk"].append(topic_metrics.pk_and_windowdiff(truth, fixed, doc["duration"])[0])
        straddling = [c for c in clips for b in truth if c["start"] < b - 0.5 and c["end"] > b + 0.5]
        totals["truth"] += len(truth)
        totals["hits5"] += hits5
        totals["hits10"] += hits10
        totals["spurious"] += extra
        totals["minutes"] += doc["duration"] / 60
        totals["pk"].append(pk)
        totals["wd"].append(wd)
        totals["clips"] += len(clips)
        totals["straddling"] += len(straddling)
        sents = sentences.build(transcript.all_words(doc))
        totals["leaning"] += sum(titles.leans_on_context(next(s.text for s in sents if s.start >= c["start"] - 1e-6))
                                 for c in clips)
        if show_misses and (hits5 < len(truth) or extra or straddling):
            print(f"  {subjects} @{pace}: truth {truth} found {found} straddling "
                  f"{[(c['start'], c['end']) for c in straddling]}")
    return totals


def report(name: str, t: dict) -> None:
    mean = lambda xs: sum(xs) / len(xs) if xs else 0.0  # noqa: E731
    print(f"{name}: {len(t['pk'])} episodes, {t['minutes']:.0f} min, {t['truth']} true changes")
    print(f"  found within 5 s {t['hits5']}/{t['truth']} = {t['hits5'] / max(1, t['truth']):.1%}, "
          f"within 10 s {t['hits10'] / max(1, t['truth']):.1%}; spurious {t['spurious']} "
          f"({t['spurious'] / t['minutes'] * 10:.2f} per 10 min)")
    print(f"  Pk {mean(t['pk']):.3f} / WindowDiff {mean(t['wd']):.3f} (fixed-length chapters: Pk "
          f"{mean(t['fixed_pk']):.3f}); clips straddling a true change {t['straddling']}/{t['clips']} = "
          f"{t['straddling'] / max(1, t['clips']):.1%}; clips opening on a word that leans on what came before "
          f"{t['leaning']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--random", type=int, default=160, help="random tuning episodes besides the fixed ones")
    parser.add_argument("--held-out-random", type=int, default=100,
                        help="episodes strung at random from the held-out texts (a larger sample to report)")
    parser.add_argument("--sets", nargs="+", default=["tuning", "held-out"], choices=["tuning", "held-out"])
    parser.add_argument("--misses", action="store_true", help="print each episode with a miss")
    args = parser.parse_args()
    if "tuning" in args.sets:
        fixed = [(s, p) for s, p, _ in topic_episodes.EPISODES + topic_episodes.SINGLE]
        report("tuning (fixed + random)", measure(fixed + random_episodes(args.random, topic_episodes.SUBJECTS),
                                                  topic_episodes.SUBJECTS,
                                                  args.misses))
    if "held-out" in args.sets:
        held = [(s, p) for s, p, _ in topic_episodes.HELD_OUT_EPISODES + topic_episodes.HELD_OUT_SINGLE]
        report("held-out", measure(held, topic_episodes.HELD_OUT_SUBJECTS, args.misses))
        if args.held_out_random:
            report("held-out texts, strung at random", measure(
                random_episodes(args.held_out_random, topic_episodes.HELD_OUT_SUBJECTS, seed=16),
                topic_episodes.HELD_OUT_SUBJECTS, args.misses))


if __name__ == "__main__":
    main()
