"""The transcript schema and its export formats (json, srt, vtt, txt).

A transcript is ``{"language", "duration", "engine", "model", "segments": [{"start", "end",
"text", "words": [{"word", "start", "end", "probability"}]}]}`` — the same for every engine.
Subtitle cues are re-flowed from word timings so lines stay readable (<= 42 characters,
2 lines, ~7 s), instead of copying Whisper's segments which can run long.
"""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.storage import write_text_atomic

MAX_LINE_CHARS = 42
MAX_LINES = 2
MAX_CUE_SECONDS = 7.0
FORMATS = ("json", "srt", "vtt", "txt")


def all_words(transcript: dict) -> list[dict]:
    return [w for seg in transcript.get("segments", []) for w in seg.get("words", [])]


def plain_text(transcript: dict) -> str:
    return "\n".join(seg["text"].strip() for seg in transcript.get("segments", []) if seg["text"].strip())


def cues(words: list[dict], max_chars: int = MAX_LINE_CHARS, max_lines: int = MAX_LINES,
         max_seconds: float = MAX_CUE_SECONDS) -> list[tuple[float, float, list[str]]]:
    """Group words into subtitle cues of at most ``max_lines`` lines of ``max_chars``.

    A cue also closes after a sentence end or when it would exceed ``max_seconds``.
    Returns (start, end, lines) triples; a word is never split across lines.
    """
    result: list[tuple[float, float, list[str]]] = []
    lines: list[str] = []
    start = end = 0.0
    for word in words:
        text = word["word"].strip()
        if not text:
            continue
        if lines and (word["end"] - start > max_seconds):
            result.append((start, end, lines))
            lines = []
        if not lines:
            lines, start = [text], word["start"]
        elif len(lines[-1]) + 1 + len(text) <= max_chars:
            lines[-1] = f"{lines[-1]} {text}"
        elif len(lines) < max_lines:
            lines.append(text)
        else:
            result.append((start, end, lines))
            lines, start = [text], word["start"]
        end = word["end"]
        if text[-1] in ".?!":
            result.append((start, end, lines))
            lines = []
    if lines:
        result.append((start, end, lines))
    return result


def timecode(seconds: float, sep: str = ",") -> str:
    millis = max(0, round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{sep}{millis:03d}"


def to_srt(transcript: dict) -> str:
    blocks = [f"{i}\n{timecode(s)} --> {timecode(e)}\n" + "\n".join(lines)
              for i, (s, e, lines) in enumerate(cues(all_words(transcript)), start=1)]
    return "\n\n".join(blocks) + ("\n" if blocks else "")


def to_vtt(transcript: dict) -> str:
    blocks = [f"{timecode(s, '.')} --> {timecode(e, '.')}\n" + "\n".join(lines)
              for s, e, lines in cues(all_words(transcript))]
    return "WEBVTT\n\n" + "\n\n".join(blocks) + ("\n" if blocks else "")


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


def write_all(transcript: dict, paths: dict[str, Path]) -> None:
    """Write every format to ``paths`` (format -> file); json last, since it is what later stages read."""
    for fmt in ("srt", "vtt", "txt", "json"):
        write_text_atomic(paths[fmt], render(transcript, fmt))


def load(path: Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))
