"""The app database: SQLite specifics (WAL, migrating an old file), and job-row rules on both databases
(``backend_settings``; tests/test_sql_layer.py has the rest of the SQL layer on both)."""

import sqlite3
import time

import pytest

from pipeline import db, jobs


def test_migrations_apply_once_and_use_wal(tmp_path):
    with db.session(tmp_path / "app.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.apply_migrations(conn) == []   # already applied by connect()
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"episodes", "jobs", "job_events", "clips", "renders", "stage_checkpoints", "workers"} <= tables


def test_fresh_database_file_gets_every_migration(tmp_path):
    conn = sqlite3.connect(tmp_path / "fresh.db", isolation_level=None)
    numbers = sorted(int(f.name.split("_", 1)[0]) for f in db.MIGRATIONS_DIR.glob("*.sql"))
    assert db.apply_migrations(conn) == numbers
    assert db.apply_migrations(conn) == []


def test_job_progress_never_goes_backwards(backend_settings, speech_video):
    _, job_id = jobs.create(backend_settings, str(speech_video))
    with db.session(backend_settings.app_db) as conn:
        db.set_job_progress(conn, job_id, 0.5, 0.6, 10.0, time.time())
        db.set_job_progress(conn, job_id, 0.1, 0.2, 30.0, time.time())
        row = db.get_job(conn, job_id)
    assert row["progress"] == 0.6
    assert row["stage_progress"] == 0.1


def test_cancel_of_queued_job_is_immediate_and_of_running_job_is_a_request(backend_settings, speech_video):
    _, queued = jobs.create(backend_settings, str(speech_video))
    _, running = jobs.create(backend_settings, str(speech_video))
    _, between = jobs.create(backend_settings, str(speech_video))
    with db.session(backend_settings.app_db) as conn:
        db.start_job(conn, running, time.time(), worker_id="host:1")
        db.start_job(conn, between, time.time(), worker_id="host:1")
        db.release_job(conn, between)   # its stage ended; the next one waits in the queue
        assert db.request_cancel(conn, queued, time.time()) == "cancelled"
        assert db.request_cancel(conn, running, time.time()) == "running"
        assert db.request_cancel(conn, between, time.time()) == "cancelled"   # no task holds it: at once
        assert db.is_cancel_requested(conn, running)
        assert not db.start_job(conn, queued, time.time())   # a cancelled job never starts


def test_a_job_between_stages_is_claimed_once_without_a_new_attempt(backend_settings, speech_video):
    _, job_id = jobs.create(backend_settings, str(speech_video))
    with db.session(backend_settings.app_db) as conn:
        assert db.start_job(conn, job_id, time.time(), worker_id="host:1")
        assert not db.start_job(conn, job_id, time.time(), worker_id="host:2")   # held by host:1
        db.release_job(conn, job_id)
        assert db.start_job(conn, job_id, time.time(), worker_id="host:2")       # the next stage's task
        assert not db.start_job(conn, job_id, time.time(), worker_id="host:3")   # a duplicate task loses
        assert db.get_job(conn, job_id)["attempts"] == 1


def test_stage_rates_pool_recent_finished_runs(backend_settings, speech_video):
    _, job_id = jobs.create(backend_settings, str(speech_video))
    with db.session(backend_settings.app_db) as conn:
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


def test_a_database_from_before_the_status_checks_moves_forward_with_every_row(tmp_path):
    """Migration 009 rebuilds jobs and render_units to add CHECK constraints: no row is lost on the way,
    least of all by cascade (events, units and webhook deliveries point at jobs)."""
    path = tmp_path / "old.db"
    old = sqlite3.connect(path, isolation_level=None)
    old.execute("PRAGMA foreign_keys=ON")
    old.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at REAL)")
    for file in sorted(db.MIGRATIONS_DIR.glob("*.sql")):
        version = int(file.name.split("_", 1)[0])
        if version < 9:   # the database as the previous release left it
            old.executescript(file.read_text(encoding="utf-8"))
            old.execute("INSERT INTO schema_migrations VALUES (?, 0)", (version,))
    old.execute("INSERT INTO episodes (id, title, source_kind, source_uri, created_at, updated_at)"
                " VALUES ('ep', 'Old', 'path', '/x.mp4', 1, 1)")
    old.execute("INSERT INTO jobs (episode_id, status, created_at, attempts) VALUES ('ep', 'succeeded', 1, 2)")
    old.execute("INSERT INTO job_events (job_id, kind, created_at) VALUES (1, 'queued', 1), (1, 'succeeded', 2)")
    old.execute("INSERT INTO clips (id, episode_id, position, start, end, score, title, reason, created_at)"
                " VALUES ('c1', 'ep', 0, 0, 5, 50, 't', 'r', 1)")
    old.execute("INSERT INTO render_units (job_id, clip_id, status, priority, clip_seconds, created_at)"
                " VALUES (1, 'c1', 'done', 51, 5, 1)")
    old.close()

    with db.session(path) as conn:
        assert conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()[0] >= 9
        job = db.get_job(conn, 1)
        assert (job["status"], job["attempts"], job["episode_id"]) == ("succeeded", 2, "ep")
        assert [e["kind"] for e in db.list_events(conn, 1)] == ["queued", "succeeded"]
        assert [u["status"] for u in db.list_units(conn, 1)] == ["done"]
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
            conn.execute("UPDATE jobs SET status = 'paused' WHERE id = 1")
        db.delete_episode(conn, "ep")   # cascades still reach the rebuilt tables
        assert conn.execute("SELECT COUNT(*) FROM job_events").fetchone()[0] == 0
        assert conn.execute("SELECT COUNT(*) FROM render_units").fetchone()[0] == 0
