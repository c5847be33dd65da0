import sqlite3
import time

from pipeline import db, jobs


def test_migrations_apply_once_and_use_wal(settings):
    with db.session(settings.app_db_path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.migrate(conn) == []   # already applied by connect()
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"episodes", "jobs", "job_events", "clips", "renders", "stage_checkpoints", "workers"} <= tables


def test_fresh_database_file_gets_every_migration(tmp_path):
    conn = sqlite3.connect(tmp_path / "fresh.db", isolation_level=None)
    numbers = sorted(int(f.name.split("_", 1)[0]) for f in db.MIGRATIONS_DIR.glob("*.sql"))
    assert db.migrate(conn) == numbers
    assert db.migrate(conn) == []


def test_job_progress_never_goes_backwards(settings, speech_video):
    _, job_id = jobs.create(settings, str(speech_video))
    with db.session(settings.app_db_path) as conn:
        db.set_job_progress(conn, job_id, 0.5, 0.6, 10.0, time.time())
        db.set_job_progress(conn, job_id, 0.1, 0.2, 30.0, time.time())
        row = db.get_job(conn, job_id)
    assert row["progress"] == 0.6
    assert row["stage_progress"] == 0.1


def test_cancel_of_queued_job_is_immediate_and_of_running_job_is_a_request(settings, speech_video):
    _, queued = jobs.create(settings, str(speech_video))
    _, running = jobs.create(settings, str(speech_video))
    _, between = jobs.create(settings, str(speech_video))
    with db.session(settings.app_db_path) as conn:
        db.start_job(conn, running, time.time(), worker_id="host:1")
        db.start_job(conn, between, time.time(), worker_id="host:1")
        db.release_job(conn, between)   # its stage ended; the next one waits in the queue
        assert db.request_cancel(conn, queued, time.time()) == "cancelled"
        assert db.request_cancel(conn, running, time.time()) == "running"
        assert db.request_cancel(conn, between, time.time()) == "cancelled"   # no task holds it: at once
        assert db.is_cancel_requested(conn, running)
        assert not db.start_job(conn, queued, time.time())   # a cancelled job never starts


def test_a_job_between_stages_is_claimed_once_without_a_new_attempt(settings, speech_video):
    _, job_id = jobs.create(settings, str(speech_video))
    with db.session(settings.app_db_path) as conn:
        assert db.start_job(conn, job_id, time.time(), worker_id="host:1")
        assert not db.start_job(conn, job_id, time.time(), worker_id="host:2")   # held by host:1
        db.release_job(conn, job_id)
        assert db.start_job(conn, job_id, time.time(), worker_id="host:2")       # the next stage's task
        assert not db.start_job(conn, job_id, time.time(), worker_id="host:3")   # a duplicate task loses
        assert db.get_job(conn, job_id)["attempts"] == 1


def test_stage_rates_pool_recent_finished_runs(settings, speech_video):
    _, job_id = jobs.create(settings, str(speech_video))
    with db.session(settings.app_db_path) as conn:
        db.add_event(conn, job_id, "transcribe", "finished", time.time(), seconds=10, media_seconds=100)
        db.add_event(conn, job_id, "transcribe", "finished", time.time(), seconds=30, media_seconds=100)
        db.add_event(conn, job_id, "render", "failed", time.time(), seconds=99, media_seconds=1)
        db.add_event(conn, job_id, "render", "finished", time.time(), seconds=99, media_seconds=1)   # whole stage
        db.add_event(conn, job_id, "render", "clip_finished", time.time(), seconds=12, media_seconds=10)
        rates = db.stage_rates(conn)
        db.add_event(conn, job_id, "transcribe", "finished", time.time(), seconds=5, media_seconds=100, host="here")
        here, elsewhere = db.stage_rates(conn, host="here"), db.stage_rates(conn, host="elsewhere")
        db.add_event(conn, job_id, "extract_audio", "finished", time.time(), seconds=8, media_seconds=100,
                     cpu_share=0.5)   # ran beside another task: half the machine
        assert db.stage_rates(conn)["extract_audio"] == 0.04
    assert rates == {"transcribe": 0.2, "render": 1.2}   # render: seconds per second of clip
    assert here["transcribe"] == 0.05 and elsewhere["transcribe"] == 0.15   # this machine's runs win
