"""Retention (issue 21): cleanup deletes exactly what the policy says, records it, keeps what review and
downloads need, and never touches an episode a job is working on; a cleaned URL episode downloads again."""

import dataclasses
import json
import subprocess
import sys
import time
from pathlib import Path

import mediagen
import pytest
from conftest import ROOT
from media_server import MediaServer
from workers import Consumer, ffmpeg_pids, use_config, wait_for_end, wait_until

from pipeline import db, jobs, media, storage
from pipeline.config import load_settings
from pipeline.errors import BadInput
from pipeline.jobs import runner
from pipeline.library import episodes, review
from pipeline.ops import disk, retention

pytestmark = pytest.mark.timeout(300)
DAY = 86_400.0
POLICY = {"source_days": 7, "rejected_renders_days": 7, "deleted_episodes_days": 7, "events_days": 7}
SPEECH_OPTIONS = {"max_clips": 3, "min_clip_seconds": 2, "max_clip_seconds": 3, "aspects": ["9x16"]}


def _age(settings, episode_id: str, days: float, what: str = "jobs") -> None:
    """Move an episode's last job end (or its trash time, or its clips' review time) ``days`` into the past."""
    at = time.time() - days * DAY
    sql = {"jobs": "UPDATE jobs SET finished_at = ? WHERE episode_id = ?",
           "deleted": "UPDATE episodes SET deleted_at = ? WHERE id = ?",
           "clips": "UPDATE clips SET edited_at = ? WHERE episode_id = ?"}[what]
    with db.session(settings.app_db) as conn:
        conn.execute(sql, (at, episode_id))


def _files(settings) -> dict[str, int]:
    root = settings.data_dir / "episodes"
    return {str(p.relative_to(settings.data_dir)): p.stat().st_size for p in root.rglob("*") if p.is_file()}


def _rows(settings) -> dict[str, int]:
    with db.session(settings.app_db) as conn:
        return {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                for t in ("episodes", "jobs", "job_events", "clips", "renders", "stage_checkpoints",
                          "retention_deletions", "job_event_summaries")}


def _run(settings, source, **kwargs) -> str:
    episode_id, job_id = jobs.create(settings, str(source), trusted_path=True, **kwargs)
    assert runner.run_job(settings, job_id) == "succeeded", jobs.get(settings, job_id)
    return episode_id


def _playable(path, seconds_at_least: float = 1.0) -> None:
    info = media.probe(path)
    assert info.has_audio and info.duration >= seconds_at_least, path


@pytest.fixture(scope="module")
def library(tmp_path_factory, speech_video):
    """A data dir with episodes of different ages, built by real runs (the model included)."""
    tmp = tmp_path_factory.mktemp("retention")
    config = tmp / "pipeline.yaml"
    config.write_text(json.dumps({"paths": {"data_dir": str(tmp / "data")}, "retention": POLICY,
                                  "render": {"preset": "ultrafast"}}), encoding="utf-8")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("CLIPDESK_DATA_DIR", raising=False)
        settings = load_settings(config)
    tone = mediagen.tone_video(tmp / "tone.mp4", 2, width=160, height=90)
    main = _run(settings, speech_video, options=SPEECH_OPTIONS)
    clips = episodes.summary(settings, main)["clips"]
    assert len(clips) >= 3 and all(c["renders"] for c in clips)
    review.set_clip_status(settings, clips[0]["clip_id"], "approved")
    with db.session(settings.app_db) as conn:   # rejected long ago, from before rejects dropped renders at once
        for clip in clips[1:3]:
            db.set_clip_review_status(conn, clip["clip_id"], "rejected", time.time())
    retention.pin_clip(settings, clips[2]["clip_id"])
    recent, pinned, trashed = (_run(settings, tone) for _ in range(3))
    retention.pin_episode(settings, pinned)
    episodes.delete(settings, trashed)
    for episode_id in (main, pinned):
        _age(settings, episode_id, 10)
    _age(settings, main, 8, "clips")
    _age(settings, trashed, 7.5, "deleted")
    return {"settings": settings, "main": main, "clips": clips, "recent": recent, "pinned": pinned,
            "trashed": trashed}


@pytest.mark.model
@pytest.mark.slow
def test_dry_run_lists_exactly_the_policy_then_cleanup_deletes_exactly_that(library):
    settings, main, clips = library["settings"], library["main"], library["clips"]
    folder = storage.episode_dir(settings.data_dir, main)
    rejected = clips[1]
    expected = {("source", main, None, str(next(folder.glob("source.*")).relative_to(settings.data_dir))),
                ("audio", main, None, str((folder / "audio.wav").relative_to(settings.data_dir))),
                ("deleted_episode", library["trashed"], None, f"episodes/{library['trashed']}")}
    expected |= {("rejected_render", main, rejected["clip_id"], str(Path(p).relative_to(settings.data_dir)))
                 for p in rejected["renders"].values()}
    files, rows = _files(settings), _rows(settings)

    plan = retention.cleanup(settings, dry_run=True)
    listed = {(i["kind"], i["episode_id"], i["clip_id"], i["path"]) for i in plan["deleted"] if i["kind"] != "job_events"}
    assert listed == expected
    events = [i for i in plan["deleted"] if i["kind"] == "job_events"]
    assert len(events) == 1 and events[0]["events"] > 0 and events[0]["jobs"] == 2   # main's and the pinned one's job
    assert _files(settings) == files and _rows(settings) == rows, "a dry run changes nothing"

    done = retention.cleanup(settings)
    def same(items):   # reasons name ages and times, which moved on by a few milliseconds
        return [{k: v for k, v in i.items() if k != "reason"} for i in items]
    assert same(done["deleted"]) == same(plan["deleted"]) and done["bytes"] == plan["bytes"] > 0
    gone = set(files) - set(_files(settings))
    assert set(_files(settings)) <= set(files)
    assert sum(files[f] for f in gone) == done["bytes"], "the bytes reported are the bytes freed"
    assert gone == {f for f in files if any(f == i[3] or f.startswith(i[3] + "/") for i in expected)}

    after = episodes.summary(settings, main)
    assert after["source_path"] is None and after["source_deleted_at"] is not None
    assert set(after["transcript"]) >= {"json", "srt"} and episodes.export(settings, main, "txt").strip()
    by_id = {c["clip_id"]: c for c in after["clips"]}
    assert by_id[rejected["clip_id"]]["renders"] == {}
    for kept in (clips[0], clips[2]):   # approved, and rejected but pinned
        assert by_id[kept["clip_id"]]["renders"] == kept["renders"]
        for path in kept["renders"].values():
            _playable(path)
    with pytest.raises(BadInput, match="no episode"):
        episodes.summary(settings, library["trashed"])
    for episode_id in (library["recent"], library["pinned"]):
        assert next(storage.episode_dir(settings.data_dir, episode_id).glob("source.*")).is_file()

    with db.session(settings.app_db) as conn:
        job_id = episodes.summary(settings, main)["job_ids"][0]
        summary = db.get_event_summary(conn, job_id)
        assert summary is not None and json.loads(summary["stages_json"]).keys() >= {"transcribe", "render"}
        assert {e["kind"] for e in db.list_events(conn, job_id)} <= {"finished", "clip_finished"}
    recorded = retention.deletions(settings)
    assert sorted((r["kind"], r["path"], r["bytes"]) for r in recorded) == sorted(
        (i["kind"], i["path"], i["bytes"]) for i in done["deleted"])
    assert all(r["reason"].startswith("retention.") and r["deleted_at"] for r in recorded)

    again = retention.cleanup(settings)
    assert again["deleted"] == [] and _rows(settings)["retention_deletions"] == len(recorded), "idempotent"

    # the local file is still where it came from: a re-render copies it again (and re-extracts the audio)
    job_id = jobs.rework(settings, main, "render", lambda *a: "t")
    assert runner.run_job(settings, job_id) == "succeeded", jobs.get(settings, job_id)["error"]
    assert (folder / "audio.wav").is_file() and episodes.summary(settings, main)["source_deleted_at"] is None


@pytest.mark.model
def test_a_cleaned_upload_must_be_uploaded_again_and_compacted_events_keep_the_rates(settings, tmp_path):
    with open(mediagen.tone_video(tmp_path / "t.mp4", 1, 160, 90), "rb") as data:
        upload = jobs.save_upload(settings, "talk.mp4", data)
    episode_id = _run(settings, upload, source_kind="upload")
    _age(settings, episode_id, 2)
    with db.session(settings.app_db) as conn:
        rates, durations = db.stage_rates(conn), [dict(r) for r in db.stage_durations(conn)]
    out = subprocess.run([sys.executable, "-m", "pipeline", "stats", "--json"], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    used = json.loads(out.stdout)["disk"]
    folder = storage.episode_dir(settings.data_dir, episode_id)
    assert used["source"] == next(folder.glob("source.*")).stat().st_size
    assert used["audio"] == (folder / "audio.wav").stat().st_size and used["database"] > 0
    policy = _with_policy(settings, source_days=1, events_days=1)
    frees = disk.usage(policy)["policy_frees_next"]
    audio = folder / "audio.wav"   # as a cleanup that died before its commit leaves it: put back, then deleted
    audio.rename(audio.with_name(f".audio.wav{retention.ASIDE_SUFFIX}"))
    cleaned = retention.cleanup(policy)
    assert frees["bytes"] == cleaned["bytes"] == used["source"] + used["audio"] and not list(folder.glob(".*"))
    out = subprocess.run([sys.executable, "-m", "pipeline", "cleanup", "--history", "--json"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert sorted(d["kind"] for d in json.loads(out.stdout)["deletions"]) == ["audio", "job_events", "source"]
    assert frees["by_kind"]["source"]["items"] == 1 and disk.usage(policy)["source"] == 0
    assert {i["kind"] for i in cleaned["deleted"]} == {"source", "audio", "job_events"}
    with db.session(settings.app_db) as conn:
        assert db.stage_rates(conn) == rates and [dict(r) for r in db.stage_durations(conn)] == durations
        job_id = episodes.summary(settings, episode_id)["job_ids"][0]
        assert db.get_event_summary(conn, job_id)["events"] > len(db.list_events(conn, job_id)) > 0
    compacted = retention.event_summary(settings, job_id)
    assert compacted["stages"].keys() >= {"ingest", "transcribe"} and compacted["compacted_at"]
    with pytest.raises(BadInput, match="deleted by the retention policy.*upload the file again"):
        jobs.rework(settings, episode_id, "render", lambda *a: "t")


@pytest.mark.model
@pytest.mark.slow
def test_a_cleaned_url_episode_downloads_its_source_again(settings, tmp_path):
    talk = mediagen.tone_video(tmp_path / "talk.mp4", 2, 160, 90)
    with MediaServer() as server:
        server.serve("/talk.mp4", talk.read_bytes(), "video/mp4")
        episode_id = _run(settings, server.url("/talk.mp4"))
        _age(settings, episode_id, 2)
        assert [i["kind"] for i in retention.cleanup(_with_policy(settings, source_days=1))["deleted"]] == \
            ["source", "audio"]
        downloads = len(server.received("/talk.mp4", "GET"))
        job_id = jobs.rework(settings, episode_id, "transcribe", lambda *a: "t")
        assert runner.run_job(settings, job_id) == "succeeded", jobs.get(settings, job_id)["error"]
        assert len(server.received("/talk.mp4", "GET")) > downloads, "downloaded again"
    source = next(storage.episode_dir(settings.data_dir, episode_id).glob("source.*"))
    assert source.read_bytes() == talk.read_bytes()
    assert episodes.summary(settings, episode_id)["source_deleted_at"] is None


def _with_policy(settings, **days):
    return dataclasses.replace(settings, retention=dataclasses.replace(settings.retention, **days))


@pytest.mark.model
@pytest.mark.slow
def test_cleanup_during_a_render_of_the_same_episode_deletes_nothing_it_needs(tmp_path, monkeypatch, speech_video):
    settings = use_config(tmp_path, monkeypatch, retention={"source_days": 1})
    # an episode whose last job ended two days ago (cancelled before it started), then processed again
    episode_id, first = jobs.create(settings, str(speech_video), options={
        "max_clips": 2, "min_clip_seconds": 6, "max_clip_seconds": 8, "aspects": ["9x16"]})
    assert jobs.cancel(settings, first)["status"] == "cancelled"
    _age(settings, episode_id, 2)
    consumer = Consumer(settings).start()
    try:
        job = consumer.cli("reprocess", episode_id, "--from", "ingest")
        wait_until(lambda: jobs.get(settings, job["job_id"])["stage"] == "render"
                   and ffmpeg_pids(str(settings.data_dir)), 120, 0.05, "the render to start")
        during = consumer.cli("cleanup")
        assert during["deleted"] == [], "an episode with a running job is left alone"
        assert wait_for_end(settings, job["job_id"], 180)["status"] == "succeeded"
        after = episodes.summary(settings, episode_id)
        assert after["clips"] and all(c["renders"] for c in after["clips"])
        for clip in after["clips"]:
            for path in clip["renders"].values():
                _playable(path)
        # the worker's hourly task, run by hand: now the source and audio go, the renders stay
        _age(settings, episode_id, 2)
        out = subprocess.run([sys.executable, "-c", "import json, queue_worker; "
                              "print(json.dumps(queue_worker.retention_tick.call_local()))"],
                             cwd=ROOT, env=consumer.env, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        tick = json.loads(out.stdout.strip().splitlines()[-1])
        assert {i["kind"] for i in tick["deleted"]} >= {"source", "audio"}
        assert all(i["episode_id"] in (episode_id, None) for i in tick["deleted"])
        for clip in episodes.summary(settings, episode_id)["clips"]:
            for path in clip["renders"].values():
                _playable(path)
    finally:
        consumer.stop()
