"""Pure tests of the ASS/SRT caption builders on hand-made word lists."""

from __future__ import annotations

import re
from itertools import pairwise

import pytest
import srt

from pipeline import transcript
from pipeline.config import PROJECT_ROOT, CaptionPreset, default_caption_presets
from pipeline.media.captions import build_ass, build_srt, font_size, group_lines

DIALOGUE = re.compile(r"^Dialogue: 0,(\d+):(\d\d):(\d\d)\.(\d\d),(\d+):(\d\d):(\d\d)\.(\d\d),Default,,0,0,0,,(.*)$")
SRT_TIME = re.compile(r"^(\d\d):(\d\d):(\d\d),(\d\d\d) --> (\d\d):(\d\d):(\d\d),(\d\d\d)$")
OWN_TAG = re.compile(r"\{\\1c&H[0-9A-F]{6}&(\\fscx\d+\\fscy\d+)?\}|\{\\r\}|\{\\fs\d+\}")
FONTS = PROJECT_ROOT / "assets" / "fonts"
PRESETS = default_caption_presets()


def words_from(text: str, start: float = 0.0, step: float = 0.4, length: float = 0.3) -> list[dict]:
    """Whisper-style words (leading space) spaced ``step`` apart from ``start``."""
    return [{"word": f" {w}", "start": round(start + i * step, 3), "end": round(start + i * step + length, 3),
             "probability": 0.9} for i, w in enumerate(text.split())]


def events(ass: str) -> list[tuple[float, float, str]]:
    result = []
    for line in ass.splitlines():
        if line.startswith("Dialogue:"):
            m = DIALOGUE.match(line)
            assert m, line
            g = m.groups()
            start = int(g[0]) * 3600 + int(g[1]) * 60 + int(g[2]) + int(g[3]) / 100
            end = int(g[4]) * 3600 + int(g[5]) * 60 + int(g[6]) + int(g[7]) / 100
            result.append((start, end, g[8]))
    return result


def visible(text: str) -> str:
    """Event text without our colour override tags."""
    return OWN_TAG.sub("", text)


def parse_srt(srt: str) -> list[tuple[float, float, list[str]]]:
    cues = []
    for n, block in enumerate(srt.strip().split("\n\n"), start=1):
        lines = block.split("\n")
        assert lines[0] == str(n)
        m = SRT_TIME.match(lines[1])
        assert m, lines[1]
        g = [int(x) for x in m.groups()]
        start = g[0] * 3600 + g[1] * 60 + g[2] + g[3] / 1000
        end = g[4] * 3600 + g[5] * 60 + g[6] + g[7] / 1000
        cues.append((start, end, lines[2:]))
    return cues


SETTINGS = CaptionPreset()
TEXT = ("Welcome back to the show. Today we are talking about how small teams ship great software. "
        "The first lesson is simple: write down what you want before you build it.")


def test_times_are_clip_relative_clamped_and_outside_words_dropped():
    words = [
        {"word": " before", "start": 0.5, "end": 1.5},      # ends before the clip: dropped
        {"word": " straddle", "start": 1.8, "end": 2.4},    # starts before the clip: clamped to 0
        {"word": " inside", "start": 3.0, "end": 3.5},
        {"word": " tail", "start": 5.8, "end": 6.6},        # runs past the clip end: clamped
        {"word": " after", "start": 6.5, "end": 7.0},       # starts after the clip: dropped
    ]
    ass = build_ass(words, 2.0, 6.0, 1920, 1080, SETTINGS)
    evs = events(ass)
    texts = " ".join(visible(t) for _, _, t in evs)
    assert "before" not in texts and "after" not in texts
    assert {"straddle", "inside", "tail"} <= set(texts.split())
    assert evs[0][0] == 0.0
    assert all(0 <= s <= e <= 4.0 for s, e, _ in evs)
    assert evs[-1][1] == pytest.approx(4.0, abs=0.01)

    cues = parse_srt(build_srt(words, 2.0, 6.0))
    joined = " ".join(line for _, _, lines in cues for line in lines)
    assert joined == "straddle inside tail"
    assert cues[0][0] == 0.0
    assert all(0 <= s <= e <= 4.0 for s, e, _ in cues)


def test_one_event_per_word_with_exactly_one_highlighted_word():
    words = words_from(TEXT, start=10.0)
    evs = events(build_ass(words, 10.0, 40.0, 1080, 1920, SETTINGS))
    assert len(evs) == len(words)
    for (_, _, text), word in zip(evs, words, strict=True):
        highlighted = re.findall(r"\{\\1c&H15CCFA&\\fscx100\\fscy100\}(.*?)\{\\r\}", text)
        assert highlighted == [word["word"].strip()]


def test_highlight_colour_comes_from_settings_in_ass_bgr_order():
    settings = CaptionPreset(highlight_color="#112233", pop=1.2)
    ass = build_ass(words_from("one two three"), 0, 5, 1920, 1080, settings)
    assert "{\\1c&H332211&\\fscx120\\fscy120}" in ass


@pytest.mark.parametrize("per_line", [1, 2, 4, 7])
def test_lines_hold_at_most_words_per_line_and_break_at_sentence_ends(per_line):
    settings = CaptionPreset(words_per_line=per_line)
    evs = events(build_ass(words_from(TEXT), 0, 60, 1920, 1080, settings))
    lines = [visible(t).split(" ") for _, _, t in evs]
    assert all(1 <= len(line) <= per_line for line in lines)
    # No caption line carries a word after a sentence end.
    assert all(not any(w.endswith(".") for w in line[:-1]) for line in lines)
    # Every word of the transcript is shown, whole, in order.
    shown = []
    for line in lines:
        if line != (shown[-1] if shown else None):
            shown.append(line)
    assert [w for line in shown for w in line] == TEXT.split()


def test_events_of_a_line_are_contiguous_so_the_line_does_not_flicker():
    words = [{"word": w, "start": s, "end": e} for w, s, e in
             [(" one", 0.0, 0.2), (" two", 0.5, 0.7), (" three", 0.9, 1.0), (" four", 1.6, 1.8)]]
    evs = events(build_ass(words, 0, 10, 1920, 1080, CaptionPreset(words_per_line=4)))
    for (_, end, _), (start, _, _) in pairwise(evs):
        assert end == start
    assert evs[-1][1] == pytest.approx(2.1)   # last word held a moment after it ends


def test_long_pause_starts_a_new_line():
    words = [{"word": " before", "start": 0.0, "end": 0.3}, {"word": " after", "start": 3.0, "end": 3.3}]
    evs = events(build_ass(words, 0, 10, 1920, 1080, SETTINGS))
    assert [visible(t) for _, _, t in evs] == ["before", "after"]
    assert evs[0][1] < 1.0


def test_braces_and_backslashes_are_escaped():
    words = [{"word": " {\\b1}bold", "start": 0.0, "end": 0.5}, {"word": " a\\Nb}", "start": 0.5, "end": 1.0}]
    evs = events(build_ass(words, 0, 2, 1920, 1080, SETTINGS))
    for _, _, text in evs:
        rest = visible(text)
        # Every remaining brace is escaped, and no backslash directly starts an ASS escape.
        assert all(i > 0 and rest[i - 1] == "\\" for i, c in enumerate(rest) if c in "{}")
        assert "\\b1" not in rest and "\\N" not in rest
        assert "\\{" in rest and "\\}" in rest


def test_header_matches_frame_and_settings():
    settings = CaptionPreset(font="Noto Sans")
    portrait = build_ass([], 0, 5, 1080, 1920, settings)
    landscape = build_ass([], 0, 5, 1920, 1080, settings)
    assert "PlayResX: 1080\nPlayResY: 1920" in portrait
    assert "PlayResX: 1920\nPlayResY: 1080" in landscape
    assert "Dialogue:" not in portrait

    def style(ass: str) -> list[str]:
        line = next(line for line in ass.splitlines() if line.startswith("Style: "))
        return line[len("Style: "):].split(",")

    p, wide = style(portrait), style(landscape)
    assert p[1] == "Noto Sans" and p[7] == "-1"                      # font, bold
    assert p[18] == "2"                                               # bottom centre
    assert int(p[21]) / 1920 >= 0.2 and 0.05 <= int(wide[21]) / 1080 <= 0.1   # MarginV
    assert float(p[16]) >= 4 and float(wide[16]) >= 3                    # thick outline


def test_srt_cues_respect_line_length_line_count_and_duration():
    long_words = words_from("supercalifragilistic " * 3 + TEXT + " " + TEXT, start=5.0, step=0.5)
    srt = build_srt(long_words, 5.0, 45.0)
    cues = parse_srt(srt)
    assert len(cues) > 3
    for start, end, lines in cues:
        assert 1 <= len(lines) <= 2
        assert all(0 < len(line) <= 42 for line in lines)
        assert 0 <= start < end <= 40.0
        assert end - start <= 7.0
    source = [w["word"].strip() for w in long_words if w["start"] < 45.0]
    assert [w for _, _, lines in cues for line in lines for w in line.split()] == source
    starts = [s for s, _, _ in cues]
    assert starts == sorted(starts)


def test_srt_respects_custom_max_chars_and_empty_input():
    cues = parse_srt(build_srt(words_from(TEXT), 0, 60, max_chars=20))
    assert all(len(line) <= 20 for _, _, lines in cues for line in lines)
    assert build_srt([], 0, 10) == ""
    assert build_srt(words_from("too early"), 100, 110) == ""


def test_clip_srt_is_canonical_srt_from_the_one_transcript_writer():
    text = build_srt(words_from(TEXT, start=10.0), 10.0, 40.0)
    subtitles = list(srt.parse(text, ignore_errors=False))
    assert [s.index for s in subtitles] == list(range(1, len(subtitles) + 1))
    assert srt.compose(subtitles, reindex=False) == text and text.endswith("\n\n")
    assert [(s.start.total_seconds(), s.end.total_seconds(), s.content.split("\n")) for s in subtitles] == \
        [(round(s, 3), round(e, 3), lines) for s, e, lines in parse_srt(text)]
    clip_relative = [dict(w, start=w["start"] - 10.0, end=w["end"] - 10.0) for w in words_from(TEXT, start=10.0)]
    assert text == transcript.compose_srt(transcript.cues(clip_relative))


def test_presets_set_size_case_box_and_margins_relative_to_the_frame():
    words = words_from("Café déjà vu, naïve façade")

    def style(ass: str) -> list[str]:
        return next(line for line in ass.splitlines() if line.startswith("Style: "))[len("Style: "):].split(",")

    pop = build_ass(words, 0, 5, 1080, 1920, PRESETS["bold-pop"], FONTS)
    assert "CAFÉ" in pop and "DÉJÀ" in pop and "Café" not in pop          # uppercase keeps the accents
    assert int(style(pop)[2]) == round(0.05 * 1920)                         # font size from the frame height
    assert int(style(pop)[21]) == round(0.28 * 1920)                        # above the apps' UI band
    assert "\\fscx115\\fscy115" in pop                                   # the spoken word pops

    lower = build_ass(words, 0, 5, 1920, 1080, PRESETS["clean-lower-third"], FONTS)
    assert "Café" in lower and int(style(lower)[2]) == round(0.038 * 1080)
    assert int(style(lower)[21]) == round(0.06 * 1080)

    boxed = style(build_ass(words, 0, 5, 1080, 1920, PRESETS["boxed"], FONTS))
    assert boxed[15] == "3" and boxed[5].startswith("&H59")                 # opaque box, 65% opaque black
    assert style(pop)[15] == "1"


def test_lines_never_exceed_the_safe_width_and_never_split_words():
    long = "Extraordinarily incomprehensible characteristically misunderstandings notwithstanding everything"
    preset = CaptionPreset(size=0.06, words_per_line=6, uppercase=True)
    evs = events(build_ass(words_from(long), 0, 60, 1080, 1920, preset, FONTS))
    lines = {visible(t) for _, _, t in evs}
    assert all(len(line.split(" ")) < 6 for line in lines)                  # width, not the word count, broke them
    assert [w for line in dict.fromkeys(visible(t) for _, _, t in evs) for w in line.split(" ")] == long.upper().split()

    # One word wider than the frame is drawn with a smaller font instead of being cut.
    giant = events(build_ass(words_from("Pneumonoultramicroscopicsilicovolcanoconiosis"), 0, 5, 1080, 1920, preset,
                             FONTS))
    assert giant and re.match(r"\{\\fs(\d+)\}", giant[0][2])
    assert int(re.match(r"\{\\fs(\d+)\}", giant[0][2]).group(1)) < font_size(preset, 1920)


def test_group_lines_respects_count_width_sentences_and_pauses():
    words = words_from("a bb ccc. dddd e")
    lines = group_lines([dict(w, word=w["word"].strip()) for w in words], 3, len, 6)
    assert [[w["word"] for w in line] for line in lines] == [["a", "bb"], ["ccc."], ["dddd", "e"]]


def test_captions_never_outlast_the_clip():
    words = words_from("one two three four five six", start=0.0, step=0.5)
    evs = events(build_ass(words, 0.0, 1.6, 1080, 1920, PRESETS["bold-pop"], FONTS))
    assert evs and all(end <= 1.6 and start < end for start, end, _ in evs)
    assert {visible(t).split(" ")[0] for _, _, t in evs} <= {"ONE", "FOUR"}


def test_config_presets_merge_with_the_built_in_ones_and_bad_values_name_the_key(tmp_path):
    from pipeline.config import load_settings
    from pipeline.errors import ConfigError

    def load(text: str):
        path = tmp_path / "pipeline.yaml"
        path.write_text(text, encoding="utf-8")
        return load_settings(path)

    settings = load("render:\n  caption_preset: karaoke\n  caption_presets:\n"
                    "    bold-pop:\n      size: 0.06\n    karaoke:\n      highlight_color: '#FF00FF'\n")
    presets = settings.render.caption_presets
    assert set(presets) == {"bold-pop", "clean-lower-third", "boxed", "karaoke"}
    assert presets["bold-pop"].size == 0.06 and presets["bold-pop"].uppercase            # other keys kept
    assert presets["karaoke"] == CaptionPreset(highlight_color="#FF00FF")
    for text, message in [
        ("render:\n  caption_presets:\n    boxed:\n      size: 2\n",
         "render.caption_presets.boxed.size: must be between 0.01 and 0.2"),
        ("render:\n  caption_presets:\n    boxed:\n      colour: red\n", "render.caption_presets.boxed.colour: unknown"),
        ("render:\n  caption_presets:\n    x:\n      text_color: white\n",
         "render.caption_presets.x.text_color: must be a colour"),
        ("render:\n  caption_preset: nope\n", "render.caption_preset: 'nope' is not one of"),
        ("render:\n  reframe: zoom\n", "render.reframe: must be 'center', 'face', 'fit', 'split' or 'auto'"),
        ("render:\n  encoder: x265\n", "render.encoder: must be 'libx264' or 'h264_nvenc'"),
        ("render:\n  caption_presets: []\n", "render.caption_presets: must be a mapping"),
    ]:
        with pytest.raises(ConfigError, match=re.escape(message)):
            load(text)
