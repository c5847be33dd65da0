"""Render benchmark: our one-process, four-variant render vs one ffmpeg process per variant.

Both sides produce the same four outputs (same sizes, captions, encoder settings) from the
same generated source, in the same run, so the printed ratio compares like with like.

    .venv/bin/python bench/render.py [--seconds 30] [--width 1920 --height 1080] [--repeat 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import ffmpeg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline import media, render  # noqa: E402
from pipeline.config import RenderSettings, load_settings  # noqa: E402
from pipeline.media import ffmpeg_exe  # noqa: E402


def make_source(path: Path, seconds: float, width: int, height: int) -> Path:
    video = ffmpeg.input(f"testsrc2=size={width}x{height}:rate=30:duration={seconds}", f="lavfi")
    audio = ffmpeg.input(f"sine=frequency=330:duration={seconds}", f="lavfi")
    (ffmpeg.output(video, audio, str(path), vcodec="libx264", preset="ultrafast", pix_fmt="yuv420p", acodec="aac")
     .run(cmd=ffmpeg_exe(), overwrite_output=True, quiet=True))
    return path


def fake_words(seconds: float) -> list[dict]:
    """A word every 0.4 s, sentences of nine words: a realistic caption load."""
    return [{"word": f" word{i}" + ("." if i % 9 == 8 else ""), "start": i * 0.4, "end": i * 0.4 + 0.35,
             "probability": 1.0} for i in range(int(seconds / 0.4))]


def separate_processes(source: Path, info, seconds: float, out_dir: Path, fonts_dir: Path,
                       settings: RenderSettings, words: list[dict]) -> None:
    """The naive peer: one ffmpeg process per variant, each decoding the source itself."""
    from pipeline.captions import build_ass
    out_dir.mkdir(parents=True, exist_ok=True)
    for variant in render.VARIANTS:
        aspect = variant.split("_")[1]
        width, height = render.SIZES[aspect]
        src = ffmpeg.input(str(source), ss=0, t=seconds)
        video = src.video.filter("setsar", 1)
        if aspect == "9x16":
            video = render._fill(video, width, height)
        else:
            video = render._fit(video, width, height)
        if variant.startswith("subtitled"):
            ass = out_dir / f"{aspect}.ass"
            ass.write_text(build_ass(words, 0, seconds, width, height, settings), encoding="utf-8")
            video = video.filter("ass", filename=str(ass), fontsdir=str(fonts_dir))
        video = video.filter("format", "yuv420p")
        media.run(ffmpeg.output(video, src.audio, str(out_dir / f"{variant}.mp4"), vcodec="libx264",
                                preset=settings.preset, crf=settings.crf, acodec="aac",
                                audio_bitrate=settings.audio_bitrate, movflags="+faststart"), seconds)


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--width", type=int, default=1920)
    parser.add_argument("--height", type=int, default=1080)
    parser.add_argument("--repeat", type=int, default=2, help="runs per side; the best is kept")
    args = parser.parse_args()
    settings = load_settings()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        source = make_source(tmp / "source.mp4", args.seconds, args.width, args.height)
        info = media.probe(source)
        words = fake_words(args.seconds)
        ours = min(timed(lambda: render.render_clip(source, info, 0, args.seconds, words, tmp / "ours",
                                                    settings.paths.fonts_dir, settings.render))
                   for _ in range(args.repeat))
        peer = min(timed(lambda: separate_processes(source, info, args.seconds, tmp / "peer",
                                                    settings.paths.fonts_dir, settings.render, words))
                   for _ in range(args.repeat))
        for variant in render.VARIANTS:   # both sides really made the same outputs
            a, b = media.probe(tmp / "ours" / f"{variant}.mp4"), media.probe(tmp / "peer" / f"{variant}.mp4")
            assert (a.width, a.height) == (b.width, b.height) and abs(a.duration - b.duration) < 0.2
    print(f"source {args.width}x{args.height}, {args.seconds:.0f} s clip, 4 variants, preset {settings.render.preset}")
    print(f"one process (ours):       {ours:6.1f} s  ({ours / args.seconds:.2f} s per clip second)")
    print(f"one process per variant:  {peer:6.1f} s")
    print(f"ratio: ours is {peer / ours:.2f}x faster")


if __name__ == "__main__":
    main()
