"""Render benchmark: our one-process render of a clip's four variants vs two peers, in one run.

- ours: ``render_graph.render_clip`` (one ffmpeg process: decode once, split, four encodes + thumbnail);
- four ffmpeg processes: the same graph built for one variant at a time (same filters,
  captions, loudness gain, encoder settings), each process decoding the source itself;
- moviepy: the same four outputs (same sizes, same caption lines as text clips, same
  loudness gain, same x264 preset/CRF) composited frame by frame in Python.

Every side's outputs are probed (sizes, durations) before the ratios are printed. With
``--memory-hours`` it also measures the peak memory of the render stage (``render.run`` on a
real app database) for an episode that long: a child process renders three clips (start,
middle, end) and reports its own and its ffmpeg children's peak RSS.

    .venv/bin/python bench/render.py [--seconds 30] [--width 1920 --height 1080] [--skip-moviepy]
    .venv/bin/python bench/render.py --memory-hours 3 --skip-speed
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import ffmpeg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline import media  # noqa: E402
from pipeline.config import RenderSettings, load_settings  # noqa: E402
from pipeline.media import render_graph  # noqa: E402
from pipeline.media.captions import caption_lines, font_size, margins  # noqa: E402


def make_source(path: Path, seconds: float, width: int, height: int, fps: int = 30) -> Path:
    video = ffmpeg.input(f"testsrc2=size={width}x{height}:rate={fps}:duration={seconds}", f="lavfi")
    audio = ffmpeg.input(f"sine=frequency=330:duration={seconds}", f="lavfi").filter("volume", 0.3)
    media.run(ffmpeg.output(video, audio, str(path), vcodec="libx264", preset="ultrafast", pix_fmt="yuv420p",
                            acodec="aac"), seconds)
    return path


def fake_words(seconds: float, start: float = 0.0) -> list[dict]:
    """A word every 0.4 s, sentences of nine words: a realistic caption load."""
    return [{"word": f" word{i}" + ("." if i % 9 == 8 else ""), "start": start + i * 0.4,
             "end": start + i * 0.4 + 0.35, "probability": 1.0} for i in range(int(seconds / 0.4))]


def separate_processes(source: Path, info, seconds: float, out_dir: Path, fonts_dir: Path,
                       settings: RenderSettings, words: list[dict]) -> None:
    """The naive peer: one ffmpeg process per variant, each decoding the source itself
    (the loudness is measured once and shared, which favours this peer)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    gain = render_graph.loudness_gain(source, info, 0.0, seconds, settings)
    for variant in render_graph.VARIANTS:
        render_graph.render_outputs(source, info, 0.0, seconds, words, {variant: out_dir / f"{variant}.mp4"}, None,
                              fonts_dir, settings, gain_db=gain, ass_prefix=f"{variant}_")


def with_moviepy(source: Path, info, seconds: float, out_dir: Path, fonts_dir: Path,
                 settings: RenderSettings, words: list[dict]) -> None:
    """The moviepy peer: crop/resize and caption text clips composited in Python per frame."""
    from moviepy import CompositeVideoClip, TextClip, VideoFileClip, afx
    out_dir.mkdir(parents=True, exist_ok=True)
    gain = render_graph.loudness_gain(source, info, 0.0, seconds, settings)
    preset = render_graph.preset_for(settings, None)
    font = str(next(Path(fonts_dir).glob("*.ttf")))
    base = VideoFileClip(str(source)).subclipped(0, seconds).with_effects([afx.MultiplyVolume(10 ** (gain / 20))])
    for aspect in render_graph.DEFAULT_ASPECTS:
        width, height = render_graph.SIZES[aspect]
        if aspect == "9x16":
            crop_w = round(info.height * width / height / 2) * 2
            frame = base.cropped(x_center=info.width / 2, width=crop_w, height=info.height).resized((width, height))
        else:
            frame = base.resized((width, height))
        size = font_size(preset, height)
        _, bottom = margins(preset, width, height)
        lines = caption_lines(words, 0.0, seconds, width, height, preset, Path(fonts_dir))
        texts = []
        for n, line in enumerate(lines):
            end = min(lines[n + 1][0]["start"] if n + 1 < len(lines) else seconds, line[-1]["end"] + 0.3, seconds)
            clip = TextClip(font=font, text=" ".join(w["word"] for w in line), font_size=size, color="white",
                            stroke_color="black", stroke_width=max(1, round(size * preset.outline)), method="label")
            texts.append(clip.with_start(line[0]["start"]).with_end(end)
                         .with_position(("center", height - bottom - clip.h)))
        for variant, layers in ((f"clean_{aspect}", [frame]), (f"subtitled_{aspect}", [frame, *texts])):
            video = CompositeVideoClip(layers, size=(width, height)).with_duration(seconds)
            video.write_videofile(str(out_dir / f"{variant}.mp4"), fps=info.fps, codec="libx264",
                                  preset=settings.preset, audio_codec="aac", audio_bitrate=settings.audio_bitrate,
                                  ffmpeg_params=["-crf", str(settings.crf), "-movflags", "+faststart",
                                                 "-pix_fmt", "yuv420p"], logger=None)
    base.close()


def cpu_seconds() -> float:
    """CPU time of this process and its waited-for children (ffmpeg): fairer than wall time
    on a machine shared with other work."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed(fn) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of ``fn()``."""
    start, cpu = time.perf_counter(), cpu_seconds()
    fn()
    return time.perf_counter() - start, cpu_seconds() - cpu


def check_same_outputs(sides: dict[str, Path], seconds: float) -> None:
    for variant in render_graph.VARIANTS:
        probes = {name: media.probe(folder / f"{variant}.mp4") for name, folder in sides.items()}
        for name, info in probes.items():
            assert (info.width, info.height) == render_graph.SIZES[variant.split("_", 1)[1]], (name, variant)
            assert abs(info.duration - seconds) < 0.2, (name, variant, info.duration)


def speed(args, settings) -> None:
    # A centre crop, as the figures in the README were measured (``auto`` adds a face-detection pass).
    settings = dataclasses.replace(settings, render=dataclasses.replace(settings.render, reframe="center"))
    fonts = settings.paths.fonts_dir
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        source = make_source(tmp / "source.mp4", args.seconds, args.width, args.height)
        info = media.probe(source)
        words = fake_words(args.seconds)
        ours = timed(lambda: render_graph.render_clip(source, info, 0, args.seconds, words, tmp / "ours", fonts,
                                                settings.render))
        separate = timed(lambda: separate_processes(source, info, args.seconds, tmp / "separate", fonts,
                                                    settings.render, words))
        sides = {"ours": tmp / "ours", "separate": tmp / "separate"}
        peer = None
        if not args.skip_moviepy:
            peer = timed(lambda: with_moviepy(source, info, args.seconds, tmp / "moviepy", fonts, settings.render,
                                              words))
            sides["moviepy"] = tmp / "moviepy"
        check_same_outputs(sides, args.seconds)
    print(f"source {args.width}x{args.height} 30 fps, {args.seconds:.0f} s clip, 4 variants "
          f"(1080x1920 + 1920x1080, clean + subtitled), x264 preset {settings.render.preset}, crf {settings.render.crf}"
          f", {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    print(f"ours, one ffmpeg process:  wall {ours[0]:7.1f} s  cpu {ours[1]:7.1f} s"
          f"  ({ours[0] / args.seconds:.2f} s per clip second)")
    print(f"four ffmpeg processes:     wall {separate[0]:7.1f} s  cpu {separate[1]:7.1f} s"
          f"  -> ours is {separate[0] / ours[0]:.2f}x faster (cpu {separate[1] / ours[1]:.2f}x)")
    if peer is not None:
        print(f"moviepy 2.2.1:             wall {peer[0]:7.1f} s  cpu {peer[1]:7.1f} s"
              f"  -> ours is {peer[0] / ours[0]:.2f}x faster (cpu {peer[1] / ours[1]:.2f}x)")


def make_long_source(path: Path, hours: float, width: int = 640, height: int = 360) -> Path:
    """A long episode in seconds of work: one generated minute, then stream-copied end to end."""
    minute = path.with_name("minute.mp4")   # small: a few hundred kbit/s, so 3 hours stay a few hundred MB
    video = ffmpeg.input(f"testsrc2=size={width}x{height}:rate=25:duration=60", f="lavfi")
    audio = ffmpeg.input("sine=frequency=330:duration=60", f="lavfi").filter("volume", 0.3)
    media.run(ffmpeg.output(video, audio, str(minute), vcodec="libx264", preset="veryfast", crf=35, g=250,
                            pix_fmt="yuv420p", acodec="aac", audio_bitrate="64k"), 60)
    loops = max(0, int(hours * 60) - 1)
    media.run(ffmpeg.input(str(minute), stream_loop=loops).output(str(path), c="copy"), hours * 3600)
    minute.unlink()
    return path


def memory(args, settings) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        source = make_long_source(tmp / "long.mp4", args.memory_hours)
        info = media.probe(source)
        command = [sys.executable, str(Path(__file__).resolve()), "--memory-child", str(source),
                   "--clip-seconds", str(args.clip_seconds), "--reframe", args.reframe]
        child = subprocess.run(command, capture_output=True, text=True, check=True)
        result = json.loads(child.stdout.strip().splitlines()[-1])
    print(f"render stage, {info.duration / 3600:.2f} h source ({info.width}x{info.height}), 3 clips of "
          f"{args.clip_seconds:.0f} s at the start, middle and end, reframe {args.reframe}, "
          f"preset {settings.render.preset}:")
    print(f"  peak RSS: worker (Python) {result['python_mb']:.0f} MB, ffmpeg child {result['ffmpeg_mb']:.0f} MB, "
          f"sum {result['python_mb'] + result['ffmpeg_mb']:.0f} MB; stage took {result['seconds']:.0f} s")


def memory_child(source: Path, clip_seconds: float, reframe_mode: str) -> None:
    """Run the real render stage on a temporary data dir and report peak memory as JSON."""
    import shutil

    from pipeline import db, storage
    from pipeline.stages import render
    from pipeline.stages.context import StageContext
    with tempfile.TemporaryDirectory() as data:
        os.environ["CLIPDESK_DATA_DIR"] = data
        settings = load_settings()
        info = media.probe(source)
        folder = storage.episode_dir(settings.data_dir, "long")
        folder.mkdir(parents=True)
        os.symlink(source, folder / "source.mp4")
        words = fake_words(info.duration)   # ~27,000 words for 3 hours: the transcript the stage loads
        storage.transcript_path(settings.data_dir, "long").write_text(
            json.dumps({"segments": [{"text": "", "start": 0, "end": info.duration, "words": words}]}))
        starts = [0.0, info.duration / 2, info.duration - clip_seconds]
        now = time.time()
        with db.session(settings.app_db) as conn, db.transaction(conn):
            db.insert_episode(conn, "long", "long", "path", str(source), now)
            db.set_episode_source(conn, "long", "source.mp4", info.duration, json.dumps(info.to_dict()), now)
            db.replace_clips(conn, "long", [{"id": f"c{i}", "start": s, "end": s + clip_seconds, "score": 50,
                                             "title": "t", "reason": "r"} for i, s in enumerate(starts)], now)
        started = time.perf_counter()
        render.run(StageContext(settings, "long", {"reframe": reframe_mode}, lambda fraction: None))
        seconds = time.perf_counter() - started
        shutil.rmtree(folder / "clips", ignore_errors=True)
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024          # KiB on Linux
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # the largest child
    print(json.dumps({"python_mb": own, "ffmpeg_mb": children, "seconds": seconds}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--width", type=int, default=1920)
    parser.add_argument("--height", type=int, default=1080)
    parser.add_argument("--skip-moviepy", action="store_true")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--memory-hours", type=float, default=0.0, help="also measure the render stage's memory")
    parser.add_argument("--clip-seconds", type=float, default=30.0)
    parser.add_argument("--reframe", default="face", choices=render_graph.REFRAME_MODES)
    parser.add_argument("--memory-child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args.memory_child, args.clip_seconds, args.reframe)
        return
    settings = load_settings()
    if not args.skip_speed:
        speed(args, dataclasses.replace(settings))
    if args.memory_hours > 0:
        memory(args, settings)


if __name__ == "__main__":
    main()
