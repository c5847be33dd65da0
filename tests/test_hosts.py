"""Workers across hosts (issue 16): host ids and the pid check only on its own host."""

import subprocess
import time

import pytest
from workers import use_config

from pipeline import db
from pipeline.config import load_settings
from pipeline.errors import ConfigError
from pipeline.jobs import workers


def _dead_pid() -> int:
    """A pid that names no process on this machine (a child that exited and was reaped)."""
    child = subprocess.Popen(["true"])
    child.wait()
    assert not workers.process_alive(child.pid)
    return child.pid


def _running_job(settings, worker_id: str, episode_id: str) -> int:
    """A job claimed by ``worker_id``, as the runner leaves it while a stage runs."""
    now = time.time()
    with db.session(settings.app_db_path) as conn, db.transaction(conn):
        db.insert_episode(conn, episode_id, "", "path", f"/nowhere/{episode_id}.mp4", now)
        job_id = db.insert_job(conn, episode_id, 50, "{}", now)
        assert db.start_job(conn, job_id, now, worker_id)
        db.set_job_stage(conn, job_id, "transcribe", 0.1, now)
    return job_id


def _events(settings, job_id: int) -> list[dict]:
    with db.session(settings.app_db_path) as conn:
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
