"""Render speed A/B: this tree's ``render_clip`` against another checkout's, alternated in one run.

Both sides render the same generated 1080p 30 fps clip into the four default variants with a
centre crop (``reframe: center``) and bench/render.py's caption load, each in a fresh child
process, in alternating order; the wall and CPU seconds (the child and its ffmpeg) are summed
per side and the ratio printed.

    git archive <base-commit> | tar -x -C /tmp/base
    .venv/bin/python bench/render_ab.py /tmp/base [--seconds 20] [--rounds 4]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import render as render_bench  # noqa: E402  (bench/render.py)

CHILD = r"""
import json, resource, sys, time
root = sys.argv[1]
sys.path.insert(0, root)
sys.path.insert(0, root + "/bench")
from pathlib import Path
import render as bench
from pipeline import media
from pipeline.config import RenderSettings
from pipeline.media import render_graph
source, out, seconds = Path(sys.argv[2]), Path(sys.argv[3]), float(sys.argv[4])
def cpu():
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
began, cpu0 = time.perf_counter(), cpu()
render_graph.render_clip(source, media.probe(source), 0, seconds, bench.fake_words(seconds), out,
                         Path(root) / "assets" / "fonts", RenderSettings(reframe="center"))
print(json.dumps({"wall": time.perf_counter() - began, "cpu": cpu() - cpu0}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", help="a checkout of the code to compare against")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    sides = {"base": str(Path(args.base).resolve()), "this tree": str(ROOT)}
    results: dict[str, list[dict]] = {name: [] for name in sides}
    with tempfile.TemporaryDirectory() as folder:
        source = render_bench.make_source(Path(folder) / "source.mp4", args.seconds, 1920, 1080)
        for round_ in range(args.rounds):
            order = list(sides) if round_ % 2 == 0 else list(reversed(sides))
            for name in order:
                out = Path(folder) / f"{name.replace(' ', '_')}_{round_}"
                done = subprocess.run([sys.executable, "-c", CHILD, sides[name], str(source), str(out),
                                       str(args.seconds)], capture_output=True, text=True, check=True)
                results[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
                print(f"round {round_ + 1} {name:9}: wall {results[name][-1]['wall']:6.1f} s  "
                      f"cpu {results[name][-1]['cpu']:6.1f} s", flush=True)
    for key in ("wall", "cpu"):
        base, ours = (sum(r[key] for r in results[name]) for name in sides)
        print(f"{key}: base {base:.1f} s, this tree {ours:.1f} s -> this tree / base = {ours / base:.3f}")


if __name__ == "__main__":
    main()
