"""The transcript schema and its export formats (json, srt, vtt, txt).

A transcript is ``{"language", "duration", "engine", "model", "segments": [{"start", "end",
"text", "words": [{"word", "start", "end", "probability"}]}]}`` — the same for every engine —
plus ``vocabulary`` (the terms it was made with) when the job had one.
Subtitle cues are re-flowed from word timings so lines stay readable (<= 42 columns, a CJK
character counting two, with no spaces put between words of scripts written without them;
2 lines, ~7 s), instead of copying Whisper's segments which can run long. ``compose_srt`` and
``compose_vtt`` are the one SubRip and the one WebVTT writer (the ``srt`` and ``webvtt-py``
libraries compose the text); clip sidecars use them too.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import srt
import webvtt

from pipeline.storage import publish, temp_path

MAX_LINE_CHARS = 42
MAX_LINES = 2
MAX_CUE_SECONDS = 7.0
FORMATS = ("json", "srt", "vtt", "txt")
MIME_TYPES = {"json": "application/json", "srt": "application/x-subrip", "vtt": "text/vtt", "txt": "text/plain"}


# Scripts written without spaces between words (Han, kana, Thai, Lao, Myanmar, Khmer, full-width forms).
_UNSPACED = re.compile("[\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef"
                       "\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff]")
SENTENCE_END = (".", "?", "!", "…", "。", "！", "？")


def join_words(words: list[str], shown: list[str] | None = None) -> str:
    """Words as one line of text: a space between two words, except where both sides are in a
    script written without spaces (Chinese, Japanese, Thai...), whose words Whisper also splits.
    ``shown``, when given, is what is written for each word (e.g. with caption markup around it);
    the spacing still follows the plain ``words``."""
    shown = words if shown is None else shown
    text = shown[0] if shown else ""
    for before, word, piece in zip(words, words[1:], shown[1:], strict=False):
        unspaced = before and word and _UNSPACED.match(before[-1]) and _UNSPACED.match(word[0])
        text += piece if unspaced else f" {piece}"
    return text


def display_width(text: str) -> int:
    """Columns ``text`` takes on screen: a wide (CJK) character counts as two."""
    import unicodedata
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def all_words(transcript: dict) -> list[dict]:
    return [w for seg in transcript.get("segments", []) for w in seg.get("words", [])]


def plain_text(transcript: dict) -> str:
    return "\n".join(seg["text"].strip() for seg in transcript.get("segments", []) if seg["text"].strip())


def cues(words: list[dict], max_chars: int = MAX_LINE_CHARS, max_lines: int = MAX_LINES,
         max_seconds: float = MAX_CUE_SECONDS) -> list[tuple[float, float, list[str]]]:
    """Group words into subtitle cues of at most ``max_lines`` lines of ``max_chars``.

    A cue also closes after a sentence end or when it would exceed ``max_seconds``.
    Returns (start, end, lines) triples. A word is never split across lines, except one
    longer than a whole line (a URL...), which is hard-wrapped; a single word held longer
    than ``max_seconds`` is shown for ``max_seconds`` only, so no cue breaks the limits.
    """
    result: list[tuple[float, float, list[str]]] = []
    lines: list[str] = []
    start = end = 0.0

    def close() -> None:
        nonlocal lines
        if lines:
            result.append((start, min(end, start + max_seconds), lines))
        lines = []

    for word in words:
        text = word["word"].strip()
        if not text:
            continue
        if lines and (word["end"] - start > max_seconds):
            close()
        pieces = [text[i:i + max_chars] for i in range(0, len(text), max_chars)]
        for piece in pieces:
            if not lines:
                lines, start = [piece], word["start"]
            elif display_width(join_words([lines[-1], piece])) <= max_chars and len(pieces) == 1:
                lines[-1] = join_words([lines[-1], piece])
            elif len(lines) < max_lines:
                lines.append(piece)
            else:
                close()
                lines, start = [piece], word["start"]
            end = max(word["end"], start)
        if text.endswith(SENTENCE_END):
            close()
    close()
    return result


Cue = tuple[float, float, list[str]]


def _delta(seconds: float) -> timedelta:
    """``seconds`` rounded to the millisecond both formats show (never negative)."""
    return timedelta(milliseconds=max(0, round(seconds * 1000)))


def timecode(seconds: float, sep: str = ",") -> str:
    """HH:MM:SS,mmm as SRT writes it; ``sep="."`` gives the WebVTT form of the same instant."""
    return srt.timedelta_to_srt_timestamp(_delta(seconds)).replace(",", sep)


def compose_srt(cue_list: list[Cue]) -> str:
    """SubRip text of ``(start, end, lines)`` cues, numbered from 1 in the order given.

    Every cue, the last included, ends with a blank line (as ``srt.compose`` and most tools
    write it). Cues are not re-sorted or dropped, so SRT and WebVTT always hold the same cues.
    """
    return srt.compose([srt.Subtitle(i, _delta(start), _delta(end), "\n".join(lines))
                        for i, (start, end, lines) in enumerate(cue_list, start=1)], reindex=False)


def compose_vtt(cue_list: list[Cue]) -> str:
    """WebVTT text of ``(start, end, lines)`` cues: the ``WEBVTT`` header, then the cues.

    Cue text is escaped (``&``, ``<``, ``>``) as WebVTT requires, so a word like ``<3`` or
    ``-->`` is shown as said instead of being read as a tag or a timing line.
    """
    captions = [webvtt.Caption(timecode(start, "."), timecode(end, "."), [_vtt_escape(line) for line in lines])
                for start, end, lines in cue_list]
    text = webvtt.WebVTT(captions=captions).content
    # With no cue, webvtt-py writes "WEBVTT\n"; the format wants two line ends after the magic.
    return text if captions else text + "\n"


def _vtt_escape(line: str) -> str:
    return line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_srt(transcript: dict) -> str:
    return compose_srt(cues(all_words(transcript)))


def to_vtt(transcript: dict) -> str:
    return compose_vtt(cues(all_words(transcript)))


def render(transcript: dict, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(transcript, ensure_ascii=False, indent=1)
    if fmt == "srt":
        return to_srt(transcript)
    if fmt == "vtt":
        return to_vtt(transcript)
    if fmt == "txt":
        return plain_text(transcript) + "\n"
    raise ValueError(f"unknown transcript format {fmt!r}; use one of {', '.join(FORMATS)}")


def download_name(title: str, fmt: str, fallback: str = "transcript") -> str:
    """A file name for a download of ``fmt``: the episode title made safe for any filesystem."""
    safe = re.sub(r"\s+", " ", re.sub(r"[^\w\- ]+", " ", title, flags=re.UNICODE)).strip()[:100]
    return f"{safe or fallback}.{fmt}"


def write_all(transcript: dict, paths: dict[str, Path], scratch: Path | None = None) -> None:
    """Write every format to ``paths`` (format -> file), replacing older files only at the end.

    All formats are rendered and written to temp files first (in ``scratch`` when given: a worker's
    scratch folder; else temp names beside the targets), then moved into place (json last, since it
    is what later stages read): a failure before that point leaves the previous transcript
    untouched, which is what re-transcription relies on.
    """
    texts = {fmt: render(transcript, fmt) for fmt in ("srt", "vtt", "txt", "json")}
    temps = {fmt: Path(scratch) / paths[fmt].name if scratch else temp_path(paths[fmt]) for fmt in texts}
    try:
        for fmt, text in texts.items():
            temps[fmt].parent.mkdir(parents=True, exist_ok=True)
            temps[fmt].write_text(text, encoding="utf-8")
    except BaseException:
        for tmp in temps.values():
            tmp.unlink(missing_ok=True)
        raise
    for fmt in texts:
        publish(temps[fmt], paths[fmt])


def load(path: Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))
