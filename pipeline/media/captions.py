"""Caption files for one clip: ASS for burned-in word-highlight captions, SRT for sidecars.

Pure Python, no ffmpeg. ``words`` carry episode-absolute times (Whisper style: leading
space, punctuation attached); both builders keep only the words overlapping the clip and
shift them to clip-relative times clamped to ``[0, clip_end - clip_start]``.

The look comes from a named ``CaptionPreset`` (config ``render.caption_presets``): sizes
and margins are fractions of the frame, so one preset fits 9x16, 16x9 and 1x1. Lines are
built from whole words only: at most ``words_per_line`` words, a new line after a
sentence end or a long pause, and never wider than the safe area (measured with the
bundled font when it is there), so libass never has to wrap or cut a word.

A hook title (``title_overlay_seconds``) is one more event: the clip's title in a box at the
top of the frame for its first seconds, in the preset's font, its outline colour on a box
of its highlight colour, wrapped by libass inside the side margins.

libass does not fall back from the preset's font to another font of ``fonts_dir`` for a
character it lacks: it draws a box. Runs of Chinese, Japanese and Korean characters (which the
bundled Noto Sans does not cover; it covers Latin, Greek and Cyrillic) are therefore switched to
the bundled ``Droid Sans Fallback`` (Apache-2.0, 3.4 MB) in the ASS text itself.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

from pipeline.config import CaptionPreset
from pipeline.transcript import SENTENCE_END, compose_srt, cues, join_words

FALLBACK_FONT = "Droid Sans Fallback"   # assets/fonts/DroidSansFallback.ttf: CJK ideographs, kana, Hangul
_FALLBACK_SCRIPT = re.compile("[\u1100-\u11ff\u2e80-\u9fff\ua960-\ua97f\uac00-\ud7ff\uf900-\ufaff"
                              "\ufe30-\ufe4f\uff00-\uffef]+")
MAX_GAP_IN_LINE = 1.0   # a longer pause starts a new caption line instead of freezing the old one
LINE_HOLD = 0.3         # keep a finished line up this long (unless the next line starts sooner)
SAFE_WIDTH = 0.92       # share of the space between the side margins a line may fill (font metrics vary)
AVERAGE_ADVANCE = 0.62  # width of a character / font size when the font file cannot be measured
TITLE_SIZE = 1.1        # hook title font size / caption font size
TITLE_TOP = {True: 0.1, False: 0.06}   # top margin / height, portrait (clear of the apps' top bar) or not


def clip_words(words: list[dict], clip_start: float, clip_end: float) -> list[dict]:
    """The words overlapping the clip, stripped, with clip-relative clamped times."""
    length = clip_end - clip_start
    result = []
    for w in words:
        text = w["word"].strip()
        if not text or w["start"] >= clip_end or w["end"] <= clip_start:
            continue
        start = min(max(0.0, w["start"] - clip_start), length)
        end = min(max(start, w["end"] - clip_start), length)
        result.append({**w, "word": text, "start": start, "end": end})
    return result


def build_srt(words: list[dict], clip_start: float, clip_end: float, max_chars: int = 42) -> str:
    """SRT cues for the clip (<= ``max_chars`` per line, 2 lines, ~7 s per cue)."""
    return compose_srt(cues(clip_words(words, clip_start, clip_end), max_chars))


def build_ass(words: list[dict], clip_start: float, clip_end: float, width: int, height: int,
              preset: CaptionPreset, fonts_dir: Path | None = None, *, title: str = "",
              title_seconds: float = 0.0) -> str:
    """An ASS script sized for a ``width`` x ``height`` frame with word-by-word highlighting
    (and ``title`` as a banner over the first ``title_seconds``, when both are set)."""
    length = clip_end - clip_start
    size = font_size(preset, height)
    usable = (width - 2 * margins(preset, width, height)[0]) * SAFE_WIDTH
    measure = _measurer(fonts_dir, preset.font)
    lines = caption_lines(words, clip_start, clip_end, width, height, preset, fonts_dir)
    highlight = ass_color(preset.highlight_color)
    pop = round(preset.pop * 100)
    events = []
    for n, line in enumerate(lines):
        next_start = lines[n + 1][0]["start"] if n + 1 < len(lines) else length
        # A single word too wide for the frame is drawn smaller rather than cut or split.
        line_width = measure(join_words([w["word"] for w in line])) * size * preset.pop
        prefix = f"{{\\fs{max(1, int(size * usable / line_width))}}}" if line_width > usable else ""
        for i, word in enumerate(line):
            # Each word's event lasts until the next word starts so the line never blinks off.
            end = line[i + 1]["start"] if i + 1 < len(line) else min(word["end"] + LINE_HOLD, next_start)
            end = min(end, length)
            if end <= word["start"]:
                continue
            text = join_words([w["word"] for w in line], [
                f"{{\\1c{highlight}\\fscx{pop}\\fscy{pop}}}{_shown(w['word'], preset.font)}{{\\r}}{prefix}"
                if j == i else _shown(w["word"], preset.font) for j, w in enumerate(line)])
            events.append(f"Dialogue: 0,{_ass_time(word['start'])},{_ass_time(end)},Default,,0,0,0,,{prefix}{text}")
    header = _header(width, height, preset)
    title = " ".join(title.split())
    if title and title_seconds > 0:
        header = header.replace("\n\n[Events]", "\n" + _title_style(width, height, preset) + "\n\n[Events]")
        events.insert(0, f"Dialogue: 1,{_ass_time(0.0)},{_ass_time(min(title_seconds, length))},Title,,0,0,0,,"
                         f"{_escape(title.upper() if preset.uppercase else title)}")
    return header + "\n".join(events) + ("\n" if events else "")


def _title_style(width: int, height: int, preset: CaptionPreset) -> str:
    """Top-centred (alignment 8): the outline colour on a box of the highlight colour (BorderStyle 3),
    so it reads like the spoken word, inverted."""
    size = round(font_size(preset, height) * TITLE_SIZE)
    side = round(preset.margin_side * width)
    top = round(TITLE_TOP[height > width] * height)
    pad = max(2, round(size * 0.25))
    return (f"Style: Title,{preset.font},{size},{_style_color(preset.outline_color)},{_style_color(preset.outline_color)},"
            f"{_style_color(preset.highlight_color)},&H00000000,-1,0,0,0,100,100,0,0,3,{pad},0,8,{side},{side},{top},1")


def caption_lines(words: list[dict], clip_start: float, clip_end: float, width: int, height: int,
                  preset: CaptionPreset, fonts_dir: Path | None = None) -> list[list[dict]]:
    """The clip's words (uppercased if the preset says so) grouped into the lines shown."""
    size = font_size(preset, height)
    usable = (width - 2 * margins(preset, width, height)[0]) * SAFE_WIDTH
    measure = _measurer(fonts_dir, preset.font)
    shown = [dict(w, word=w["word"].upper() if preset.uppercase else w["word"])
             for w in clip_words(words, clip_start, clip_end)]
    return group_lines(shown, preset.words_per_line, lambda text: measure(text) * size * preset.pop, usable)


def group_lines(words: list[dict], per_line: int, width_of, max_width: float) -> list[list[dict]]:
    """Split words into caption lines: at most ``per_line`` words and ``max_width`` wide, a new
    line after a sentence end or a long pause. Words are never split."""
    lines: list[list[dict]] = []
    for word in words:
        line = lines[-1] if lines else None
        if (line is None or len(line) >= per_line or line[-1]["word"].endswith(SENTENCE_END)
                or word["start"] - line[-1]["end"] > MAX_GAP_IN_LINE
                or width_of(join_words([w["word"] for w in [*line, word]])) > max_width):
            lines.append([word])
        else:
            line.append(word)
    return lines


def font_size(preset: CaptionPreset, height: int) -> int:
    return max(8, round(preset.size * height))


def margins(preset: CaptionPreset, width: int, height: int) -> tuple[int, int]:
    """(side, bottom) margins in pixels; portrait frames keep captions above the apps' UI band."""
    bottom = preset.margin_portrait if height > width else preset.margin_landscape
    return round(preset.margin_side * width), round(bottom * height)


def ass_color(hex_color: str, opacity: float = 1.0) -> str:
    """'#RRGGBB' -> ASS inline colour '&HBBGGRR&' (with an alpha byte when not opaque)."""
    rr, gg, bb = hex_color[1:3], hex_color[3:5], hex_color[5:7]
    alpha = "" if opacity >= 1.0 else f"{round(255 * (1 - opacity)):02X}"
    return f"&H{alpha}{bb}{gg}{rr}&".upper()


def _style_color(hex_color: str, opacity: float = 1.0) -> str:
    """'#RRGGBB' -> ASS style colour '&HAABBGGRR'."""
    rr, gg, bb = hex_color[1:3], hex_color[3:5], hex_color[5:7]
    return f"&H{round(255 * (1 - opacity)):02X}{bb}{gg}{rr}".upper()


def _shown(word: str, font: str) -> str:
    """A word as ASS text: escaped, its CJK characters drawn with the fallback font."""
    return _FALLBACK_SCRIPT.sub(lambda m: f"{{\\fn{FALLBACK_FONT}}}{m.group(0)}{{\\fn{font}}}", _escape(word))


@functools.cache
def _measurer(fonts_dir: Path | None, family: str):
    """text -> width in units of the ASS font size, CJK runs measured with the fallback font."""
    main, fallback = _font_measurer(fonts_dir, family), _font_measurer(fonts_dir, FALLBACK_FONT)
    return lambda text: (main(_FALLBACK_SCRIPT.sub("", text))
                         + sum(fallback(run) for run in _FALLBACK_SCRIPT.findall(text)))


@functools.cache
def _font_measurer(fonts_dir: Path | None, family: str):
    """text -> width in units of the ASS font size, using the font file libass will use."""
    font = _find_font(fonts_dir, family) if fonts_dir else None
    if font is None:
        return lambda text: len(text) * AVERAGE_ADVANCE
    ascent, descent = font.getmetrics()
    # libass sizes a font so that ascent + descent equals the requested size.
    return lambda text: font.getlength(text) / (ascent + descent)


def _find_font(fonts_dir: Path, family: str):
    from PIL import ImageFont
    for path in sorted(Path(fonts_dir).glob("*")):
        if path.suffix.lower() not in (".ttf", ".otf"):
            continue
        try:
            font = ImageFont.truetype(str(path), 100)
        except OSError:
            continue
        if font.getname()[0] == family:
            return font
    return None


def _escape(text: str) -> str:
    # A backslash gets an invisible WORD JOINER after it so "\N", "\h", "\{" stay literal;
    # braces would open an override block, libass renders "\{" / "\}" as literal braces.
    return text.replace("\\", "\\\u2060").replace("{", "\\{").replace("}", "\\}")


def _ass_time(seconds: float) -> str:
    """H:MM:SS.cc, truncated to centiseconds so a clamped end never passes the clip end."""
    cs = max(0, round(seconds * 1000)) // 10
    return f"{cs // 360000}:{cs // 6000 % 60:02d}:{cs // 100 % 60:02d}.{cs % 100:02d}"


def _header(width: int, height: int, preset: CaptionPreset) -> str:
    size = font_size(preset, height)
    side, bottom = margins(preset, width, height)
    outline = round(size * preset.outline, 1)
    shadow = round(size * preset.shadow, 1)
    if preset.box:   # BorderStyle 3: an opaque box in OutlineColour, padded by the outline width
        border, outline_colour = 3, _style_color(preset.box_color, preset.box_opacity)
    else:
        border, outline_colour = 1, _style_color(preset.outline_color)
    return (
        "[Script Info]\n"
        "ScriptType: v4.00+\n"
        f"PlayResX: {width}\n"
        f"PlayResY: {height}\n"
        "WrapStyle: 0\n"
        "ScaledBorderAndShadow: yes\n"
        "\n"
        "[V4+ Styles]\n"
        "Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, "
        "Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, "
        "Shadow, Alignment, MarginL, MarginR, MarginV, Encoding\n"
        f"Style: Default,{preset.font},{size},{_style_color(preset.text_color)},{_style_color(preset.text_color)},"
        f"{outline_colour},&H80000000,-1,0,0,0,100,100,0,0,{border},{outline},{shadow},2,{side},{side},{bottom},1\n"
        "\n"
        "[Events]\n"
        "Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n"
    )
