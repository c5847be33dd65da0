"""Shared fixtures: real settings on a temp data dir, real generated media, one real transcript."""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))

import mediagen  # noqa: E402

from pipeline.config import load_settings  # noqa: E402


@pytest.fixture
def settings(tmp_path, monkeypatch):
    monkeypatch.setenv("CLIPDESK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("CLIPDESK_CONFIG", raising=False)
    return load_settings()


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def speech_video(media_dir):
    """~40 s 640x360 test pattern with the committed speech sample."""
    return mediagen.speech_video(media_dir / "speech.mp4")


@pytest.fixture(scope="session")
def speech_transcript():
    """The speech sample through the real bundled model, once per test session."""
    from pipeline.config import TranscribeSettings
    from pipeline.media import probe
    from pipeline.stages.transcribe import transcribe_file
    return transcribe_file(mediagen.SPEECH, TranscribeSettings(), probe(mediagen.SPEECH).duration)


@pytest.fixture(scope="session")
def models_cache(tmp_path_factory):
    """A models folder holding the openai-whisper checkpoint converted from the bundled tiny.en, once."""
    from pipeline.stages import whisper_checkpoint
    from pipeline.stages.transcribe import model_location
    cache = tmp_path_factory.mktemp("models")
    whisper_checkpoint.cached_checkpoint(Path(model_location("tiny.en")), cache / "openai-whisper", "tiny.en")
    return cache


def word_error_rate(reference: str, hypothesis: str) -> float:
    import jiwer
    normalise = jiwer.Compose([jiwer.ToLowerCase(), jiwer.RemovePunctuation(), jiwer.RemoveMultipleSpaces(),
                               jiwer.Strip(), jiwer.ReduceToListOfListOfWords()])
    return jiwer.wer(" ".join(reference.split()), " ".join(hypothesis.split()),
                     reference_transform=normalise, hypothesis_transform=normalise)
