import re

from pipeline import transcript

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
