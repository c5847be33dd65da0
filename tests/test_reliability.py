"""Jobs that never get lost: killed workers, cancel, retries with backoff, concurrency, signals.

Every test runs real ``huey_consumer`` subprocesses on real SQLite files and real media.
"""

import dataclasses
import signal
import sqlite3
import threading
import time
from collections import Counter

import mediagen
import pytest
from workers import Consumer, ffmpeg_pids, use_config, wait_for_end, wait_until

from pipeline import db, jobs, storage
from pipeline.jobs import runner
from pipeline.library import episodes
from pipeline.media.render_graph import VARIANTS

pytestmark = pytest.mark.timeout(600)

@pytest.fixture
def fast(tmp_path, monkeypatch):
    """Settings with quick heartbeats/reaping/retries, read by this process and its consumers.

    Renders use the production preset: the tests that kill or stop a worker mid-render need
    the render to last a few seconds.
    """
    return use_config(tmp_path, monkeypatch, render={"preset": "veryfast"})


def _job(settings, job_id):
    with db.session(settings.app_db) as conn:
        return db.get_job(conn, job_id)


def _busy_on(settings, consumer, job_id, stage, least) -> bool:
    """Is the live consumer (not a row the killed one left behind) in ``stage`` of the job, at
    least ``least`` into it? Render runs as one unit per clip: look at the units."""
    mine = f":{consumer.pid}"
    with db.session(settings.app_db) as conn:
        if stage == "render":
            return any(u["status"] == "running" and u["progress"] >= least and (u["worker_id"] or "").endswith(mine)
                       for u in db.list_units(conn, job_id))
        row = db.get_job(conn, job_id)
    return (row["status"] == "running" and row["stage"] == stage and row["stage_progress"] >= least
            and (row["worker_id"] or "").endswith(mine))


def _event_kinds(settings, job_id):
    return [(e["stage"], e["kind"]) for e in jobs.events(settings, job_id)]


@pytest.mark.slow
def test_killed_consumer_jobs_resume_after_restart_without_redoing_or_duplicating_work(fast, speech_video):
    """Five SIGKILLs at different points (mid-transcribe and mid-render); every job still succeeds."""
    # (stage, least stage progress) of whichever job is running: resumed jobs go back to the
    # queue behind the others, so the order in which jobs reach these points is not fixed.
    kill_points = [("transcribe", 0.0), ("render", 0.15), ("transcribe", 0.0), ("render", 0.5), ("render", 0.3)]
    consumer = Consumer(fast)
    try:
        consumer.start()
        job_ids = [consumer.cli("enqueue", str(speech_video), "--max-clips", "1", "--min-seconds", "5",
                                "--max-seconds", "8")["job_id"] for _ in range(3)]
        for stage, least in kill_points:
            wait_until(lambda s=stage, p=least: any(_busy_on(fast, consumer, j, s, p) for j in job_ids),
                       180, 0.02, f"a job in {stage} at {least:.0%}")
            consumer.kill()
            wait_until(lambda: not ffmpeg_pids(str(fast.data_dir)), 10, 0.2, "orphaned ffmpeg to exit")
            consumer.start()
        finished = [wait_for_end(fast, job_id, 300) for job_id in job_ids]
    finally:
        consumer.stop()

    assert [job["status"] for job in finished] == ["succeeded"] * 3, finished
    recovered = sum(kind == "recovered" for job_id in job_ids for _, kind in _event_kinds(fast, job_id))
    assert recovered == len(kill_points)
    for job_id in job_ids:
        job = jobs.get(fast, job_id)
        finished_stages = Counter(stage for stage, kind in _event_kinds(fast, job_id) if kind == "finished")
        assert set(finished_stages.values()) == {1}, f"a completed stage ran again: {finished_stages}"
        summary = episodes.summary(fast, job["episode_id"])
        clip_dirs = list((fast.data_dir / "episodes" / job["episode_id"] / "clips").iterdir())
        assert len(summary["clips"]) == 1 and len(clip_dirs) == 1, "no duplicate clips"
        files = sorted(p.name for p in clip_dirs[0].iterdir())
        assert not [f for f in files if ".partial" in f], files
        assert set(summary["clips"][0]["renders"]) == set(VARIANTS)
    with db.session(fast.app_db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM renders").fetchone()[0] == 3 * len(VARIANTS)


@pytest.mark.slow
def test_cancel_queued_and_running_jobs_then_retry_resumes(fast, speech_video):
    consumer = Consumer(fast).start()
    try:
        running = consumer.cli("enqueue", str(speech_video), "--max-clips", "1", "--min-seconds", "8",
                               "--max-seconds", "12")
        queued = consumer.cli("enqueue", str(speech_video))
        cancelled = consumer.cli("cancel", str(queued["job_id"]))
        assert cancelled["status"] == "cancelled"

        wait_until(lambda: _job(fast, running["job_id"])["stage"] == "render" and ffmpeg_pids(str(fast.data_dir)),
                   180, 0.05, "the render's ffmpeg to start")
        pids = ffmpeg_pids(str(fast.data_dir))
        consumer.cli("cancel", str(running["job_id"]))
        wait_until(lambda: not any(pid in ffmpeg_pids(str(fast.data_dir)) for pid in pids), 5, 0.1,
                   "ffmpeg to stop within 5 s of the cancel")
        job = wait_for_end(fast, running["job_id"], 30)
        assert job["status"] == "cancelled" and job["error_kind"] == "cancelled"
        episode_dir = fast.data_dir / "episodes" / running["episode_id"]
        assert not [p for p in episode_dir.rglob("*") if ".partial" in p.name], "partial files are removed"

        retried = consumer.cli("retry", str(running["job_id"]))
        assert retried["status"] == "queued" and retried["priority"] == jobs.PRIORITY_RETRY
        job = wait_for_end(fast, running["job_id"], 240)
        assert job["status"] == "succeeded", job
        kinds = _event_kinds(fast, running["job_id"])
        after_retry = kinds[max(i for i, k in enumerate(kinds) if k == (None, "queued")):]
        assert {stage for stage, kind in after_retry if kind == "skipped"} == {
            "ingest", "extract_audio", "transcribe", "enrich"}, after_retry
    finally:
        consumer.stop()
    assert not any(kind == "started" for _, kind in _event_kinds(fast, queued["job_id"])), "never started"


def more_than_free(settings) -> int:
    """A free-space floor (MB) this machine's disk is below, however big the disk: a 'full' disk anywhere."""
    return storage.free_bytes(settings.data_dir) // (1 << 20) + 1_000_000


@pytest.mark.slow
def test_full_disk_is_transient_retries_with_growing_delays_then_succeeds(fast, tmp_path):
    """The disk check raises TransientError: the job waits (status retrying) with growing backoff."""
    video = mediagen.tone_video(tmp_path / "short.mp4", 2)
    full = dataclasses.replace(fast, worker=dataclasses.replace(fast.worker, min_free_mb=more_than_free(fast)))
    _, job_id = jobs.create(fast, str(video))
    delays = []
    for attempt in (1, 2, 3):
        assert runner.run_job(full, job_id) == "retrying"
        job = jobs.get(fast, job_id)
        assert job["status"] == "retrying" and job["attempts"] == attempt
        assert "Not enough free disk space" in job["error"] and job["error_kind"] == "transient"
        with db.session(fast.app_db) as conn:
            scheduled_at = [e for e in db.list_events(conn, job_id) if e["kind"] == "retrying"][-1]["created_at"]
        delays.append(_job(fast, job_id)["next_attempt_at"] - scheduled_at)   # the delay chosen, not our timing
        assert runner.run_job(full, job_id) == "retrying", "an early task does not jump the backoff"
        time.sleep(max(0, _job(fast, job_id)["next_attempt_at"] - time.time()))
    base, factor = fast.worker.retry_base_seconds, fast.worker.retry_factor
    for attempt, delay in enumerate(delays):
        expected = base * factor ** attempt
        assert 0.75 * expected <= delay <= 1.25 * expected, delays
    assert runner.run_until_done(fast, job_id) == "succeeded"   # space "freed": the next attempt works
    kinds = [kind for _, kind in _event_kinds(fast, job_id)]
    assert kinds.count("retrying") == 3


def test_transient_failures_give_up_after_max_attempts_with_a_clear_error(fast, tmp_path):
    video = mediagen.tone_video(tmp_path / "short.mp4", 1)
    full = dataclasses.replace(fast, worker=dataclasses.replace(fast.worker, min_free_mb=more_than_free(fast), max_attempts=2,
                                                                retry_base_seconds=0))
    _, job_id = jobs.create(full, str(video))   # the job keeps the max_attempts it was created with
    assert runner.run_until_done(full, job_id) == "failed"
    job = jobs.get(fast, job_id)
    assert job["attempts"] == 2 and "Gave up after 2 attempts" in job["error"]


@pytest.mark.slow
def test_twenty_episodes_with_two_workers_while_the_dashboard_polls_never_lock(fast, tmp_path):
    videos = [mediagen.tone_video(tmp_path / f"ep{i}.mp4", 2 + i % 3) for i in range(4)]
    consumer = Consumer(fast, workers=2).start()
    errors, polls = [], 0
    stop = threading.Event()

    def poll():
        nonlocal polls
        while not stop.is_set():
            try:
                jobs.list_jobs(fast, limit=100)
                jobs.queue_overview(fast)
                polls += 1
            except sqlite3.OperationalError as exc:
                errors.append(str(exc))
            time.sleep(0.2)

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        ids = consumer.enqueue_many([videos[i % 4] for i in range(20)], [i % 3 for i in range(20)])
        finished = [wait_for_end(fast, job_id, 400) for job_id in ids]
    finally:
        stop.set()
        poller.join()
        consumer.stop()
    assert [job["status"] for job in finished] == ["succeeded"] * 20, [j["error"] for j in finished]
    assert errors == [] and polls > 10
    assert "database is locked" not in consumer.log()
    assert all(job["attempts"] == 1 for job in finished), "no job needed a retry"


@pytest.mark.slow
def test_priorities_run_retries_then_interactive_then_feed_and_fifo_within_each(fast, tmp_path):
    video = mediagen.tone_video(tmp_path / "tiny.mp4", 1)
    created = [(jobs.PRIORITY_FEED, "feed-1"), (jobs.PRIORITY_INTERACTIVE, "upload-1"), (jobs.PRIORITY_FEED, "feed-2"),
               (jobs.PRIORITY_RETRY, "retry-1"), (jobs.PRIORITY_INTERACTIVE, "upload-2")]
    consumer = Consumer(fast)
    queued = consumer.enqueue_many([video] * len(created), [priority for priority, _ in created])
    ids = {name: job_id for (_, name), job_id in zip(created, queued, strict=True)}   # before any worker runs
    consumer.start()
    try:
        for job_id in ids.values():
            wait_for_end(fast, job_id, 120)
    finally:
        consumer.stop()
    order = sorted(ids, key=lambda name: _job(fast, ids[name])["started_at"])
    assert order == ["retry-1", "upload-1", "upload-2", "feed-1", "feed-2"]


def _units(settings, job_id):
    with db.session(settings.app_db) as conn:
        return db.list_units(conn, job_id)


@pytest.mark.slow
def test_sigterm_requeues_the_running_clip_and_sigint_lets_it_finish(fast, speech_video):
    consumer = Consumer(fast).start()
    try:
        _sigterm_then_sigint(fast, consumer, speech_video)
    finally:
        consumer.stop()


def _sigterm_then_sigint(fast, consumer, speech_video):
    job = consumer.cli("enqueue", str(speech_video), "--max-clips", "1", "--min-seconds", "6", "--max-seconds", "8")
    wait_until(lambda: _job(fast, job["job_id"])["stage"] == "render" and ffmpeg_pids(str(fast.data_dir)),
               180, 0.05, "render to start")
    assert consumer.stop(signal.SIGTERM, timeout=20) is not None
    wait_until(lambda: not ffmpeg_pids(str(fast.data_dir)), 5, 0.1, "ffmpeg to be stopped with the worker")
    [unit] = _units(fast, job["job_id"])
    assert unit["status"] == "queued" and unit["worker_id"] is None, dict(unit)   # back in the queue, not lost
    assert _job(fast, job["job_id"])["status"] == "running"   # the job waits for its clip
    assert "interrupted" in [kind for _, kind in _event_kinds(fast, job["job_id"])]

    consumer.start()   # the requeued clip task is waiting in the queue
    wait_until(lambda: (u := _units(fast, job["job_id"])[0])["status"] == "running" and u["progress"] > 0, 60, 0.05,
               "the clip to render again")   # rendering, not just claimed: a claimed clip may still go back
    assert consumer.stop(signal.SIGINT, timeout=120) == 0   # graceful: the running clip finishes first
    assert _units(fast, job["job_id"])[0]["status"] == "done"
    row = _job(fast, job["job_id"])
    assert row["status"] == "succeeded" or (row["status"] == "running" and row["worker_id"] is None), dict(row)

    consumer.start()
    assert wait_for_end(fast, job["job_id"], 240)["status"] == "succeeded"
    consumer.stop()
    kinds = _event_kinds(fast, job["job_id"])
    assert set(Counter(stage for stage, kind in kinds if kind == "finished").values()) == {1}
    assert Counter(kind for _, kind in kinds)["clip_finished"] == 1   # rendered once, not twice


def test_reaper_fails_a_job_that_keeps_killing_its_worker(fast, tmp_path):
    from pipeline.jobs import recovery
    video = mediagen.tone_video(tmp_path / "short.mp4", 1)
    _, job_id = jobs.create(fast, str(video))
    queue = runner.LocalQueue(fast)   # records what the reaper dispatches; nothing runs
    with db.session(fast.app_db) as conn:
        for _ in range(fast.worker.max_attempts):
            assert db.start_job(conn, job_id, time.time() - 100, worker_id="elsewhere:1")
            assert recovery.reap(fast, set(), set(), queue, now=time.time()) in ([job_id], [])
    job = jobs.get(fast, job_id)
    assert job["status"] == "failed" and "stopped 4 times" in job["error"]
    assert len(queue.tasks) == fast.worker.max_attempts - 1
    assert episodes.summary(fast, job["episode_id"])["status"] == "failed"


def test_reaper_giving_up_on_a_rerender_leaves_an_episode_with_clips_ready(fast, tmp_path):
    """Every stage done (say, a re-render job keeps killing its worker): the clips are still there."""
    from pipeline import jobs as job_api
    from pipeline.jobs import recovery, states
    video = mediagen.tone_video(tmp_path / "short.mp4", 1)
    episode_id, job_id = job_api.create(fast, str(video))
    with db.session(fast.app_db) as conn:
        for stage in states.STAGES:
            db.mark_stage_done(conn, episode_id, stage, time.time())
        for _ in range(fast.worker.max_attempts):
            assert db.start_job(conn, job_id, time.time() - 100, worker_id="elsewhere:1")
            db.set_episode_status(conn, episode_id, "processing", time.time())
            recovery.reap(fast, set(), set(), runner.LocalQueue(fast), now=time.time())
    assert job_api.get(fast, job_id)["status"] == "failed"
    assert episodes.summary(fast, episode_id)["status"] == "ready"


def test_reaper_ends_a_cancelled_job_whose_worker_died_and_settles_its_episode(fast, tmp_path):
    from pipeline.jobs import recovery
    video = mediagen.tone_video(tmp_path / "short.mp4", 1)
    episode_id, job_id = jobs.create(fast, str(video))
    with db.session(fast.app_db) as conn:
        assert db.start_job(conn, job_id, time.time() - 100, worker_id="elsewhere:1")
        db.set_episode_status(conn, episode_id, "processing", time.time())   # as the runner does on a claim
    jobs.cancel(fast, job_id)   # asked while running: the (dead) worker would have seen it
    assert recovery.reap(fast, set(), set(), runner.LocalQueue(fast), now=time.time()) == []
    assert jobs.get(fast, job_id)["status"] == "cancelled"
    assert episodes.summary(fast, episode_id)["status"] == "new"   # not left "processing" forever


@pytest.mark.slow
def test_llm_returning_503_twice_is_retried_with_growing_delays_and_the_job_succeeds(tmp_path, monkeypatch,
                                                                                     speech_video):
    from llm_server import FakeLLM, Reply
    answer = {"title": "Small teams, great software", "summary": "Lessons on planning and testing.",
              "keywords": ["testing", "planning"], "hashtags": ["#Testing"],
              "chapters": [{"start": 0, "title": "Intro"}],
              "clips": [{"start": 6.0, "end": 16.0, "score": 80, "title": "Plan first", "reason": "Concrete advice."}]}
    with FakeLLM([Reply(503), Reply(503), Reply.completion(answer)]) as llm:
        settings = use_config(tmp_path, monkeypatch, enrich={"min_clips": 0},
                              llm={"base_url": llm.url, "model": "test-model", "backoff_seconds": 0.3, "max_retries": 4})
        consumer = Consumer(settings).start()
        try:
            job = consumer.cli("enqueue", str(speech_video), "--max-clips", "1", "--min-seconds", "5",
                               "--max-seconds", "12")
            assert wait_for_end(settings, job["job_id"], 240)["status"] == "succeeded"
        finally:
            consumer.stop()
        arrivals = [r.at for r in llm.requests]
    assert len(arrivals) == 3
    first_wait, second_wait = arrivals[1] - arrivals[0], arrivals[2] - arrivals[1]
    # backoff 0.3 s doubling, "equal jitter": first wait 0.15-0.3 s, second 0.3-0.6 s
    assert 0.14 <= first_wait and 0.29 <= second_wait and second_wait >= first_wait, (first_wait, second_wait)
    enrichment = episodes.summary(settings, job["episode_id"])["enrichment"]
    assert enrichment["source"] == "llm" and enrichment["title"] == answer["title"]
