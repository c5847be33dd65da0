"""Transcript exports, parsed back with independent SRT/WebVTT parsers."""

import json
import os
import subprocess
import sys

import mediagen
import pytest
import srt
import webvtt
from conftest import ROOT

from pipeline import jobs, storage, transcript
from pipeline.errors import BadInput
from pipeline.library import episodes

pytestmark = pytest.mark.model


@pytest.fixture
def episode(settings, tmp_path, speech_transcript):
    """An episode whose transcript is the speech sample's, as the transcribe stage writes it."""
    episode_id, _ = jobs.create(settings, str(mediagen.speech_audio(tmp_path / "talk.wav")), title="Shipping talk")
    transcript.write_all(speech_transcript, {fmt: storage.transcript_path(settings.data_dir, episode_id, fmt)
                                             for fmt in transcript.FORMATS})
    return episode_id


def words_of(doc: dict) -> list[str]:
    return [w["word"].strip() for s in doc["segments"] for w in s["words"] if w["word"].strip()]


def assert_readable(cues: list[tuple[float, float, list[str]]], doc: dict) -> None:
    starts = sorted(w["start"] for s in doc["segments"] for w in s["words"])
    previous_end = 0.0
    for start, end, lines in cues:
        assert start < end <= start + transcript.MAX_CUE_SECONDS + 0.001
        assert start >= previous_end - 0.001, "cues overlap"
        assert 1 <= len(lines) <= 2 and all(0 < len(line) <= 42 for line in lines), lines
        assert any(abs(start - s) < 0.0015 for s in starts), "a cue starts where no word starts"
        previous_end = end
    shown = [word for _, _, lines in cues for line in lines for word in line.split()]
    assert shown == words_of(doc)


def test_srt_export_parses_back_into_readable_cues_covering_every_word(settings, episode, speech_transcript):
    text = episodes.export(settings, episode, "srt")
    subtitles = list(srt.parse(text, ignore_errors=False))
    assert [s.index for s in subtitles] == list(range(1, len(subtitles) + 1))
    assert len(subtitles) >= 10   # ~40 s of speech in short cues, not a few long segments
    cues = [(s.start.total_seconds(), s.end.total_seconds(), s.content.split("\n")) for s in subtitles]
    assert_readable(cues, speech_transcript)
    assert srt.compose(subtitles, reindex=False) == text   # canonical SRT, as srt writes it


def test_vtt_export_parses_back_into_the_same_cues_as_srt(settings, episode, speech_transcript):
    text = episodes.export(settings, episode, "vtt")
    captions = webvtt.from_string(text, strict=True).captions
    cues = [(c.start_time.in_milliseconds() / 1000, c.end_time.in_milliseconds() / 1000, c.lines) for c in captions]
    srt_cues = [(s.start.total_seconds(), s.end.total_seconds(), s.content.split("\n"))
                for s in srt.parse(episodes.export(settings, episode, "srt"))]
    assert cues == srt_cues
    assert_readable(cues, speech_transcript)


def test_json_and_txt_exports_are_the_transcript_and_its_text(settings, episode, speech_transcript):
    assert json.loads(episodes.export(settings, episode, "json")) == speech_transcript
    txt = episodes.export(settings, episode, "txt")
    assert txt.splitlines() == [s["text"] for s in speech_transcript["segments"]]


def test_cli_export_writes_each_format_to_a_file(settings, episode, tmp_path):
    env = dict(os.environ, CLIPDESK_DATA_DIR=str(settings.data_dir))
    env.pop("CLIPDESK_CONFIG", None)
    for fmt in transcript.FORMATS:
        out = tmp_path / f"out.{fmt}"
        done = subprocess.run([sys.executable, "-m", "pipeline", "export", episode, "--format", fmt,
                               "-o", str(out), "--json"], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == {"episode_id": episode, "format": fmt, "path": str(out)}
        assert out.read_text(encoding="utf-8") == episodes.export(settings, episode, fmt)


def test_download_names_and_types_for_each_format(settings, episode):
    assert transcript.download_name("Shipping talk: part 1/2", "srt") == "Shipping talk part 1 2.srt"
    assert transcript.download_name("", "vtt", fallback="abc123") == "abc123.vtt"
    assert {fmt: transcript.MIME_TYPES[fmt] for fmt in transcript.FORMATS} == {
        "json": "application/json", "srt": "application/x-subrip", "vtt": "text/vtt", "txt": "text/plain"}


def test_exports_fail_with_a_sentence_for_unknown_episodes_formats_and_missing_transcripts(settings, episode,
                                                                                          tmp_path):
    with pytest.raises(BadInput, match="There is no episode nope"):
        episodes.export(settings, "nope", "srt")
    with pytest.raises(BadInput, match="Unknown format 'docx'"):
        episodes.export(settings, episode, "docx")
    fresh, _ = jobs.create(settings, str(mediagen.tone_audio(tmp_path / "tone.wav", 1)))
    with pytest.raises(BadInput, match="has no transcript yet"):
        episodes.export(settings, fresh, "vtt")
