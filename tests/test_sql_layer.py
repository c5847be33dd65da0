"""The SQL layer on both databases: every test takes ``backend_settings`` (SQLite, then a fresh PostgreSQL
database on the test server) and asserts the same behaviour, since one SQL layer serves both."""

import threading
import time

import psycopg
import pytest
import schema_compare

from pipeline import db
from pipeline.jobs import states


def _episode(conn, episode_id="ep1", title="Morning Show", now=None):
    db.insert_episode(conn, episode_id, title, "path", f"/media/{episode_id}.mp4", now or time.time())


def test_both_dialects_migrate_to_the_same_schema(postgres_url, tmp_path):
    assert [v for v, _ in db.migration_files("sqlite")] == [v for v, _ in db.migration_files("postgresql")]
    assert [f.name for _, f in db.migration_files("sqlite")] == [f.name for _, f in db.migration_files("postgresql")]
    with db.session(tmp_path / "app.db") as lite, db.session(postgres_url) as pg:
        assert db.schema_tables(lite) == db.schema_tables(pg) == set(db.APP_TABLES)   # db copy misses nothing
        lite_schema = schema_compare.describe_sqlite(lite)
        pg_schema = schema_compare.describe_postgres(pg.raw, "public")
    assert schema_compare.differences(lite_schema, pg_schema) == []


def test_migrations_run_once_even_when_machines_start_together(postgres_url):
    results = []
    threads = [threading.Thread(target=lambda: results.append(db.apply_migrations(db.connect(postgres_url,
                                                                                              migrate=False))))
               for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(len(r) for r in results) == [0, 0, len(db.migration_files("postgresql"))]


def test_jobs_are_claimed_once_progress_only_grows_and_cancel_is_guarded(backend_settings):
    with db.session(backend_settings.app_db) as conn:
        _episode(conn)
        first, second = db.insert_job(conn, "ep1", 5, "{}", time.time()), db.insert_job(conn, "ep1", 5, "{}", time.time())
        assert second == first + 1
        assert db.start_job(conn, first, time.time(), "alpha:1")
        assert not db.start_job(conn, first, time.time(), "beta:2")   # held
        db.release_job(conn, first)
        assert db.start_job(conn, first, time.time(), "beta:2")       # the next stage's task
        assert db.get_job(conn, first)["attempts"] == 1               # between stages: no new attempt
        db.set_job_stage(conn, first, "transcribe", 0.4, time.time())
        db.set_job_progress(conn, first, 0.5, 0.6, 10.0, time.time())
        db.set_job_progress(conn, first, 0.1, 0.2, 30.0, time.time())
        db.set_job_stage(conn, first, "enrich", 0.3, time.time())
        job = db.get_job(conn, first)
        assert (job["progress"], job["stage"], job["stage_progress"]) == (0.6, "enrich", 0)
        assert db.request_cancel(conn, second, time.time()) == states.CANCELLED
        assert db.request_cancel(conn, first, time.time()) == states.RUNNING and db.is_cancel_requested(conn, first)
        assert not db.start_job(conn, second, time.time())
        assert db.finish_job(conn, first, states.CANCELLED, time.time(), "cancelled", "cancelled")
        assert not db.finish_job(conn, first, states.SUCCEEDED, time.time())   # an ended job stays ended
        assert db.requeue_job(conn, first, 7, 2)
        assert db.get_job(conn, first)["max_attempts"] == 3


def test_unfinished_jobs_carry_their_checkpoints_and_clip_seconds(backend_settings):
    with db.session(backend_settings.app_db) as conn:
        _episode(conn)
        job_id = db.insert_job(conn, "ep1", 5, "{}", time.time())
        db.mark_stage_done(conn, "ep1", "ingest", time.time())
        db.mark_stage_done(conn, "ep1", "ingest", time.time() + 1)   # an upsert: still one checkpoint
        db.mark_stage_done(conn, "ep1", "extract_audio", time.time())
        db.replace_clips(conn, "ep1", [{"id": "c1", "start": 1.0, "end": 21.5, "score": 80, "title": "One",
                                        "reason": "r"},
                                       {"id": "c2", "start": 30.0, "end": 45.0, "score": 60, "title": "Two",
                                        "reason": "r", "source": "llm"}], time.time())
        db.set_clip_review_status(conn, "c2", "rejected", time.time())
        row = db.unfinished_jobs(conn)[0]
        assert row["id"] == job_id
        assert sorted(row["done_stages"].split(",")) == ["extract_audio", "ingest"]
        assert (row["clip_seconds"], row["clip_count"]) == (20.5, 1)
        assert db.completed_stages(conn, "ep1") == {"ingest", "extract_audio"}
        assert db.clip_totals(conn, "ep1") == (20.5, 1)
        db.set_clip_bounds(conn, "c1", 2.0, 12.0, time.time())
        assert [(c["id"], c["start"], c["end"], c["source"]) for c in db.list_clips(conn, "ep1")] == [
            ("c1", 2.0, 12.0, "heuristic"), ("c2", 30.0, 45.0, "llm")]


def test_renders_are_replaced_not_duplicated_and_go_with_their_clip(backend_settings):
    with db.session(backend_settings.app_db) as conn:
        _episode(conn)
        db.replace_clips(conn, "ep1", [{"id": "c1", "start": 0.0, "end": 20.0, "score": 1, "title": "t",
                                        "reason": "r"}], time.time())
        db.record_render(conn, "c1", "clean_9x16", "a.mp4", 1080, 1920, 20.0, 5_000_000_000, time.time())
        db.record_render(conn, "c1", "clean_9x16", "b.mp4", 1080, 1920, 19.5, 1234, time.time())
        db.record_episode_render(conn, "ep1", "full", "f.mp4", 1920, 1080, 60.0, 10, time.time())
        db.record_episode_render(conn, "ep1", "full", "g.mp4", 1920, 1080, 61.0, 11, time.time())
        assert [(r["path"], r["size_bytes"]) for r in db.list_renders(conn, "ep1")] == [("b.mp4", 1234)]
        assert [r["path"] for r in db.list_episode_renders(conn, "ep1")] == ["g.mp4"]
        db.replace_clips(conn, "ep1", [], time.time())
        assert db.list_renders(conn, "ep1") == []


def test_search_is_case_insensitive_and_cursors_page_without_repeats(backend_settings):
    with db.session(backend_settings.app_db) as conn:
        for i in range(5):
            _episode(conn, f"ep{i}", f"Episode {i} of The Morning Show", now=1000.0 + i)
            db.insert_job(conn, f"ep{i}", 5, "{}", 1000.0 + i)
        assert len(db.list_episodes(conn, search="morning show")) == 5
        assert [e["id"] for e in db.list_episodes(conn, search="EPISODE 3")] == ["ep3"]
        assert len(db.list_jobs(conn, search="the morning")) == 5
        pages, after = [], None
        while rows := db.page_episodes(conn, 2, after_id=after):
            pages += [r["id"] for r in rows]
            after = rows[-1]["id"]
        assert pages == ["ep4", "ep3", "ep2", "ep1", "ep0"]
        job_pages, before = [], None
        while rows := db.page_jobs(conn, before_id=before, limit=2, search="morning"):
            job_pages += [r["id"] for r in rows]
            before = rows[-1]["id"]
        assert job_pages == sorted(job_pages, reverse=True) and len(job_pages) == 5
        assert db.typical_media_seconds(conn) is None


def test_feeds_inbox_webhooks_and_keys_keep_their_one_gates(backend_settings):
    with db.session(backend_settings.app_db) as conn:
        feed = db.insert_feed(conn, "https://example.org/feed", "example.org/feed", "", "rss", "{}", 60, 0.0, 1.0)
        assert db.get_feed(conn, feed)["url"] == "https://example.org/feed"
        assert db.claim_feed_entry(conn, feed, "e1", "https://example.org/1", "One", None, 2.0)
        assert not db.claim_feed_entry(conn, feed, "e1", "https://example.org/1", "One", None, 3.0)
        assert db.seen_feed_entry_ids(conn, feed) == {"e1"}
        assert db.due_feed_ids(conn, 5.0) == [feed]
        mtime = time.time_ns()
        db.upsert_inbox_file(conn, "a.mp4", 5_000_000_000, mtime, 1.0)
        db.upsert_inbox_file(conn, "a.mp4", 6_000_000_000, mtime + 1, 2.0)
        assert dict(db.list_inbox_files(conn)["a.mp4"]) == {"name": "a.mp4", "size": 6_000_000_000,
                                                            "mtime_ns": mtime + 1, "stable_since": 2.0}
        _episode(conn)
        job_id = db.insert_job(conn, "ep1", 5, "{}", time.time())
        body = b'{"event": "job.succeeded"}\x00\xff'
        delivery = db.insert_webhook_delivery(conn, job_id, "http://127.0.0.1:9/hook", "job.succeeded", body, 10.0)
        claimed = db.claim_webhook_delivery(conn, delivery, 40.0, 10.0)
        assert bytes(claimed["body"]) == body and claimed["attempts"] == 1
        assert db.claim_webhook_delivery(conn, delivery, 40.0, 10.0) is None   # leased to the first taker
        key_id = db.insert_api_key(conn, "n8n", "cd_abc", "hash-1", 1.0)
        assert db.find_api_key(conn, "hash-1")["id"] == key_id and db.active_api_key_count(conn) == 1
        assert db.claim_idempotency_key(conn, "n8n", "k1", "h", 1.0) is None
        assert db.claim_idempotency_key(conn, "n8n", "k1", "h", 2.0)["request_hash"] == "h"
        assert db.revoke_api_key(conn, key_id, 3.0) and not db.revoke_api_key(conn, key_id, 4.0)


def test_event_ids_follow_commit_order_and_rates_and_stats_add_up(backend_settings):
    with db.session(backend_settings.app_db) as conn:
        _episode(conn)
        db.set_episode_duration(conn, "ep1", 100.0, "{}", time.time())
        job_id = db.insert_job(conn, "ep1", 5, "{}", time.time())
        start = db.last_event_id(conn)
        db.add_event(conn, job_id, "transcribe", "finished", time.time(), seconds=10, media_seconds=100, host="a")
        with db.transaction(conn):
            db.add_event(conn, job_id, "transcribe", "finished", time.time(), seconds=30, media_seconds=100, host="b")
        db.add_event(conn, job_id, "render", "clip_finished", time.time(), seconds=12, media_seconds=10,
                     cpu_share=0.5)
        db.add_event(conn, job_id, "render", "finished", time.time(), seconds=99, media_seconds=1)   # whole stage
        events = db.events_after(conn, start, job_id=job_id)
        assert [e["id"] for e in events] == sorted(e["id"] for e in events) and len(events) == 4
        assert db.events_after(conn, events[-1]["id"]) == []
        assert db.stage_rates(conn) == {"transcribe": 0.2, "render": 0.6}
        assert db.stage_rates(conn, host="a")["transcribe"] == 0.1
        assert db.start_job(conn, job_id, 1000.0, "a:1")
        assert db.finish_job(conn, job_id, states.SUCCEEDED, 1060.0)
        assert db.count_jobs_by_status(conn) == {states.SUCCEEDED: 1}
        assert db.average_processing_seconds(conn) == 60.0
        day = db.throughput_by_day(conn, 0.0)
        assert [(d["episodes"], d["media_seconds"]) for d in day] == [(1, 100.0)]
        assert [(s["stage"], s["runs"], s["mean_seconds"]) for s in db.stage_durations(conn)] == [
            ("render", 1, 99.0), ("transcribe", 2, 20.0)]
        histogram = db.stage_rate_histogram(conn, (0.1, 0.5, 1.0))
        assert histogram["transcribe"] == ([1, 2, 2], 2, pytest.approx(0.4))
        assert histogram["render"][:2] == ([0, 0, 0], 2)   # 99 s per s (the stage) and 1.2 s per s (the clip)


def test_a_failed_transaction_leaves_nothing_and_writers_take_turns(backend_settings):
    with db.session(backend_settings.app_db) as conn:
        _episode(conn)
        with pytest.raises(db.IntegrityError):
            with db.transaction(conn):
                db.insert_job(conn, "ep1", 5, "{}", time.time())
                db.insert_job(conn, "no-such-episode", 5, "{}", time.time())   # a broken reference
        assert db.list_jobs(conn) == []

    counted = []

    def increment():
        with db.session(backend_settings.app_db) as own, db.transaction(own):
            # read, think, write: without the write lock two of these would lose an update
            value = own.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]
            time.sleep(0.01)
            db.insert_job(own, "ep1", value, "{}", time.time())
            counted.append(value)
    threads = [threading.Thread(target=increment) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(counted) == list(range(8))


def test_a_lost_postgresql_connection_is_a_transient_error(postgres_server, postgres_url):
    conn = db.connect(postgres_url)
    postgres_server.restart()
    with pytest.raises(psycopg.OperationalError) as lost:
        conn.execute("SELECT 1")
    assert db.is_transient(lost.value)
    with db.session(postgres_url) as fresh:   # a new connection works once the server is back
        assert fresh.execute("SELECT 1").fetchone()[0] == 1
