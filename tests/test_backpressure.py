"""Back-pressure (issue 21): with ``worker.max_queued_jobs`` reached, feed entries wait unclaimed and are
queued by later checks (never lost, never twice); an interactive submit is accepted with the queue's depth."""

import json
import os
import subprocess
import sys
import time

import mediagen
import pytest
from conftest import ROOT
from media_server import MediaServer
from workers import Consumer, use_config, wait_until

from pipeline import db, jobs
from pipeline.automation import feeds

pytestmark = pytest.mark.timeout(400)
ENTRIES, LIMIT = 50, 5

# Checks the feed until every entry is claimed, through the worker's own dispatch. The feed's clock runs
# far ahead so the consumer's minute tick never finds it due: one checker, as with one periodic consumer.
DRIVER = """
import json, sys, time, queue_worker
from pipeline.automation import feeds
while True:
    result = feeds.check_feed(queue_worker.settings, int(sys.argv[1]), queue_worker.dispatch, now=time.time() + 1e7)
    print(json.dumps(result), flush=True)
    if result["error"] is None and result["waiting"] == 0:
        break
    time.sleep(0.5)
"""


@pytest.mark.model
@pytest.mark.slow
def test_a_feed_of_50_never_queues_more_than_the_limit_and_every_entry_runs_once(tmp_path, monkeypatch):
    settings = use_config(tmp_path, monkeypatch, worker={"max_queued_jobs": LIMIT})
    media = mediagen.silence_audio(tmp_path / "tick.m4a", 0.5).read_bytes()
    with MediaServer() as server:
        for i in range(ENTRIES):
            server.serve(f"/ep{i}.m4a", media, "audio/mp4")
        server.rss("/feed.xml", [(f"guid-{i}", f"Episode {i}", f"/ep{i}.m4a") for i in range(ENTRIES)])
        feed = feeds.add(settings, server.url("/feed.xml"), backfill=ENTRIES)
        with db.session(settings.app_db) as conn:   # a backfilled feed is due now: not for the consumer's tick
            conn.execute("UPDATE feeds SET next_check_at = ?", (time.time() + 1e7,))
        consumer = Consumer(settings).start()
        try:
            driver = subprocess.Popen([sys.executable, "-c", DRIVER, str(feed["feed_id"])], cwd=ROOT,
                                      env=consumer.env, stdout=subprocess.PIPE, text=True)
            deepest = 0

            def all_done() -> bool:
                nonlocal deepest
                with db.session(settings.app_db) as conn:
                    deepest = max(deepest, db.count_waiting_jobs(conn))
                    counts = db.count_jobs_by_status(conn)
                return driver.poll() is not None and sum(counts.values()) == ENTRIES == counts.get("succeeded", 0)

            wait_until(all_done, 360, 0.05, "every feed entry to be processed")
            results = [json.loads(line) for line in driver.stdout.read().splitlines()]
        finally:
            consumer.stop()
        assert deepest <= LIMIT, f"{deepest} jobs waited at once"
        first = results[0]   # the worker may start a job during the first check, making room for one more
        assert len(first["queued"]) >= LIMIT and first["waiting"] == ENTRIES - len(first["queued"]) > 0
        queued = [job_id for r in results for job_id in r["queued"]]
        assert len(queued) == len(set(queued)) == ENTRIES, "every entry queued once"
    listed = feeds.get(settings, feed["feed_id"], entries=ENTRIES)["entries"]
    assert sorted(e["job_id"] for e in listed) == sorted(queued)
    assert len({e["episode_id"] for e in listed}) == ENTRIES
    for job_id in queued:
        assert sum(e["kind"] == "started" and e["stage"] == "ingest" for e in jobs.events(settings, job_id)) == 1


def test_an_interactive_submit_is_accepted_with_the_queue_depth(tmp_path, monkeypatch):
    settings = use_config(tmp_path, monkeypatch, worker={"max_queued_jobs": 1})
    media = mediagen.silence_audio(tmp_path / "a.m4a", 0.5)
    env = dict(os.environ)

    def enqueue() -> dict:
        out = subprocess.run([sys.executable, "-m", "pipeline", "enqueue", str(media), "--json"], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    first, second = enqueue(), enqueue()
    assert (first["queue_depth"], first["max_queued_jobs"]) == (1, 1) and "full" in first["message"]
    assert second["queue_depth"] == 2 and "2 jobs are waiting" in second["message"]
    assert jobs.get(settings, second["job_id"])["status"] == "queued"
