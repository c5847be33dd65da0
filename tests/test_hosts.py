"""Workers across hosts (issue 16): host ids, the pid check only on its own host, periodic work taken
by one consumer at a time through a lease in the database, and workers listed by host."""

import json
import subprocess
import sys
import threading
import time

import pytest
from conftest import ROOT
from media_server import MediaServer
from workers import Consumer, use_config, wait_until

from pipeline import db, jobs
from pipeline.automation import feeds
from pipeline.config import load_settings
from pipeline.errors import ConfigError
from pipeline.jobs import leases, workers


def _dead_pid() -> int:
    """A pid that names no process on this machine (a child that exited and was reaped)."""
    child = subprocess.Popen(["true"])
    child.wait()
    assert not workers.process_alive(child.pid)
    return child.pid


def _running_job(settings, worker_id: str, episode_id: str) -> int:
    """A job claimed by ``worker_id``, as the runner leaves it while a stage runs."""
    now = time.time()
    with db.session(settings.app_db) as conn, db.transaction(conn):
        db.insert_episode(conn, episode_id, "", "path", f"/nowhere/{episode_id}.mp4", now)
        job_id = db.insert_job(conn, episode_id, 50, "{}", now)
        assert db.start_job(conn, job_id, now, worker_id)
        db.set_job_stage(conn, job_id, "transcribe", 0.1, now)
    return job_id


def _events(settings, job_id: int) -> list[dict]:
    with db.session(settings.app_db) as conn:
        return [dict(e) for e in db.list_events(conn, job_id)]


# --- host id -----------------------------------------------------------------------------------

def test_host_id_comes_from_the_environment_then_the_config_then_the_hostname(tmp_path, monkeypatch):
    monkeypatch.delenv("CLIPDESK_HOST_ID", raising=False)
    settings = use_config(tmp_path, monkeypatch)
    import socket
    assert settings.worker.host_id == socket.gethostname()
    assert workers.worker_id(settings, 42) == f"{socket.gethostname()}:42"

    settings = use_config(tmp_path, monkeypatch, worker={"host_id": "render-box-2"})
    assert workers.worker_id(settings, 42) == "render-box-2:42"
    monkeypatch.setenv("CLIPDESK_HOST_ID", "gpu.node_7")
    assert load_settings().worker.host_id == "gpu.node_7"   # the environment wins
    assert workers.host_of(workers.worker_id(load_settings())) == "gpu.node_7"


@pytest.mark.parametrize("value", ["box:1", "-leading-dash", "x" * 64, "has space", "ünï"])
def test_a_host_id_that_would_make_worker_ids_ambiguous_is_refused_by_name(tmp_path, monkeypatch, value):
    monkeypatch.delenv("CLIPDESK_HOST_ID", raising=False)
    with pytest.raises(ConfigError, match=r"worker\.host_id: must be 1 to 63 letters.*no colon"):
        use_config(tmp_path, monkeypatch, worker={"host_id": value})
    use_config(tmp_path, monkeypatch)
    monkeypatch.setenv("CLIPDESK_HOST_ID", value)
    with pytest.raises(ConfigError, match="CLIPDESK_HOST_ID: must be"):
        load_settings()


def test_a_pid_is_checked_only_on_its_own_host(tmp_path, monkeypatch):
    """A dead pid here means nothing for a worker of another host: only its heartbeat counts."""
    monkeypatch.setenv("CLIPDESK_HOST_ID", "alpha")
    settings = use_config(tmp_path, monkeypatch, worker={"heartbeat_seconds": 1.0, "stale_after_seconds": 10.0})
    pid, now = _dead_pid(), time.time()
    fresh, stale = now - 2, now - 11
    assert "has exited" in workers.lost(settings, {"worker_id": f"alpha:{pid}", "heartbeat_at": fresh,
                                                   "started_at": now - 60}, now)
    assert workers.lost(settings, {"worker_id": f"beta:{pid}", "heartbeat_at": fresh, "started_at": now - 60},
                        now) is None
    assert "not been heard from for 11 s" in workers.lost(
        settings, {"worker_id": f"beta:{pid}", "heartbeat_at": stale, "started_at": now - 60}, now)
    # a host whose name ends like ours is another host
    assert workers.lost(settings, {"worker_id": f"xalpha:{pid}", "heartbeat_at": fresh, "started_at": None},
                        now) is None


# --- leases --------------------------------------------------------------------------------------

def test_a_lease_refuses_a_second_holder_lets_its_holder_back_in_and_expires(backend_settings):
    with db.session(backend_settings.app_db) as conn:
        assert db.acquire_lease(conn, "feeds", "alpha:1", 1000.0, 1030.0)
        assert not db.acquire_lease(conn, "feeds", "beta:2", 1010.0, 1040.0)      # held: refused
        assert db.get_lease(conn, "feeds")["holder"] == "alpha:1"
        assert db.acquire_lease(conn, "feeds", "alpha:1", 1020.0, 1050.0)         # re-entrance extends it
        assert db.get_lease(conn, "feeds")["expires_at"] == 1050.0
        assert not db.acquire_lease(conn, "feeds", "beta:2", 1049.0, 1079.0)
        assert db.acquire_lease(conn, "other", "beta:2", 1049.0, 1079.0)          # names are independent
        assert db.acquire_lease(conn, "feeds", "beta:2", 1051.0, 1081.0)          # expired: taken over
        assert db.get_lease(conn, "feeds")["holder"] == "beta:2"
        assert not db.renew_lease(conn, "feeds", "alpha:1", 1090.0)              # the old holder lost it
        db.release_lease(conn, "feeds", "alpha:1")                                # ...and cannot free it
        assert db.get_lease(conn, "feeds")["holder"] == "beta:2"
        assert db.renew_lease(conn, "feeds", "beta:2", 1090.0)
        db.release_lease(conn, "feeds", "beta:2")
        assert db.get_lease(conn, "feeds") is None
        assert db.acquire_lease(conn, "feeds", "alpha:1", 1060.0, 1090.0)         # released: free at once


def test_a_held_lease_is_renewed_while_its_work_runs_and_released_even_when_the_work_fails(tmp_path, monkeypatch):
    settings = use_config(tmp_path, monkeypatch, worker={"heartbeat_seconds": 0.2, "stale_after_seconds": 1.0})

    def other_takes_it() -> bool:
        with db.session(settings.app_db) as conn:
            now = time.time()
            return db.acquire_lease(conn, leases.AUTOMATION, "beta:2", now, now + 1.0)

    with leases.Lease(settings, leases.AUTOMATION, "alpha:1") as taken:
        assert taken
        deadline = time.monotonic() + 2.5   # 2.5x the lease's lifetime: only renewals keep it
        while time.monotonic() < deadline:
            assert not other_takes_it()
            time.sleep(0.1)
    assert other_takes_it()   # released at the end, not left to expire
    with leases.Lease(settings, leases.AUTOMATION, "alpha:1") as taken:
        assert not taken   # beta holds it now
    with db.session(settings.app_db) as conn:
        db.release_lease(conn, leases.AUTOMATION, "beta:2")

    with pytest.raises(RuntimeError), leases.Lease(settings, leases.RETENTION, "alpha:1") as taken:
        assert taken
        raise RuntimeError("the work failed")
    with leases.Lease(settings, leases.RETENTION, "gamma:3") as taken:
        assert taken


def test_threads_of_one_worker_do_not_run_the_same_periodic_work_at_once(tmp_path, monkeypatch):
    settings = use_config(tmp_path, monkeypatch)
    inside, results = threading.Event(), []
    release = threading.Event()

    def hold():
        with leases.Lease(settings, leases.REAPER) as taken:
            results.append(taken)
            inside.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    assert inside.wait(10)
    with leases.Lease(settings, leases.REAPER) as taken:   # same worker id, other thread
        results.append(taken)
    release.set()
    holder.join()
    assert results == [True, False]


def test_a_killed_holder_blocks_the_work_only_until_its_lease_expires(tmp_path, monkeypatch):
    settings = use_config(tmp_path, monkeypatch, worker={"heartbeat_seconds": 0.2, "stale_after_seconds": 1.0})
    script = ("import os, sys, time\nfrom pipeline.config import load_settings\nfrom pipeline.jobs import leases\n"
              "with leases.Lease(load_settings(), 'automation') as taken:\n"
              "    print(taken, flush=True)\n    os.kill(os.getpid(), 9)\n")
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "True" and out.returncode == -9
    with db.session(settings.app_db) as conn:
        dead = db.get_lease(conn, leases.AUTOMATION)
        assert dead is not None and dead["holder"] != workers.worker_id(settings)   # left behind by the kill
    with leases.Lease(settings, leases.AUTOMATION) as taken:
        assert not taken or time.time() > dead["expires_at"]
    wait_until(lambda: time.time() > dead["expires_at"], timeout=5, what="the dead holder's lease to expire")
    with leases.Lease(settings, leases.AUTOMATION) as taken:
        assert taken


# --- workers by host ------------------------------------------------------------------------------

def test_stats_list_workers_by_host_with_slots_heartbeat_age_and_liveness(tmp_path, monkeypatch):
    """Rows as the consumers' heartbeat writes them: alpha runs two consumers, beta's one fell silent."""
    settings = use_config(tmp_path, monkeypatch, worker={"heartbeat_seconds": 1.0, "stale_after_seconds": 10.0})
    now = time.time()
    with db.session(settings.app_db) as conn:
        db.worker_heartbeat(conn, "beta:7", now - 60, threads=4)
        db.worker_heartbeat(conn, "alpha:12", now - 2, threads=1)
        db.worker_heartbeat(conn, "alpha:11", now - 1, threads=2)
    hosts = jobs.stats(settings)["workers_by_host"]
    assert [(h["host"], h["status"], h["consumers_alive"], h["slots_alive"]) for h in hosts] == [
        ("alpha", "alive", 2, 3), ("beta", "stale", 0, 0)]
    assert hosts[0]["last_heartbeat_age"] == pytest.approx(1, abs=1)
    assert hosts[1]["last_heartbeat_age"] == pytest.approx(60, abs=1)
    assert [(c["worker_id"], c["slots"], c["status"]) for h in hosts for c in h["consumers"]] == [
        ("alpha:11", 2, "alive"), ("alpha:12", 1, "alive"), ("beta:7", 4, "stale")]   # newest heartbeat first

    out = subprocess.run([sys.executable, "-m", "pipeline", "stats"], cwd=ROOT, capture_output=True, text=True,
                         timeout=60, check=True).stdout
    assert "  alpha: alive, 2 consumer(s) with 3 slot(s) alive" in out
    assert "  beta: stale, 0 consumer(s) with 0 slot(s) alive" in out
    assert "    beta:7" in out and "4 slot(s)  stale" in out


# --- real consumers on two "hosts" -----------------------------------------------------------------

def _consumer(settings, host_id: str) -> Consumer:
    consumer = Consumer(settings)
    consumer.env["CLIPDESK_HOST_ID"] = host_id
    return consumer


@pytest.mark.slow
def test_two_hosts_consumers_carry_their_host_and_a_foreign_dead_pid_waits_for_its_heartbeat(tmp_path,
                                                                                              monkeypatch):
    monkeypatch.setenv("CLIPDESK_HOST_ID", "alpha")
    settings = use_config(tmp_path, monkeypatch)
    alpha, beta = _consumer(settings, "alpha").start(), _consumer(settings, "beta").start()
    try:
        expected = {f"alpha:{alpha.pid}", f"beta:{beta.pid}"}
        rows = wait_until(lambda: (ids := {w["worker_id"] for h in jobs.stats(settings)["workers_by_host"]
                                           for w in h["consumers"]}) >= expected and ids,
                          timeout=60, what="both consumers' heartbeats")
        assert rows == expected

        stats = json.loads(subprocess.run([sys.executable, "-m", "pipeline", "stats", "--json"], cwd=ROOT,
                                          env=alpha.env, capture_output=True, text=True, timeout=60,
                                          check=True).stdout)["workers_by_host"]
        assert [h["host"] for h in stats] == ["alpha", "beta"]
        for host, consumer in zip(stats, (alpha, beta), strict=True):
            assert host["status"] == "alive" and host["consumers_alive"] == 1 and host["slots_alive"] == 1
            assert host["last_heartbeat_age"] <= settings.worker.stale_after_seconds
            assert [(c["worker_id"], c["slots"], c["status"]) for c in host["consumers"]] == [
                (f"{host['host']}:{consumer.pid}", 1, "alive")]

        # The same dead pid, once as alpha's worker and once as gamma's (a machine with no consumer here).
        dead = _dead_pid()
        local = _running_job(settings, f"alpha:{dead}", "local")
        foreign = _running_job(settings, f"gamma:{dead}", "foreign")
        touch = workers.Heartbeat(settings, "gamma", lambda conn, now: db.touch_job(conn, foreign, now))
        with touch:   # gamma keeps beating, as a live worker on another machine would
            events = wait_until(lambda: [e for e in jobs.events(settings, local) if e["kind"] == "recovered"],
                                timeout=30, what="alpha's reaper to take back its dead worker's job")
            assert f"worker process {dead} has exited" in events[0]["message"]
            time.sleep(2 * settings.worker.reap_seconds + settings.worker.heartbeat_seconds)   # reapers ran again
            assert jobs.get(settings, foreign)["status"] == "running"
            assert not [e for e in jobs.events(settings, foreign) if e["kind"] == "recovered"]
        events = wait_until(lambda: [e for e in jobs.events(settings, foreign) if e["kind"] == "recovered"],
                            timeout=30, what="gamma's job to be taken back once its heartbeat is stale")
        assert "has not been heard from" in events[0]["message"] and "exited" not in events[0]["message"]
        for job_id in (local, foreign):   # dispatched again: a consumer of alpha or beta started it
            started = wait_until(lambda j=job_id: [e for e in _events(settings, j) if e["kind"] == "started"],
                                 timeout=60, what=f"job {job_id} to start again")
            assert {e["host"] for e in started} <= {"alpha", "beta"}   # stage events record the host id
    finally:
        alpha.stop()
        beta.stop()
    assert jobs.stats(settings)["workers_by_host"] == []   # a stopped consumer removes its row


def _feed(settings, feed_id: int) -> dict:
    with db.session(settings.app_db) as conn:
        return dict(db.get_feed(conn, feed_id))


def _ticks_done(log: str) -> int:
    """Automation ticks that have ended, by Huey's log line ``queue_worker.automation_tick: <id> executed in``."""
    return sum(1 for line in log.splitlines() if "queue_worker.automation_tick" in line and " executed in " in line)


@pytest.mark.slow
def test_two_consumers_check_a_due_feed_once_not_twice(tmp_path, monkeypatch):
    """Both consumers' schedulers queue the minute tick at start; one takes it, the other skips it."""
    settings = use_config(tmp_path, monkeypatch)
    with MediaServer() as server:
        server.rss("/feed.xml", [("guid-1", "Episode 1", "/ep1.mp4")])
        feed = feeds.add(settings, server.url("/feed.xml"))   # lists it once; its entry is seen, nothing queued
        per_check = len(server.received("/feed.xml", "GET"))
        assert per_check >= 1
        due = time.time()
        with db.session(settings.app_db) as conn:   # due now (as if interval_minutes had passed)
            db.set_feed_checked(conn, feed["feed_id"], "", due, due - 15 * 60)
        server.slow("/feed.xml", 3.0)   # a slow feed host: both ticks would be inside the check together
        first, second = _consumer(settings, "alpha"), _consumer(settings, "beta")
        first.start()
        second.start()
        try:
            wait_until(lambda: _ticks_done(first.log()) >= 2, timeout=90, what="both consumers' automation ticks")
            checked = wait_until(lambda: (row := _feed(settings, feed["feed_id"]))["last_checked_at"] > due and row,
                                 timeout=30, what="the feed check")
            time.sleep(1.0)
        finally:
            first.stop()
            second.stop()
        assert len(server.received("/feed.xml", "GET")) == 2 * per_check   # the add, then one check
        assert checked["next_check_at"] > time.time() + 10 * 60   # the one check scheduled the next period
