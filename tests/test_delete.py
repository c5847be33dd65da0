"""Deleting episodes: soft delete hides and can be undone; hard delete leaves no rows or files behind."""

import io
import os
import subprocess
import sys

import mediagen
import pytest
from conftest import ROOT
from workers import Consumer, ffmpeg_pids, use_config, wait_for_end, wait_until

from pipeline import db, jobs, storage
from pipeline.errors import BadInput
from pipeline.jobs import runner
from pipeline.library import episodes

pytestmark = pytest.mark.timeout(300)
OPTIONS = {"max_clips": 1, "min_clip_seconds": 2, "max_clip_seconds": 3}


def _count_rows(settings, episode_id) -> dict:
    with db.session(settings.app_db) as conn:
        return {table: conn.execute(f"SELECT COUNT(*) FROM {table} WHERE {column} = ?", (episode_id,)).fetchone()[0]
                for table, column in (("episodes", "id"), ("jobs", "episode_id"), ("clips", "episode_id"),
                                      ("stage_checkpoints", "episode_id"))}


@pytest.fixture
def finished_episode(settings, speech_video):
    episode_id, job_id = jobs.create(settings, str(speech_video), options=OPTIONS)
    assert runner.run_job(settings, job_id) == "succeeded"
    assert episodes.summary(settings, episode_id)["clips"]
    return episode_id


@pytest.mark.slow
def test_soft_delete_hides_the_episode_and_restore_brings_it_back(settings, finished_episode):
    before = episodes.summary(settings, finished_episode)
    episodes.delete(settings, finished_episode)
    assert finished_episode not in [e["episode_id"] for e in episodes.list_episodes(settings)]
    hidden = episodes.list_episodes(settings, include_deleted=True)
    assert [e["deleted"] for e in hidden if e["episode_id"] == finished_episode] == [True]
    with pytest.raises(BadInput, match="no episode"):
        jobs.rework(settings, finished_episode, "render", lambda *a: "t")
    episodes.restore(settings, finished_episode)
    assert episodes.summary(settings, finished_episode)["clips"] == before["clips"]
    assert all(os.path.exists(p) for c in before["clips"] for p in c["renders"].values())


@pytest.mark.slow
def test_hard_delete_removes_rows_and_files_and_leaves_other_episodes(settings, finished_episode, tmp_path):
    other, other_job = jobs.create(settings, str(mediagen.tone_video(tmp_path / "other.mp4", 1)))
    folder = storage.episode_dir(settings.data_dir, finished_episode)
    assert any(folder.rglob("*.mp4"))
    episodes.delete(settings, finished_episode, hard=True)
    assert not folder.exists() and not list((settings.data_dir / "episodes").glob(".deleting-*"))
    assert set(_count_rows(settings, finished_episode).values()) == {0}
    with db.session(settings.app_db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM renders").fetchone()[0] == 0
        assert conn.execute("SELECT COUNT(*) FROM job_events WHERE job_id NOT IN (SELECT id FROM jobs)"
                            ).fetchone()[0] == 0
    assert jobs.get(settings, other_job)["status"] == "queued"
    with pytest.raises(BadInput, match="no episode"):
        episodes.summary(settings, finished_episode)


def test_hard_delete_of_a_never_ingested_upload_removes_the_upload(settings):
    path = jobs.save_upload(settings, "clip.mp4", io.BytesIO(b"not yet processed"))
    episode_id, _ = jobs.create(settings, str(path), source_kind="upload")
    episodes.delete(settings, episode_id, hard=True)
    assert not path.exists() and not path.parent.exists()


@pytest.mark.slow
def test_deleting_an_episode_cancels_its_running_job_first(tmp_path, monkeypatch, speech_video):
    settings = use_config(tmp_path, monkeypatch)
    consumer = Consumer(settings).start()
    try:
        job = consumer.cli("enqueue", str(speech_video), "--max-clips", "1", "--min-seconds", "8",
                           "--max-seconds", "10")
        wait_until(lambda: jobs.get(settings, job["job_id"])["stage"] == "render"
                   and ffmpeg_pids(str(settings.data_dir)), 180, 0.05, "render to start")
        out = subprocess.run([sys.executable, "-m", "pipeline", "delete", job["episode_id"], "--hard", "--json"],
                             cwd=ROOT, env=consumer.env, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert not ffmpeg_pids(str(settings.data_dir)), "the render was stopped"
        assert not storage.episode_dir(settings.data_dir, job["episode_id"]).exists()
        assert set(_count_rows(settings, job["episode_id"]).values()) == {0}
        good = consumer.cli("enqueue", str(mediagen.tone_video(tmp_path / "next.mp4", 2)))
        assert wait_for_end(settings, good["job_id"], 120)["status"] == "succeeded", "the worker carries on"
    finally:
        consumer.stop()
