"""The operator's vocabulary: made-up names heard right with it (both engines), casing, stop-lists, options."""

import json
import os
import subprocess
import sys
from pathlib import Path

import mediagen
import pytest
from conftest import ROOT

from pipeline import db, jobs, vocabulary
from pipeline.config import TranscribeSettings, load_settings
from pipeline.enrichment import keywords
from pipeline.errors import BadInput, ConfigError
from pipeline.jobs import options as job_options
from pipeline.jobs import runner
from pipeline.library import episodes, transcript_changes
from pipeline.stages import transcribe
from pipeline.stages.transcribe import transcribe_file

# Names no English model can know: without a hint they come back as other words.
NAMES = ["Zarvinka Plootmeyer", "Quorbex"]
NAME_WORDS = ["Zarvinka", "Plootmeyer", "Quorbex"]
SCRIPT = "Today I spoke with Zarvinka Plootmeyer about the Quorbex platform. Zarvinka said Quorbex ships next week."
ENGINES = {"faster-whisper": TranscribeSettings(),
           # greedy decoding keeps the PyTorch engine affordable in the suite (as in test_transcribe)
           "openai-whisper": TranscribeSettings(engine="openai-whisper", beam_size=1)}


@pytest.fixture(scope="module")
def names_speech(tmp_path_factory):
    return mediagen.spoken(tmp_path_factory.mktemp("vocab") / "names.wav", SCRIPT)


def stored_options(settings, job_id: int) -> dict:
    conn = db.connect(settings.app_db)
    try:
        return json.loads(db.get_job(conn, job_id)["options_json"])
    finally:
        conn.close()


def _text(doc: dict) -> str:
    return " ".join(s["text"] for s in doc["segments"])


@pytest.mark.model
@pytest.mark.parametrize("engine", ["faster-whisper", pytest.param("openai-whisper", marks=pytest.mark.slow)])
def test_made_up_names_are_wrong_without_the_vocabulary_and_right_with_it(engine, names_speech, models_cache):
    plain = transcribe_file(names_speech, ENGINES[engine], 0, cache=models_cache)
    hinted = transcribe_file(names_speech, transcribe.settings_for_job(ENGINES[engine], {"vocabulary": NAMES}), 0,
                             cache=models_cache)
    heard, hinted_text = _text(plain), _text(hinted)
    assert heard.strip() and not any(w.lower() in heard.lower() for w in NAME_WORDS), heard
    assert "vocabulary" not in plain
    for word in NAME_WORDS:   # spelled as given, in the text and in the timed words the captions use
        assert word in hinted_text, hinted_text
        assert any(word in w["word"] for s in hinted["segments"] for w in s["words"]), hinted_text
    assert hinted["vocabulary"] == NAMES and hinted["engine"] == engine
    # the rest of the sentence is still heard
    assert {"today", "spoke", "week"} <= set(hinted_text.lower().replace(".", " ").replace(",", " ").split())


@pytest.mark.model
def test_a_job_vocabulary_reaches_the_transcript_and_the_keywords(tmp_path, monkeypatch, names_speech):
    config = tmp_path / "pipeline.yaml"
    config.write_text("enrich:\n  min_clip_seconds: 600\n  max_clip_seconds: 1800\n"
                      "transcribe:\n  vocabulary: [Quorbex]\n", encoding="utf-8")
    monkeypatch.setenv("CLIPDESK_CONFIG", str(config))
    monkeypatch.setenv("CLIPDESK_DATA_DIR", str(tmp_path / "data"))
    settings = load_settings()
    episode_id, job_id = jobs.create(settings, str(names_speech), trusted_path=True,
                                     options={"vocabulary": "Zarvinka Plootmeyer"})
    assert stored_options(settings, job_id)["vocabulary"] == ["Zarvinka Plootmeyer"]
    assert runner.run_job(settings, job_id) == "succeeded", jobs.get(settings, job_id)["error"]
    summary = episodes.summary(settings, episode_id)
    doc = json.loads(Path(summary["transcript"]["json"]).read_text())
    assert doc["vocabulary"] == ["Quorbex", "Zarvinka Plootmeyer"]   # config first, then the job's
    assert all(word in _text(doc) for word in NAME_WORDS), _text(doc)
    assert "Quorbex" in summary["enrichment"]["keywords"], summary["enrichment"]["keywords"]


def test_casing_is_fixed_in_segment_text_and_words_without_touching_longer_words():
    doc = {"segments": [{"text": "quorbex met ZARVINKA at quorbexes, quorbex's day", "words": [
        {"word": " quorbex"}, {"word": " met"}, {"word": " ZARVINKA"}, {"word": " at"}, {"word": " quorbexes,"},
        {"word": " quorbex's"}, {"word": " day"}]}]}
    vocabulary.fix_casing(doc, ["Zarvinka Plootmeyer", "Quorbex", "GPT-4o"])
    segment = doc["segments"][0]
    assert segment["text"] == "Quorbex met Zarvinka at quorbexes, quorbex's day"
    assert [w["word"] for w in segment["words"]][:3] == [" Quorbex", " met", " Zarvinka"]
    assert segment["words"][4]["word"] == " quorbexes,"


def test_vocabulary_words_survive_the_keyword_stop_lists():
    texts = ["We moved the service to Go last year.", "Go made the service faster.",
             "The Go rewrite paid off.", "Nobody misses the old service."]
    assert "Go" not in keywords.extract(texts)
    with keywords.speaking("en", vocabulary.words(["Go"])):
        protected = keywords.extract(texts)
    assert "Go" in protected and "service" in protected


def test_parse_takes_lists_or_comma_separated_text_and_refuses_the_rest():
    assert vocabulary.parse("Ada Quist, Quorbex\nquorbex ;  GPT-4o ") == ["Ada Quist", "Quorbex", "GPT-4o"]
    assert vocabulary.parse(["  Ada   Quist ", "", "ada quist"]) == ["Ada Quist"]
    assert vocabulary.merge(["Quorbex"], ["quorbex", "Ada"]) == ["Quorbex", "Ada"]
    assert vocabulary.hint(["x" * 50] * 20).count("x") <= vocabulary.MAX_HINT_CHARS
    for bad, reason in [(42, "must be a list"), (["a" * 61], "longer than 60"),
                        ([f"w{i}" for i in range(101)], "at most 100")]:
        with pytest.raises(vocabulary.VocabularyError, match=reason):
            vocabulary.parse(bad)


def test_job_option_is_stored_as_a_list_and_bad_values_are_refused(settings):
    assert job_options.validate(settings, {"vocabulary": "Ada Quist, Quorbex"}) == {"vocabulary": ["Ada Quist",
                                                                                                   "Quorbex"]}
    assert job_options.validate(settings, {"vocabulary": " , "}) == {}
    with pytest.raises(BadInput, match="Option vocabulary must be a list"):
        job_options.validate(settings, {"vocabulary": {"a": 1}})
    merged = transcribe.settings_for_job(TranscribeSettings(vocabulary=("Quorbex",)), {"vocabulary": ["quorbex", "Ada"]})
    assert merged.vocabulary == ("Quorbex", "Ada")


def test_config_vocabulary_is_validated(tmp_path, monkeypatch):
    config = tmp_path / "pipeline.yaml"
    config.write_text(f"transcribe:\n  vocabulary: [{'x' * 61}]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="transcribe.vocabulary: must list at most 100"):
        load_settings(config)
    config.write_text("transcribe:\n  vocabulary: Quorbex\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="transcribe.vocabulary: must be a list of strings"):
        load_settings(config)


def test_cli_vocabulary_flags_become_one_job_option(settings, tmp_path):
    env = {**os.environ, "CLIPDESK_DATA_DIR": str(settings.data_dir)}
    source = mediagen.tone_audio(tmp_path / "tone.wav", 1)
    done = subprocess.run([sys.executable, "-m", "pipeline", "enqueue", str(source), "--json",
                           "--vocabulary", "Ada Quist, Quorbex", "--vocabulary", "GPT-4o"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    options = stored_options(settings, json.loads(done.stdout)["job_id"])
    assert options["vocabulary"] == ["Ada Quist", "Quorbex", "GPT-4o"]


@pytest.mark.model
@pytest.mark.slow
def test_reprocessing_with_a_vocabulary_shows_what_changed_on_the_review_page(tmp_path, monkeypatch, names_speech):
    from test_dashboard import REVIEW, open_page

    config = tmp_path / "pipeline.yaml"
    config.write_text("enrich:\n  min_clip_seconds: 600\n  max_clip_seconds: 1800\n", encoding="utf-8")
    monkeypatch.setenv("CLIPDESK_CONFIG", str(config))
    monkeypatch.setenv("CLIPDESK_DATA_DIR", str(tmp_path / "data"))
    settings = load_settings()
    episode_id, job_id = jobs.create(settings, str(names_speech), trusted_path=True)
    assert runner.run_job(settings, job_id) == "succeeded", jobs.get(settings, job_id)["error"]
    assert transcript_changes.for_episode(settings, episode_id) is None   # transcribed once: nothing to compare

    redo = jobs.rework(settings, episode_id, "transcribe", lambda job, priority, delay=0.0: f"task-{job}",
                       options={"vocabulary": NAMES})
    assert runner.run_job(settings, redo) == "succeeded", jobs.get(settings, redo)["error"]
    diff = transcript_changes.for_episode(settings, episode_id)
    assert diff["old"]["vocabulary"] is None and diff["new"]["vocabulary"] == NAMES
    new_words = " ".join(change["new"] for change in diff["changes"])
    old_words = " ".join(change["old"] for change in diff["changes"])
    assert all(word in new_words for word in NAME_WORDS) and not any(w in old_words for w in NAME_WORDS), diff
    assert 0 < diff["words_changed"] <= diff["words"]
    assert all(change["start"] >= 0 for change in diff["changes"])

    at = open_page(REVIEW, {"episode": episode_id}, tab="Transcript & chapters")
    buttons = [b.label for b in at.button if b.key and b.key.startswith("change_")]
    assert len(buttons) == len(diff["changes"]) and any("Quorbex" in label for label in buttons), buttons
    assert any(e.label.startswith(f"Changes since the previous transcript: {diff['words_changed']} of")
               for e in at.expander)
