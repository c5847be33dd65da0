"""Transcription benchmark: faster-whisper vs openai-whisper, and bundled models against each other, in one run.

Both engines load the bundled ``tiny.en`` (openai-whisper through the cached conversion of
``pipeline.stages.whisper_checkpoint``) and run ``pipeline.stages.transcribe.transcribe_file`` with the
same settings (beam size, VAD, word timestamps), so the only difference is the engine.
Each engine is warmed up once (model load, first-call JIT), then the runs alternate between
the engines so a change in machine load hits both alike; the fastest run of each counts.
Prints the real-time factor (seconds of work per second of audio, lower is better) and
the word error rate against the sample's script for each, the speed ratio, and the load
average (the machine may be shared).

With ``--models tiny.en base`` every model runs on both engines in the same alternation, and
each model after the first is reported as a ratio against the first (time and WER).

    .venv/bin/python bench/transcribe.py [--audio FILE --text FILE] [--runs 3] [--beam-size 5] [--models tiny.en base]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.config import TranscribeSettings  # noqa: E402
from pipeline.media import probe  # noqa: E402
from pipeline.stages.transcribe import transcribe_file  # noqa: E402

ENGINES = ("faster-whisper", "openai-whisper")


def word_error_rate(reference: str, hypothesis: str) -> float:
    import jiwer
    normalise = jiwer.Compose([jiwer.ToLowerCase(), jiwer.RemovePunctuation(), jiwer.RemoveMultipleSpaces(),
                               jiwer.Strip(), jiwer.ReduceToListOfListOfWords()])
    return jiwer.wer(" ".join(reference.split()), " ".join(hypothesis.split()),
                     reference_transform=normalise, hypothesis_transform=normalise)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--audio", type=Path, default=ROOT / "tests" / "data" / "speech.opus")
    parser.add_argument("--text", type=Path, default=ROOT / "tests" / "data" / "speech.txt",
                        help="the reference script of --audio, for the word error rate")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per engine and model (after one warm-up)")
    parser.add_argument("--beam-size", type=int, default=TranscribeSettings().beam_size)
    parser.add_argument("--threads", type=int, default=0, help="CPU threads for both engines (0 = all cores)")
    parser.add_argument("--models", nargs="+", default=["tiny.en"],
                        help="bundled models to compare, e.g. --models tiny.en base (the first is the peer)")
    args = parser.parse_args()

    duration = probe(args.audio).duration
    reference = args.text.read_text(encoding="utf-8")
    runs = [(engine, model) for model in args.models for engine in ENGINES]
    settings = {(engine, model): TranscribeSettings(engine=engine, model=model, beam_size=args.beam_size,
                                                    threads=args.threads) for engine, model in runs}
    print(f"audio: {args.audio.name}, {duration:.1f} s; beam size {args.beam_size}; models {', '.join(args.models)}; "
          f"{os.cpu_count()} CPUs; load average at start {os.getloadavg()[0]:.2f}")
    times: dict[tuple, list[float]] = {run: [] for run in runs}
    wer: dict[tuple, float] = {}
    with tempfile.TemporaryDirectory() as cache:   # joining base and the openai-whisper conversions: in the warm-up
        for run in runs:
            started = time.perf_counter()
            doc = transcribe_file(args.audio, settings[run], duration, cache=Path(cache))
            wer[run] = word_error_rate(reference, " ".join(s["text"] for s in doc["segments"]))
            print(f"  warm-up {run[0]} {run[1]}: {time.perf_counter() - started:.1f} s (model load included)")
        for _ in range(args.runs):
            for run in runs:
                started = time.perf_counter()
                transcribe_file(args.audio, settings[run], duration, cache=Path(cache))
                times[run].append(time.perf_counter() - started)
    load_after = os.getloadavg()[0]

    for run in runs:
        best, median = min(times[run]), statistics.median(times[run])
        print(f"{run[0]:15s} {run[1]:8s} RTF {best / duration:.3f} (best of {args.runs}; median {median / duration:.3f})"
              f"  WER {wer[run] * 100:.1f}%")
    for model in args.models:
        ratio = min(times[("openai-whisper", model)]) / min(times[("faster-whisper", model)])
        difference = abs(wer[("faster-whisper", model)] - wer[("openai-whisper", model)]) * 100
        print(f"{model}: faster-whisper is {ratio:.1f}x faster than openai-whisper on the same weights; "
              f"WER difference {difference:.1f} points")
    peer = args.models[0]
    for model in args.models[1:]:
        for engine in ENGINES:
            ratio = min(times[(engine, model)]) / min(times[(engine, peer)])
            print(f"{engine}: {model} takes {ratio:.1f}x the time of {peer}; WER {wer[(engine, peer)] * 100:.1f}% -> "
                  f"{wer[(engine, model)] * 100:.1f}%; {model} costs {min(times[(engine, model)]) / duration * 3600 / 60:.1f}"
                  " min of transcription per media hour on this machine")
    print(f"load average at end {load_after:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
