import json
import os
import subprocess
import sys

import mediagen
import pytest
from conftest import ROOT


def run_cli(*args, data_dir, extra_env=None):
    env = dict(os.environ, CLIPDESK_DATA_DIR=str(data_dir), **(extra_env or {}))
    env.pop("CLIPDESK_CONFIG", None) if not extra_env else None
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_run_processes_a_file_synchronously_and_prints_the_summary(tmp_path):
    video = mediagen.tone_video(tmp_path / "tone.mov", 3)
    out = run_cli("run", str(video), "--json", data_dir=tmp_path / "data")
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert {"episode_id", "title", "duration", "status", "transcript", "enrichment", "clips"} <= summary.keys()
    assert summary["status"] == "ready" and abs(summary["duration"] - 3) < 0.1
    assert summary["clips"] == []   # a tone has no speech, so no clips, and the job still succeeds
    assert summary["job"]["status"] == "succeeded"

    episode_id, job_id = summary["episode_id"], summary["job"]["job_id"]
    listed = json.loads(run_cli("jobs", "--json", data_dir=tmp_path / "data").stdout)
    assert [j["job_id"] for j in listed["jobs"]] == [job_id]
    status = json.loads(run_cli("status", str(job_id), "--json", data_dir=tmp_path / "data").stdout)
    assert set(status) >= {"job_id", "episode_id", "status", "stage", "progress", "eta_seconds", "attempts",
                           "error", "created_at", "started_at", "finished_at"}
    vtt = run_cli("export", episode_id, "--format", "vtt", data_dir=tmp_path / "data")
    assert vtt.returncode == 0 and vtt.stdout.startswith("WEBVTT")

    stats = json.loads(run_cli("stats", "--json", data_dir=tmp_path / "data").stdout)
    assert stats["success_rate"] == 1.0 and stats["jobs"]["succeeded"] == 1
    assert stats["queue_latency_seconds"]["samples"] == 1 and "transcribe" in stats["seconds_per_media_hour"]

    redo = run_cli("reprocess", episode_id, "--from", "enrich", "--max-clips", "3", "--json", data_dir=tmp_path / "data")
    assert redo.returncode == 0, redo.stderr
    redo_job = json.loads(redo.stdout)
    assert redo_job["status"] == "queued" and redo_job["episode_id"] == episode_id
    again = run_cli("reprocess", episode_id, "--json", data_dir=tmp_path / "data")
    assert again.returncode == 1 and "already has job" in json.loads(again.stdout)["error"]
    deleted = run_cli("delete", episode_id, "--json", data_dir=tmp_path / "data")
    assert json.loads(deleted.stdout)["cancelled_jobs"] == [redo_job["job_id"]]
    assert json.loads(run_cli("status", str(redo_job["job_id"]), "--json", data_dir=tmp_path / "data").stdout
                      )["status"] == "cancelled"
    assert json.loads(run_cli("restore", episode_id, "--json", data_dir=tmp_path / "data").stdout)["status"] == "ready"


def test_errors_are_sentences_with_a_nonzero_exit(tmp_path):
    missing = run_cli("run", str(tmp_path / "nope.mp4"), data_dir=tmp_path / "data")
    assert missing.returncode == 1 and "File not found" in missing.stderr
    unknown = run_cli("status", "999", "--json", data_dir=tmp_path / "data")
    assert unknown.returncode == 1 and json.loads(unknown.stdout) == {"error": "There is no job 999."}
    bad_config = tmp_path / "bad.yaml"
    bad_config.write_text("render:\n  crf: 77\n")
    config = run_cli("jobs", data_dir=tmp_path / "data", extra_env={"CLIPDESK_CONFIG": str(bad_config)})
    assert config.returncode == 2 and "render.crf" in config.stderr


@pytest.mark.slow
def test_every_command_has_help():
    for command in ("run", "enqueue", "status", "jobs", "retry", "cancel", "episode", "export", "serve", "reprocess",
                    "delete", "restore", "stats", "clip", "feeds", "inbox", "webhooks"):
        out = subprocess.run([sys.executable, "-m", "pipeline", command, "--help"], cwd=ROOT,
                             capture_output=True, text=True)
        assert out.returncode == 0 and "usage:" in out.stdout
