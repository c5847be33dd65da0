"""Shared fixtures: real settings on a temp data dir, real generated media, one real transcript."""

import dataclasses
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
    """The shipped defaults, except that tests act as the operator: they take media from temp folders
    anywhere and fetch from their own servers on 127.0.0.1 (tests/test_security.py uses the defaults)."""
    monkeypatch.setenv("CLIPDESK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("CLIPDESK_CONFIG", raising=False)
    return as_test_operator(load_settings())


def as_test_operator(settings):
    return dataclasses.replace(
        settings, paths=dataclasses.replace(settings.paths, allowed_source_dirs=("*",)),
        network=dataclasses.replace(settings.network, allowed_hosts=TEST_ALLOWED_HOSTS))


TEST_ALLOWED_HOSTS = ("127.0.0.1",)


def operator_config(folder: Path) -> Path:
    """The same two exceptions as a config file, for CLI subprocesses."""
    path = folder / "test-operator.yaml"
    path.write_text(f"paths:\n  allowed_source_dirs: ['*']\nnetwork:\n  allowed_hosts: {list(TEST_ALLOWED_HOSTS)}\n")
    return path


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


@pytest.fixture(scope="session")
def postgres_server():
    """A throwaway PostgreSQL server (tests/pg_server.py), started by the first test that asks for it."""
    from pg_server import PostgresNotInstalled, PostgresServer
    try:
        server = PostgresServer()
    except PostgresNotInstalled as error:
        pytest.skip(str(error))
    with server:
        yield server


@pytest.fixture
def postgres_url(postgres_server):
    """The URL of a fresh, empty database on that server, dropped after the test."""
    postgres_server.start()   # a no-op, unless an earlier test stopped or killed the server and failed
    url = postgres_server.create_database()
    yield url
    if postgres_server.running:
        postgres_server.drop_database(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def backend_settings(request, settings, monkeypatch):
    """``settings`` on each backend in turn: the SQLite files in the data dir, then a fresh database on the
    test PostgreSQL server (also in ``CLIPDESK_DATABASE_URL``, so consumers and CLI runs use it too)."""
    if request.param == "sqlite":
        monkeypatch.delenv("CLIPDESK_DATABASE_URL", raising=False)
        return dataclasses.replace(settings, database=dataclasses.replace(settings.database, url=""))
    url = request.getfixturevalue("postgres_url")
    monkeypatch.setenv("CLIPDESK_DATABASE_URL", url)
    return dataclasses.replace(settings, database=dataclasses.replace(settings.database, url=url))


def word_error_rate(reference: str, hypothesis: str) -> float:
    import jiwer
    normalise = jiwer.Compose([jiwer.ToLowerCase(), jiwer.RemovePunctuation(), jiwer.RemoveMultipleSpaces(),
                               jiwer.Strip(), jiwer.ReduceToListOfListOfWords()])
    return jiwer.wer(" ".join(reference.split()), " ".join(hypothesis.split()),
                     reference_transform=normalise, hypothesis_transform=normalise)
