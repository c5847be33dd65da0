"""Bad input through the real queue: every case ends in its documented state with a specific
message, the worker keeps running, and other jobs are untouched (README: "What happens to bad input")."""

import io
import json
import os
import subprocess
import sys

import mediagen
import pytest
from conftest import ROOT
from workers import Consumer, use_config, wait_for_end

from pipeline import jobs
from pipeline.errors import BadInput
from pipeline.library import episodes

pytestmark = pytest.mark.timeout(400)

SHORT_CLIPS = ["--max-clips", "1", "--min-seconds", "1", "--max-seconds", "2"]


@pytest.fixture
def allowed(tmp_path, monkeypatch):
    """Settings that only take local files from tmp_path/media, with a consumer over them."""
    media = tmp_path / "media"
    media.mkdir()
    settings = use_config(tmp_path, monkeypatch, paths={"allowed_source_dirs": [str(media)]})
    consumer = Consumer(settings).start()
    yield settings, media, consumer
    consumer.stop()


@pytest.mark.slow
def test_each_bad_input_ends_in_its_documented_state_and_the_worker_keeps_going(allowed, tmp_path):
    settings, media, consumer = allowed
    good = mediagen.tone_video(media / "good.mp4", 4)
    good_job = consumer.cli("enqueue", str(good), *SHORT_CLIPS)["job_id"]

    cases = {   # name -> (path, expected status, failing stage, words the message must contain)
        "text named .mp4": (media / "notes.mp4", "failed", "ingest", ["notes.mp4", "could not be read"]),
        "truncated mp4": (mediagen.truncated_copy(good, media / "cut.mp4"), "failed", "ingest",
                          ["cut.mp4", "incomplete"]),
        "zero bytes": (media / "empty.mp4", "failed", "ingest", ["empty.mp4", "empty (0 bytes)"]),
        "audio only": (mediagen.tone_audio(media / "tone.mp3", 3), "succeeded", None, []),
        "video without audio": (mediagen.silent_video(media / "mute.mp4", 3), "failed", "extract_audio",
                                ["no audio track"]),
        "3-second file": (mediagen.tone_video(media / "three.mp4", 3), "succeeded", None, []),
        "10 minutes of silence": (mediagen.silence_audio(media / "silence.m4a", 600), "succeeded", None, []),
        "unsupported codec": (mediagen.unknown_codec_mkv(media / "odd.mkv"), "failed", "ingest",
                              ["odd.mkv", "codec", "cannot decode"]),
        "huge declared duration": (mediagen.huge_declared_duration_mkv(media / "liar.mkv"), "succeeded", None, []),
    }
    (media / "notes.mp4").write_text("meeting notes, not a video\n", encoding="utf-8")
    (media / "empty.mp4").write_bytes(b"")
    latin1 = os.fsencode(media) + b"/caf\xe9.mp4"   # not valid UTF-8
    with open(latin1, "wb") as out:
        out.write(good.read_bytes())

    job_ids = {name: consumer.cli("enqueue", str(path), *SHORT_CLIPS)["job_id"]
               for name, (path, *_rest) in cases.items()}
    latin1_job = _enqueue_bytes_path(consumer, latin1)

    for name, (_path, status, stage, words) in cases.items():
        job = wait_for_end(settings, job_ids[name])
        assert job["status"] == status, f"{name}: {job}"
        if status == "failed":
            assert job["error_kind"] == "bad_input" and job["stage"] == stage, f"{name}: {job}"
            assert job["attempts"] == 1, f"{name}: bad input is not retried"
            for word in words:
                assert word in job["error"], f"{name}: {job['error']!r} lacks {word!r}"

    summary = episodes.summary(settings, jobs.get(settings, job_ids["huge declared duration"])["episode_id"])
    assert summary["duration"] < 5, "the decoded length replaces the 10 hours the header claims"
    silent = episodes.load_transcript(settings, jobs.get(settings, job_ids["10 minutes of silence"])["episode_id"])
    assert silent["segments"] == [] or all(not s["words"] for s in silent["segments"])
    for name in ("3-second file", "10 minutes of silence"):
        assert episodes.summary(settings, jobs.get(settings, job_ids[name])["episode_id"])["clips"] == []

    job = wait_for_end(settings, latin1_job)
    assert job["status"] == "succeeded", job
    source = episodes.summary(settings, job["episode_id"])["source"]
    assert source.encode("utf-8") and "caf" in source   # stored as valid UTF-8

    job = wait_for_end(settings, good_job)
    assert job["status"] == "succeeded" and job["attempts"] == 1, "the good job is untouched by its neighbours"
    assert consumer.process.poll() is None, "the worker is still running"


def _enqueue_bytes_path(consumer, path: bytes) -> int:
    out = subprocess.run([sys.executable, "-m", "pipeline", "enqueue", path, "--json", *SHORT_CLIPS], cwd=ROOT,
                         env=consumer.env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)["job_id"]


def test_folders_and_paths_outside_the_allowed_folders_are_refused_before_queueing(allowed, tmp_path):
    """The dashboard and the HTTP API call jobs.create with what a remote user typed; the CLI's user
    already has a shell, so it may name any file it can read (tests/test_security.py has the rest)."""
    settings, media, consumer = allowed
    outside = mediagen.tone_video(tmp_path / "elsewhere.mp4", 2)
    assert "is a folder" in consumer.cli("enqueue", str(media), expect_ok=False)["error"]
    link = media / "sneaky.mp4"
    link.symlink_to(outside)   # a link inside the allowed folder that points outside it
    for source in (outside, link):
        with pytest.raises(BadInput, match="outside the folders"):
            jobs.create(settings, str(source))
    assert jobs.list_jobs(settings) == []


def test_upload_names_cannot_escape_the_uploads_folder(settings):
    for name in ("../../etc/passwd.mp4", "..\\..\\boot.ini.mp4", "/abs/path.mp4", "", "\x00evil.mp4"):
        path = jobs.save_upload(settings, name, io.BytesIO(b"data"))
        uploads = (settings.data_dir / "uploads").resolve()
        assert path.resolve().is_relative_to(uploads) and path.parent.parent.resolve() == uploads, name


def test_invalid_job_options_are_refused_with_the_option_named(settings, tmp_path):
    video = mediagen.tone_video(tmp_path / "ok.mp4", 1)
    for options, words in (({"engine": "whisperx"}, "engine"), ({"max_clips": 0}, "max_clips"),
                           ({"aspects": ["4x3"]}, "aspects"), ({"reframe": "zoom"}, "reframe"),
                           ({"min_clip_seconds": 50, "max_clip_seconds": 10}, "shortest clip"),
                           ({"colour": "red"}, "Unknown job option")):
        with pytest.raises(Exception) as error:
            jobs.create(settings, str(video), options=options)
        assert words in str(error.value), options
    assert jobs.list_jobs(settings) == []


def test_uploads_over_the_size_limit_are_refused_and_leave_nothing_behind(settings):
    import dataclasses
    small = dataclasses.replace(settings, dashboard=dataclasses.replace(settings.dashboard, max_upload_mb=1))
    with pytest.raises(Exception, match="larger than the upload limit of 1 MB"):
        jobs.save_upload(small, "big.mp4", io.BytesIO(b"\0" * (2 << 20)))
    assert not any((settings.data_dir / "uploads").rglob("*.mp4"))
