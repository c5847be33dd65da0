"""Caption files for one clip: ASS for burned-in word-highlight captions, SRT for sidecars.

Pure Python, no ffmpeg. ``words`` carry episode-absolute times (Whisper style: leading
space, punctuation attached); both builders keep only the words overlapping the clip and
shift them to clip-relative times clamped to ``[0, clip_end - clip_start]``.
"""

from __future__ import annotations

from pipeline.config import RenderSettings
from pipeline.transcript import cues, timecode

SENTENCE_END = (".", "?", "!", "…")
MAX_GAP_IN_LINE = 1.0   # a longer pause starts a new caption line instead of freezing the old one
LINE_HOLD = 0.3         # keep a finished line up this long (unless the next line starts sooner)
WHITE = "&HFFFFFF&"


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
    blocks = [f"{i}\n{timecode(s)} --> {timecode(e)}\n" + "\n".join(lines)
              for i, (s, e, lines) in enumerate(cues(clip_words(words, clip_start, clip_end), max_chars),
                                                start=1)]
    return "\n\n".join(blocks) + ("\n" if blocks else "")


def build_ass(words: list[dict], clip_start: float, clip_end: float, width: int, height: int,
              settings: RenderSettings) -> str:
    """An ASS script sized for a ``width`` x ``height`` frame with word-by-word highlighting."""
    length = clip_end - clip_start
    highlight = ass_color(settings.caption_highlight_color)
    lines = _group(clip_words(words, clip_start, clip_end), settings.caption_words_per_line)
    events = []
    for n, line in enumerate(lines):
        next_start = lines[n + 1][0]["start"] if n + 1 < len(lines) else length
        for i, word in enumerate(line):
            # Each word's event lasts until the next word starts so the line never blinks off.
            if i + 1 < len(line):
                end = line[i + 1]["start"]
            else:
                end = min(word["end"] + LINE_HOLD, next_start, length)
            text = " ".join(
                f"{{\\1c{highlight}}}{_escape(w['word'])}{{\\1c{WHITE}}}" if j == i else _escape(w["word"])
                for j, w in enumerate(line))
            events.append(f"Dialogue: 0,{_ass_time(word['start'])},{_ass_time(end)},Default,,0,0,0,,{text}")
    return _header(width, height, settings) + "\n".join(events) + ("\n" if events else "")


def ass_color(hex_color: str) -> str:
    """'#RRGGBB' -> ASS inline colour '&HBBGGRR&'."""
    rr, gg, bb = hex_color[1:3], hex_color[3:5], hex_color[5:7]
    return f"&H{bb}{gg}{rr}&".upper()


def _group(words: list[dict], per_line: int) -> list[list[dict]]:
    """Split words into caption lines: at most ``per_line`` words, new line after a
    sentence end or a long pause."""
    lines: list[list[dict]] = []
    for word in words:
        line = lines[-1] if lines else None
        if (line is None or len(line) >= per_line or line[-1]["word"].endswith(SENTENCE_END)
                or word["start"] - line[-1]["end"] > MAX_GAP_IN_LINE):
            lines.append([word])
        else:
            line.append(word)
    return lines


def _escape(text: str) -> str:
    # A backslash gets an invisible WORD JOINER after it so "\N", "\h", "\{" stay literal;
    # braces would open an override block, libass renders "\{" / "\}" as literal braces.
    return text.replace("\\", "\\\u2060").replace("{", "\\{").replace("}", "\\}")


def _ass_time(seconds: float) -> str:
    """H:MM:SS.cc, truncated to centiseconds so a clamped end never passes the clip end."""
    cs = max(0, round(seconds * 1000)) // 10
    return f"{cs // 360000}:{cs // 6000 % 60:02d}:{cs // 100 % 60:02d}.{cs % 100:02d}"


def _header(width: int, height: int, settings: RenderSettings) -> str:
    portrait = height > width
    # Portrait clips are watched in apps whose buttons and captions cover the bottom
    # fifth of the screen, so captions sit well above it.
    size = round(height * (0.044 if portrait else 0.05))
    margin_v = round(height * (0.23 if portrait else 0.07))
    margin_h = round(width * (0.07 if portrait else 0.05))
    outline = max(2, round(size * 0.09))
    shadow = max(1, round(size * 0.03))
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
        f"Style: Default,{settings.caption_font},{size},&H00FFFFFF,&H00FFFFFF,&H00000000,&H80000000,"
        f"-1,0,0,0,100,100,0,0,1,{outline},{shadow},2,{margin_h},{margin_h},{margin_v},1\n"
        "\n"
        "[Events]\n"
        "Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n"
    )
