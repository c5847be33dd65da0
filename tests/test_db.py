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
    with db.session(settings.app_db_path) as conn:
        db.start_job(conn, running, time.time())
        assert db.request_cancel(conn, queued, time.time()) == "cancelled"
        assert db.request_cancel(conn, running, time.time()) == "running"
        assert db.is_cancel_requested(conn, running)
        assert not db.start_job(conn, queued, time.time())   # a cancelled job never starts


def test_stage_rates_pool_recent_finished_runs(settings, speech_video):
    _, job_id = jobs.create(settings, str(speech_video))
    with db.session(settings.app_db_path) as conn:
        db.add_event(conn, job_id, "transcribe", "finished", time.time(), seconds=10, media_seconds=100)
        db.add_event(conn, job_id, "transcribe", "finished", time.time(), seconds=30, media_seconds=100)
        db.add_event(conn, job_id, "render", "failed", time.time(), seconds=99, media_seconds=1)
        rates = db.stage_rates(conn)
    assert rates == {"transcribe": 0.2}
