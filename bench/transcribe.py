"""Transcription benchmark: faster-whisper vs openai-whisper on the same weights and audio, in one run.

Both engines load the bundled ``tiny.en`` (openai-whisper through the cached conversion of
``pipeline.stages.whisper_checkpoint``) and run ``pipeline.stages.transcribe.transcribe_file`` with the
same settings (beam size, VAD, word timestamps), so the only difference is the engine.
Each engine is warmed up once (model load, first-call JIT), then the runs alternate between
the engines so a change in machine load hits both alike; the fastest run of each counts.
Prints the real-time factor (seconds of work per second of audio, lower is better) and
the word error rate against the sample's script for each, the speed ratio, and the load
average (the machine may be shared).

    .venv/bin/python bench/transcribe.py [--audio FILE --text FILE] [--runs 3] [--beam-size 5]
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
    parser.add_argument("--runs", type=int, default=3, help="timed runs per engine (after one warm-up)")
    parser.add_argument("--beam-size", type=int, default=TranscribeSettings().beam_size)
    parser.add_argument("--threads", type=int, default=0, help="CPU threads for both engines (0 = all cores)")
    args = parser.parse_args()

    duration = probe(args.audio).duration
    reference = args.text.read_text(encoding="utf-8")
    settings = {engine: TranscribeSettings(engine=engine, beam_size=args.beam_size, threads=args.threads)
                for engine in ENGINES}
    print(f"audio: {args.audio.name}, {duration:.1f} s; beam size {args.beam_size}; "
          f"{os.cpu_count()} CPUs; load average at start {os.getloadavg()[0]:.2f}")
    times: dict[str, list[float]] = {engine: [] for engine in ENGINES}
    wer: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as cache:   # the openai-whisper conversion happens in the warm-up
        for engine in ENGINES:
            started = time.perf_counter()
            doc = transcribe_file(args.audio, settings[engine], duration, cache=Path(cache))
            wer[engine] = word_error_rate(reference, " ".join(s["text"] for s in doc["segments"]))
            print(f"  warm-up {engine}: {time.perf_counter() - started:.1f} s (model load included)")
        for _ in range(args.runs):
            for engine in ENGINES:
                started = time.perf_counter()
                transcribe_file(args.audio, settings[engine], duration, cache=Path(cache))
                times[engine].append(time.perf_counter() - started)
    load_after = os.getloadavg()[0]

    for engine in ENGINES:
        best, median = min(times[engine]), statistics.median(times[engine])
        print(f"{engine:15s} RTF {best / duration:.3f} (best of {args.runs}; median {median / duration:.3f})"
              f"  WER {wer[engine] * 100:.1f}%")
    ratio = min(times["openai-whisper"]) / min(times["faster-whisper"])
    print(f"faster-whisper is {ratio:.1f}x faster than openai-whisper on the same weights; "
          f"WER difference {abs(wer['faster-whisper'] - wer['openai-whisper']) * 100:.1f} points; "
          f"load average at end {load_after:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
