"""Caption timing benchmark: how far the burned-in word highlight is from the voice, end to end.

Speech with known word onsets (espeak-ng words joined with known gaps, tests/caption_timing.py)
is transcribed by the bundled model and rendered as a subtitled 16x9 clip twice in one run:
with Whisper's own word times and with the word edges snapped to the speech energy envelope
(what renders do). The highlight onsets are read back from the frames and compared with the
true onsets; Whisper's raw word starts are printed against the truth too.

    .venv/bin/python bench/caption_timing.py [--repeat 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import caption_timing  # noqa: E402

from pipeline import media  # noqa: E402
from pipeline.config import PROJECT_ROOT, RenderSettings, TranscribeSettings  # noqa: E402
from pipeline.media.render_graph import render_outputs  # noqa: E402
from pipeline.stages.transcribe import transcribe_file  # noqa: E402


def describe(name: str, errors: np.ndarray) -> None:
    ms = errors * 1000
    print(f"{name:32} median {np.median(ms):5.0f} ms  p90 {np.percentile(ms, 90):5.0f} ms  "
          f"p95 {np.percentile(ms, 95):5.0f} ms  max {ms.max():5.0f} ms  "
          f"<=100 ms: {np.mean(ms <= 100):4.0%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="renders per variant (errors pooled)")
    args = parser.parse_args()
    pooled = {"whisper word starts (no render)": [], "render, Whisper's times": [], "render, snapped (default)": []}
    with tempfile.TemporaryDirectory() as folder:
        video, truth = caption_timing.make(Path(folder))
        info = media.probe(video)
        words = [w for s in transcribe_file(video, TranscribeSettings(), info.duration)["segments"]
                 for w in s["words"]]
        print(f"{len(truth)} spoken words, {len(words)} transcribed, {info.duration:.1f} s")
        pooled["whisper word starts (no render)"].append(caption_timing.errors([w["start"] for w in words], truth))
        for _ in range(args.repeat):
            for name, snap in (("render, Whisper's times", False), ("render, snapped (default)", True)):
                out = Path(folder) / f"subtitled_{snap}.mp4"
                render_outputs(video, info, 0.0, info.duration, words, {"subtitled_16x9": out}, None,
                               PROJECT_ROOT / "assets" / "fonts", RenderSettings(preset="ultrafast"), snap_words=snap)
                pooled[name].append(caption_timing.errors(caption_timing.highlight_onsets(out), truth))
    for name, errors in pooled.items():
        describe(name, np.concatenate(errors))
    print("target: median <= 100 ms, p95 <= 200 ms (error = |true onset - nearest highlight onset|)")


if __name__ == "__main__":
    main()
