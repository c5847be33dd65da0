"""The stage runner, in process, on real files (the queue tests run it under huey_consumer)."""

import os
import threading
import time
from pathlib import Path

import mediagen
import pytest

from pipeline import db, jobs, storage
from pipeline.errors import BadInput
from pipeline.jobs import runner
from pipeline.library import episodes
from pipeline.media import probe
from pipeline.media.render_graph import VARIANTS


def events_of(settings, job_id):
    return [(e["stage"], e["kind"]) for e in jobs.events(settings, job_id)]


def test_text_file_named_mp4_fails_at_ingest_with_a_clear_error(settings, tmp_path):
    fake = tmp_path / "episode.mp4"
    fake.write_text("this is not a video")
    _, job_id = jobs.create(settings, str(fake))
    assert runner.run_job(settings, job_id) == "failed"
    job = jobs.get(settings, job_id)
    assert job["stage"] == "ingest" and job["error_kind"] == "bad_input"
    assert "episode.mp4" in job["error"] and "not a media file" in job["error"]


def test_video_without_audio_fails_then_retry_skips_completed_ingest(settings, tmp_path):
    mute = mediagen.silent_video(tmp_path / "mute.mp4", 2)
    episode_id, job_id = jobs.create(settings, str(mute))
    assert runner.run_job(settings, job_id) == "failed"
    job = jobs.get(settings, job_id)
    assert job["stage"] == "extract_audio"
    assert job["error"] == "This file has no audio track, so there is nothing to transcribe."
    source = episodes.summary(settings, episode_id)["source_path"]
    assert probe(source).duration == pytest.approx(2, abs=0.1)   # ingest's output is kept

    jobs.retry(settings, job_id, dispatch=lambda job_id, priority: "local")
    assert jobs.get(settings, job_id)["priority"] == jobs.PRIORITY_RETRY
    assert runner.run_job(settings, job_id) == "failed"
    assert events_of(settings, job_id)[-3:] == [("ingest", "skipped"), ("extract_audio", "started"),
                                                ("extract_audio", "failed")]
    assert jobs.get(settings, job_id)["attempts"] == 2


def test_missing_path_and_folder_are_rejected_before_queueing(settings, tmp_path):
    with pytest.raises(BadInput, match="File not found"):
        jobs.create(settings, str(tmp_path / "nope.mp4"))
    with pytest.raises(BadInput, match="is a folder"):
        jobs.create(settings, str(tmp_path))
    with pytest.raises(BadInput, match="only http:// and https://"):
        jobs.create(settings, "ftp://example.com/a.mp3")


def test_cancel_requested_before_start_means_the_job_never_runs(settings, speech_video):
    episode_id, job_id = jobs.create(settings, str(speech_video))
    assert jobs.cancel(settings, job_id)["status"] == "cancelled"
    assert runner.run_job(settings, job_id) == "cancelled"
    assert episodes.summary(settings, episode_id)["source_path"] is None


@pytest.mark.slow
def test_cancel_while_rendering_stops_ffmpeg_and_leaves_no_partial_files(settings, speech_video):
    episode_id, job_id = jobs.create(settings, str(speech_video))
    worker = threading.Thread(target=runner.run_job, args=(settings, job_id))
    worker.start()
    deadline = time.monotonic() + 120
    while jobs.get(settings, job_id)["stage"] != "render" and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)   # let ffmpeg get going
    jobs.cancel(settings, job_id)
    cancelled_at = time.monotonic()
    worker.join(timeout=30)
    assert not worker.is_alive()
    assert time.monotonic() - cancelled_at < 5
    job = jobs.get(settings, job_id)
    assert (job["status"], job["stage"], job["error_kind"]) == ("cancelled", "render", "cancelled")
    clips_dir = storage.episode_dir(settings.data_dir, episode_id) / "clips"
    assert not [p for p in clips_dir.rglob("*.mp4")], "no partial or final renders are left behind"
    assert not _ffmpeg_children(), "ffmpeg was stopped"


def _ffmpeg_children() -> list[str]:
    me = str(os.getpid())
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
        except OSError:
            continue
        if fields.get("PPid", "").strip() == me and "ffmpeg" in fields.get("Name", ""):
            found.append(status.parent.name)
    return found


@pytest.mark.slow
def test_audio_only_episode_renders_all_variants_over_a_background(settings, tmp_path):
    audio = mediagen.speech_audio(tmp_path / "talk.m4a")
    options = {"max_clips": 1, "min_clip_seconds": 4, "max_clip_seconds": 7}
    episode_id, job_id = jobs.create(settings, str(audio), options=options)
    assert runner.run_job(settings, job_id) == "succeeded", jobs.get(settings, job_id)["error"]
    summary = episodes.summary(settings, episode_id)
    assert summary["media"]["has_video"] is False
    clip = summary["clips"][0]
    assert set(clip["renders"]) == set(VARIANTS)
    for variant, path in clip["renders"].items():
        info = probe(path)
        assert info.has_video and info.has_audio
        assert (info.width, info.height) == ((1080, 1920) if variant.endswith("9x16") else (1920, 1080))
        assert info.duration == pytest.approx(clip["end"] - clip["start"], abs=0.5)
    stages = [stage for stage, kind in events_of(settings, job_id) if kind == "finished"]
    assert stages == ["ingest", "extract_audio", "transcribe", "enrich", "render"]
    with db.session(settings.app_db) as conn:
        assert db.stage_rates(conn).keys() == set(stages)
