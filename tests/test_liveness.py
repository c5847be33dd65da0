"""One liveness rule and one owner of job state: the reaper and the dashboard agree on who is alive,
a slow stage that keeps beating is never taken over, and the database refuses unknown statuses."""

import subprocess
import time

import pytest
from workers import use_config

from pipeline import db, jobs
from pipeline.jobs import recovery, runner, states, workers

OTHER_HOST_WORKER = "another-machine:4242"   # judged by its heartbeat alone: no process to look at here


def _running_job(settings, worker_id: str = OTHER_HOST_WORKER) -> int:
    """A job claimed by a worker, as the runner leaves it while a stage runs."""
    now = time.time()
    with db.session(settings.app_db) as conn, db.transaction(conn):
        db.insert_episode(conn, "ep1", "", "path", "/nowhere.mp4", now)
        job_id = db.insert_job(conn, "ep1", 50, "{}", now)
        assert db.start_job(conn, job_id, now, worker_id)
        db.set_job_stage(conn, job_id, "transcribe", 0.1, now)
    return job_id


def test_a_slow_but_alive_stage_is_never_reaped(tmp_path, monkeypatch):
    settings = use_config(tmp_path, monkeypatch, worker={"heartbeat_seconds": 0.2, "stale_after_seconds": 1.0})
    job_id = _running_job(settings)
    queue = runner.LocalQueue(settings)
    deadline = time.monotonic() + 3 * settings.worker.stale_after_seconds
    with workers.Heartbeat(settings, "slow-stage", lambda conn, now: db.touch_job(conn, job_id, now)):
        while time.monotonic() < deadline:   # the stage reports no progress at all, for 3x stale_after
            assert recovery.reap(settings, set(), set(), queue) == []
            time.sleep(0.1)
    job = jobs.get(settings, job_id)
    assert job["status"] == "running" and job["attempts"] == 1 and not queue.tasks

    time.sleep(settings.worker.stale_after_seconds + 0.2)   # the heartbeat stopped: now it is an orphan
    assert recovery.reap(settings, set(), set(), queue) == [job_id]
    assert jobs.get(settings, job_id)["status"] == "queued" and len(queue.tasks) == 1
    assert "recovered" in [e["kind"] for e in jobs.events(settings, job_id)]


@pytest.mark.parametrize("stale_after, alive", [(60.0, True), (40.0, False)])
def test_dashboard_and_reaper_judge_a_worker_by_the_same_setting(tmp_path, monkeypatch, stale_after, alive):
    """A worker last heard from 45 s ago: alive for both when stale_after is 60 s, gone for both at 40 s."""
    settings = use_config(tmp_path, monkeypatch, worker={"heartbeat_seconds": 5.0, "stale_after_seconds": stale_after})
    job_id = _running_job(settings)
    heard = time.time() - 45
    with db.session(settings.app_db) as conn:
        db.worker_heartbeat(conn, OTHER_HOST_WORKER, heard, threads=2)
        db.touch_job(conn, job_id, heard)
    overview = jobs.queue_overview(settings)
    assert overview["workers_alive"] == (1 if alive else 0)
    assert overview["threads_alive"] == (2 if alive else 0)
    assert recovery.reap(settings, set(), set(), runner.LocalQueue(settings)) == ([] if alive else [job_id])


def test_a_dead_process_on_this_host_is_gone_at_once(tmp_path, monkeypatch):
    settings = use_config(tmp_path, monkeypatch)
    child = subprocess.Popen(["true"])
    child.wait()   # exited and reaped: its pid names no process now
    finished = child.pid
    assert not workers.process_alive(finished)
    job_id = _running_job(settings, workers.worker_id(settings, finished))
    with db.session(settings.app_db) as conn:
        assert "has exited" in workers.lost(settings, db.get_job(conn, job_id), time.time())
        assert workers.lost(settings, {"worker_id": workers.worker_id(settings), "heartbeat_at": time.time(),
                                       "started_at": None}, time.time()) is None


def test_the_database_refuses_a_status_the_job_core_does_not_know(backend_settings):
    job_id = None
    with db.session(backend_settings.app_db) as conn:
        db.insert_episode(conn, "ep1", "", "path", "/nowhere.mp4", time.time())
        job_id = db.insert_job(conn, "ep1", 50, "{}", time.time())
        with pytest.raises(db.IntegrityError, match="(?i)check"):
            conn.execute("UPDATE jobs SET status = 'paused' WHERE id = ?", (job_id,))
        for status in states.JOB_STATUSES:   # every status the core lists is accepted
            conn.execute("UPDATE jobs SET status = ? WHERE id = ?", (status, job_id))
        db.replace_clips(conn, "ep1", [{"id": "c1", "start": 0, "end": 5, "score": 1, "title": "t", "reason": "r"}],
                         time.time())
        (unit_id,) = db.replace_units(conn, job_id, [("c1", 5.0)], 50, time.time())
        with pytest.raises(db.IntegrityError, match="(?i)check"):
            conn.execute("UPDATE render_units SET status = 'rendering' WHERE id = ?", (unit_id,))
        for status in states.UNIT_STATUSES:
            conn.execute("UPDATE render_units SET status = ? WHERE id = ?", (status, unit_id))


def test_a_transition_from_a_status_it_does_not_allow_changes_nothing(settings):
    with db.session(settings.app_db) as conn:
        db.insert_episode(conn, "ep1", "", "path", "/nowhere.mp4", time.time())
        job_id = db.insert_job(conn, "ep1", 50, "{}", time.time())
        assert not db.finish_job(conn, job_id, states.SUCCEEDED, time.time())   # succeed needs running
        assert not db.return_to_queue(conn, job_id)                               # requeue needs running
        assert not db.requeue_job(conn, job_id, 100, 3)                           # retry_now needs an ended job
        assert db.get_job(conn, job_id)["status"] == "queued"
        assert db.finish_job(conn, job_id, states.CANCELLED, time.time(), "The job was cancelled.", "cancelled")
        assert not db.start_job(conn, job_id, time.time(), "w:1")                 # a cancelled job is not claimed
        assert db.requeue_job(conn, job_id, 100, 3)
        assert db.get_job(conn, job_id)["status"] == "queued"
    for transition in states.JOB_TRANSITIONS:   # the table only names statuses the core lists
        assert set(transition.sources) | {transition.target} <= set(states.JOB_STATUSES)
    for transition in states.UNIT_TRANSITIONS:
        assert set(transition.sources) | {transition.target} <= set(states.UNIT_STATUSES)


def test_a_retry_of_a_job_that_may_not_be_retried_names_its_status(settings):
    with db.session(settings.app_db) as conn:
        db.insert_episode(conn, "ep1", "", "path", "/nowhere.mp4", time.time())
        job_id = db.insert_job(conn, "ep1", 50, "{}", time.time())
    with pytest.raises(Exception, match=r"is queued; only failed, cancelled or retrying jobs can be retried"):
        jobs.retry(settings, job_id, lambda job, priority: "task")
