import html
import random
import re
import string

import pytest
import srt
import webvtt

from pipeline import storage, transcript

WORDS = [{"word": f" word{i:02d}" + ("." if i % 9 == 8 else ""), "start": i * 0.4, "end": i * 0.4 + 0.35,
          "probability": 0.9} for i in range(60)]
DOC = {"language": "en", "duration": 24.0, "segments": [{"start": 0, "end": 24, "text": "x", "words": WORDS}]}

CUE = re.compile(r"(\d\d):(\d\d):(\d\d)[,.](\d\d\d) --> (\d\d):(\d\d):(\d\d)[,.](\d\d\d)")


def parse(text: str) -> list[tuple[float, float, list[str]]]:
    """Parse SRT/VTT cues back: (start, end, lines)."""
    cues = []
    for block in re.split(r"\n\s*\n", text.strip()):
        lines = block.splitlines()
        for i, line in enumerate(lines):
            m = CUE.match(line)
            if m:
                g = [int(x) for x in m.groups()]
                start = g[0] * 3600 + g[1] * 60 + g[2] + g[3] / 1000
                end = g[4] * 3600 + g[5] * 60 + g[6] + g[7] / 1000
                cues.append((start, end, lines[i + 1:]))
    return cues


def test_srt_cues_are_readable_and_cover_every_word_in_order():
    text = transcript.to_srt(DOC)
    cues = parse(text)
    assert text.splitlines()[0] == "1"
    assert cues, text
    for start, end, lines in cues:
        assert end > start
        assert end - start <= transcript.MAX_CUE_SECONDS + 0.4
        assert 1 <= len(lines) <= 2
        assert all(len(line) <= 42 for line in lines)
    spoken = " ".join(" ".join(lines) for _, _, lines in cues).split()
    assert spoken == [w["word"].strip() for w in WORDS]
    assert [c[0] for c in cues] == sorted(c[0] for c in cues)


def test_vtt_has_header_and_same_cues_as_srt():
    vtt = transcript.to_vtt(DOC)
    assert vtt.startswith("WEBVTT\n\n")
    assert parse(vtt) == parse(transcript.to_srt(DOC))


def test_markup_in_words_is_escaped_in_vtt_and_shown_as_said():
    said = ["I", "<3", "R&D", "-->", "<b>really</b>."]
    words = [{"word": f" {w}", "start": i * 0.5, "end": i * 0.5 + 0.4, "probability": 0.9} for i, w in enumerate(said)]
    doc = {"language": "en", "duration": 3.0, "segments": [{"start": 0, "end": 3, "text": "x", "words": words}]}
    [caption] = webvtt.from_string(transcript.to_vtt(doc), strict=True).captions
    assert html.unescape(caption.text).split() == said          # no tag swallowed, no cue broken by "-->"
    [subtitle] = srt.parse(transcript.to_srt(doc), ignore_errors=False)
    assert subtitle.content.split() == said                     # SRT has no escapes: the text as said


def test_cues_close_at_sentence_ends():
    for _, _, lines in transcript.cues(WORDS):
        joined = " ".join(lines)
        assert "." not in joined[:-1], joined


def test_timecode_formats():
    assert transcript.timecode(3725.5) == "01:02:05,500"
    assert transcript.timecode(0.0004, ".") == "00:00:00.000"


def test_empty_transcript_exports_are_valid():
    empty = {"language": "en", "duration": 3.0, "segments": []}
    assert transcript.to_srt(empty) == ""
    assert transcript.to_vtt(empty) == "WEBVTT\n\n"
    assert transcript.render(empty, "txt") == "\n"


def assert_cues_within_limits(cues):
    for start, end, lines in cues:
        assert 0 <= start <= end, (start, end, lines)
        assert end - start <= transcript.MAX_CUE_SECONDS + 1e-6, (start, end, lines)
        assert 1 <= len(lines) <= transcript.MAX_LINES, lines
        assert all(0 < len(line) <= transcript.MAX_LINE_CHARS for line in lines), lines


def test_a_word_longer_than_a_line_is_wrapped_inside_the_limits():
    url = "https://example.com/" + "a-very-long-path-segment/" * 4   # ~120 characters, no spaces
    words = [{"word": " See", "start": 0.0, "end": 0.3, "probability": 0.9},
             {"word": " " + url, "start": 0.3, "end": 2.0, "probability": 0.9},
             {"word": " now.", "start": 2.0, "end": 2.4, "probability": 0.9}]
    cues = transcript.cues(words)
    assert_cues_within_limits(cues)
    shown = "".join("".join(lines) for _, _, lines in cues)
    assert url in shown   # every character is still there, in order


def test_a_word_held_longer_than_seven_seconds_is_shown_for_seven_seconds_at_most():
    words = [{"word": " Hmmmm", "start": 1.0, "end": 13.0, "probability": 0.5},
             {"word": " yes.", "start": 13.0, "end": 13.5, "probability": 0.9}]
    cues = transcript.cues(words)
    assert_cues_within_limits(cues)
    assert cues[0][0] == 1.0 and cues[0][2] == ["Hmmmm"]
    assert cues[-1][2][-1] == "yes."


def test_random_word_streams_always_give_cues_within_the_limits():
    rng = random.Random(7)
    words, t = [], 0.0
    for _ in range(2000):
        length = rng.choice([1, 3, 5, 8, 12, 30, 45, 90])
        held = rng.choice([0.0, 0.1, 0.4, 2.0, 8.0, 15.0])
        text = "".join(rng.choice(string.ascii_lowercase) for _ in range(length)) + rng.choice(["", "", ".", "?"])
        words.append({"word": " " + text, "start": t, "end": t + held, "probability": 0.9})
        t += held + rng.choice([0.0, 0.05, 1.0])
    cues = transcript.cues(words)
    assert_cues_within_limits(cues)
    assert [c[0] for c in cues] == sorted(c[0] for c in cues)
    shown = "".join("".join(lines) for _, _, lines in cues).replace(" ", "")
    assert shown == "".join(w["word"].strip() for w in words)   # nothing lost, nothing reordered


def test_write_all_keeps_the_old_files_when_a_new_format_cannot_be_written(tmp_path):
    paths = {fmt: tmp_path / f"transcript.{fmt}" for fmt in transcript.FORMATS}
    transcript.write_all(DOC, paths)
    before = {fmt: path.read_text(encoding="utf-8") for fmt, path in paths.items()}
    storage.temp_path(paths["txt"]).mkdir()   # the txt temp name is taken: writing it fails
    newer = dict(DOC, segments=[dict(DOC["segments"][0], words=WORDS[:5], text="changed")])
    with pytest.raises(OSError):
        transcript.write_all(newer, paths)
    assert {fmt: path.read_text(encoding="utf-8") for fmt, path in paths.items()} == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == sorted(p.name for p in paths.values())
    storage.temp_path(paths["txt"]).rmdir()
    transcript.write_all(newer, paths)
    assert transcript.load(paths["json"])["segments"][0]["text"] == "changed"
    assert "word04" in paths["srt"].read_text(encoding="utf-8")
    assert "word05" not in paths["vtt"].read_text(encoding="utf-8")
