"""PostgreSQL going away and coming back (issue 16): a running stage's write waits and goes through, and
says so in the job's history; the API answers 503 problem JSON meanwhile, and recovers by itself.
(tests/test_scale_out.py restarts the server under a real transcribing consumer.)"""

import dataclasses
import threading
import time

import httpx
import pytest
from api_server import ApiServer

from pipeline import db, jobs
from pipeline.config import DatabaseSettings
from pipeline.jobs import outage


@pytest.fixture
def pg_settings(settings, postgres_url, monkeypatch):
    monkeypatch.setenv("CLIPDESK_DATABASE_URL", postgres_url)
    return dataclasses.replace(settings, database=DatabaseSettings(url=postgres_url))


def _back_in(server, seconds: float) -> threading.Thread:
    thread = threading.Thread(target=lambda: (time.sleep(seconds), server.start()))
    thread.start()
    return thread


def test_a_write_waits_out_an_outage_and_the_history_says_so(pg_settings, postgres_server, speech_video):
    _, job_id = jobs.create(pg_settings, str(speech_video), trusted_path=True)

    def save_progress():
        with db.session(pg_settings.app_db) as conn:
            db.set_job_progress(conn, job_id, 0.5, 0.25, 12.0, time.time())

    postgres_server.stop()
    returning = _back_in(postgres_server, 1.5)
    started = time.monotonic()
    outage.retried(pg_settings, "saving progress", save_progress, job_id, "transcribe")
    waited = time.monotonic() - started
    returning.join()
    with db.session(pg_settings.app_db) as conn:
        assert db.get_job(conn, job_id)["progress"] == 0.25
        retried = [e for e in db.list_events(conn, job_id) if e["kind"] == outage.RETRIED]
    assert waited >= 1.0 and len(retried) == 1
    assert retried[0]["stage"] == "transcribe" and "saving progress was retried" in retried[0]["message"]


def test_an_outage_longer_than_the_limit_ends_the_attempt_as_transient(pg_settings, postgres_server):
    patient = dataclasses.replace(pg_settings, worker=dataclasses.replace(pg_settings.worker, db_outage_seconds=1.0))
    postgres_server.stop()
    try:
        with pytest.raises(db.DatabaseError) as lost:
            outage.retried(patient, "saving progress", lambda: db.connect(patient.app_db))
        assert db.is_transient(lost.value)
    finally:
        postgres_server.start()


@pytest.mark.slow
def test_the_api_answers_503_while_the_database_is_away_and_recovers(pg_settings, postgres_server):
    server = ApiServer(pg_settings).start()
    try:
        assert httpx.get(server.url + "/v1/jobs").status_code == 200
        postgres_server.stop()
        try:
            away = httpx.get(server.url + "/v1/jobs", timeout=30)
            ready = httpx.get(server.url + "/readyz", timeout=30)
        finally:
            postgres_server.start()
        assert away.status_code == 503 and away.headers["content-type"] == "application/problem+json"
        assert away.headers["retry-after"] == "5" and "database is unreachable" in away.json()["detail"]
        assert ready.status_code == 503 and ready.json()["checks"]["database"]["ok"] is False
        assert httpx.get(server.url + "/v1/jobs").status_code == 200   # no restart needed
    finally:
        server.stop()
