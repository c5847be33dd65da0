"""The watch folder: files become episodes once they stop changing; unreadable ones are rejected."""

import dataclasses
import json
import os
import subprocess
import sys
import time

import mediagen
import pytest
from media_server import MediaServer

from pipeline import db, jobs
from pipeline.automation import feeds, inbox
from pipeline.jobs import runner
from pipeline.library import episodes
from pipeline.media import probe

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def talk_bytes(tmp_path_factory):
    return mediagen.tone_video(tmp_path_factory.mktemp("inbox") / "talk.mp4", 3.0, width=320, height=180).read_bytes()


class Dispatcher:
    def __init__(self):
        self.calls = []

    def __call__(self, job_id, priority, delay=0.0):
        self.calls.append((job_id, priority))
        return f"task-{job_id}"


def test_a_file_is_picked_only_after_it_stops_growing_and_becomes_a_processed_episode(settings, talk_bytes):
    folder = inbox.inbox_dir(settings)
    folder.mkdir(parents=True)
    dropped = folder / "Interview 01.mp4"
    dispatch = Dispatcher()
    t0 = time.time()
    half = len(talk_bytes) // 2

    dropped.write_bytes(talk_bytes[:half])                    # a copy in progress (half a file is unreadable)
    assert inbox.scan(settings, dispatch, now=t0) == []
    assert inbox.scan(settings, dispatch, now=t0 + 6) == [], "unchanged for 6 of 10 seconds"
    with open(dropped, "ab") as out:
        out.write(talk_bytes[half:])
    os.utime(dropped, ns=(time.time_ns(), time.time_ns() + 1_000_000_000))
    assert inbox.scan(settings, dispatch, now=t0 + 12) == [], "it grew: the clock starts again"
    assert inbox.scan(settings, dispatch, now=t0 + 20) == [], "stable for only 8 of 10 seconds"
    assert dropped.exists() and dispatch.calls == [] and not inbox.rejected_dir(settings).exists()

    [taken] = inbox.scan(settings, dispatch, now=t0 + 23)
    assert taken["file"] == "Interview 01.mp4" and dispatch.calls == [(taken["job_id"], jobs.PRIORITY_FEED)]
    assert not dropped.exists(), "the inbox empties"
    assert runner.run_job(settings, taken["job_id"]) == "succeeded"
    summary = episodes.summary(settings, taken["episode_id"])
    assert summary["source_path"].endswith("source.mp4")
    assert probe(summary["source_path"]).duration == pytest.approx(3.0, abs=0.1)
    with db.session(settings.app_db) as conn:
        assert db.list_inbox_files(conn) == {}


def test_unreadable_files_are_rejected_with_an_error_file_and_the_probe_not_the_name_decides(settings, talk_bytes):
    folder = inbox.inbox_dir(settings)
    folder.mkdir(parents=True)
    (folder / "notes.mp4").write_text("this is not a video\n" * 50)
    (folder / "actually-video.txt").write_bytes(talk_bytes)
    (folder / "download.mp4.part").write_bytes(talk_bytes)    # someone else's partial download
    (folder / ".hidden.mp4").write_bytes(talk_bytes)
    dispatch = Dispatcher()
    t0 = time.time()
    assert inbox.scan(settings, dispatch, now=t0) == []
    results = {r["file"]: r for r in inbox.scan(settings, dispatch, now=t0 + 30)}

    assert set(results) == {"notes.mp4", "actually-video.txt"}
    rejected = inbox.rejected_dir(settings) / "notes.mp4"
    assert rejected.exists() and not (folder / "notes.mp4").exists()
    reason = (inbox.rejected_dir(settings) / "notes.mp4.error.txt").read_text()
    assert "notes.mp4" in reason and "not a media file" in reason
    assert results["notes.mp4"]["error"].strip() == reason.strip()

    [(job_id, _)] = dispatch.calls
    assert results["actually-video.txt"]["job_id"] == job_id
    assert jobs.get(settings, job_id)["title"] == "actually-video.mp4", "named for what the probe found"
    assert (folder / "download.mp4.part").exists() and (folder / ".hidden.mp4").exists()
    assert inbox.scan(settings, dispatch, now=t0 + 90) == [], "the rejected folder is not scanned"


def test_a_disabled_inbox_takes_nothing(settings, talk_bytes):
    off = dataclasses.replace(settings, inbox=dataclasses.replace(settings.inbox, enabled=False))
    folder = inbox.inbox_dir(off)
    folder.mkdir(parents=True)
    (folder / "talk.mp4").write_bytes(talk_bytes)
    dispatch = Dispatcher()
    assert inbox.scan(off, dispatch, now=0) == [] and inbox.scan(off, dispatch, now=1000) == []
    assert (folder / "talk.mp4").exists() and dispatch.calls == []


def test_the_worker_tick_queues_due_feed_entries_and_stable_inbox_files_on_the_real_queue(settings, talk_bytes,
                                                                                         tmp_path):
    """queue_worker.automation_tick (the minute-by-minute periodic task) wired to the real Huey queue."""
    config = tmp_path / "tick.yaml"
    config.write_text("inbox:\n  stable_seconds: 0\nnetwork:\n  allowed_hosts: [127.0.0.1]\n")
    folder = inbox.inbox_dir(settings)
    folder.mkdir(parents=True)
    (folder / "dropped.mp4").write_bytes(talk_bytes)
    with MediaServer() as server:
        server.serve("/ep1.mp4", talk_bytes, "video/mp4")
        server.rss("/feed.xml", [("g1", "From the feed", "/ep1.mp4")])
        feeds.add(settings, server.url("/feed.xml"), backfill=1)    # due at once, queued by the tick
        script = ("import json, queue_worker\n"
                  "queue_worker.automation_tick.call_local()\n"      # records the inbox file, checks the feed
                  "queue_worker.automation_tick.call_local()\n"      # the file is unchanged: taken
                  "print(json.dumps([t.args[0] for t in queue_worker.huey.pending()]))\n")
        env = dict(os.environ, CLIPDESK_DATA_DIR=str(settings.data_dir), CLIPDESK_CONFIG=str(config))
        done = subprocess.run([sys.executable, "-c", script], cwd=ROOT,
                              env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    queued = json.loads(done.stdout.strip().splitlines()[-1])
    titles = sorted(jobs.get(settings, job_id)["title"] for job_id in queued)
    assert titles == ["From the feed", "dropped.mp4"]
    assert not (folder / "dropped.mp4").exists()
