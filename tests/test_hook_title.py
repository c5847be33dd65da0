"""The hook title: the clip's title as a banner over its first seconds, in the caption style."""

from __future__ import annotations

import ffmpeg
import numpy as np
import pytest

from pipeline import media
from pipeline.config import PROJECT_ROOT, RenderSettings, default_caption_presets
from pipeline.media.captions import build_ass
from pipeline.media.render_graph import render_clip

FONTS = PROJECT_ROOT / "assets" / "fonts"


def test_title_is_one_top_banner_event_in_the_preset_font_and_colours():
    preset = default_caption_presets()["bold-pop"]
    ass = build_ass([], 0.0, 10.0, 1080, 1920, preset, FONTS, title="Why  {tests} matter", title_seconds=2.5)
    style = next(line for line in ass.splitlines() if line.startswith("Style: Title,"))
    fields = style.split(",")
    assert fields[1] == preset.font and fields[3] == "&H00000000" and fields[5] == "&H0015CCFA"   # black on yellow
    assert fields[15] == "3" and fields[18] == "8"                        # boxed, top centre
    events = [line for line in ass.splitlines() if line.startswith("Dialogue: 1,")]
    assert events == ["Dialogue: 1,0:00:00.00,0:00:02.50,Title,,0,0,0,,WHY \\{TESTS\\} MATTER"]
    assert "Title" not in build_ass([], 0.0, 10.0, 1080, 1920, preset, FONTS, title="x", title_seconds=0)


def test_render_shows_the_banner_only_for_its_seconds(tmp_path):
    source = tmp_path / "dark.mp4"
    media.run(ffmpeg.output(ffmpeg.input("color=c=black:s=640x360:r=15:d=4", f="lavfi"),
                            ffmpeg.input("sine=frequency=200:duration=4", f="lavfi"), str(source),
                            vcodec="libx264", preset="ultrafast", pix_fmt="yuv420p", t=4), 4)
    result = render_clip(source, media.probe(source), 0.0, 4.0, [], tmp_path / "out", FONTS,
                         RenderSettings(preset="ultrafast", title_overlay_seconds=1.5), aspects=["9x16"],
                         title="A hook worth watching")

    def top_band(path, at: float) -> np.ndarray:
        rgb = np.frombuffer(media.extract_frame(path, at), np.uint8).reshape(1920, 1080, 3)
        return rgb[100:500]

    banner = top_band(result["subtitled_9x16"], 0.7)
    yellow = (banner[..., 0] > 200) & (banner[..., 1] > 160) & (banner[..., 2] < 90)
    assert yellow.mean() > 0.02                                        # the highlight-coloured box is there
    assert top_band(result["subtitled_9x16"], 2.5).max() < 40           # gone after 1.5 s
    assert top_band(result["clean_9x16"], 0.7).max() < 40               # clean variants stay clean


@pytest.mark.parametrize("value", [-1, 31])
def test_title_seconds_out_of_range_is_refused(value):
    from pipeline.config import Settings
    from pipeline.errors import BadInput
    from pipeline.jobs import options
    with pytest.raises(BadInput, match="title_overlay_seconds"):
        options.validate(Settings(), {"title_overlay_seconds": value})
