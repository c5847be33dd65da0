"""Scale-out on one real PostgreSQL server (issue 16).

Consumers with their own ``CLIPDESK_HOST_ID`` share one database and one data dir; a consumer SIGKILLed
mid-render is replaced by the other's reaper; a PostgreSQL restart while a job transcribes is ridden out
as a retried write; ``db copy`` moves a SQLite installation and both backends then tell the same story.

Costs are kept low: one generated ~15 s talk, one 16x9 aspect (two renders per clip) at the ultrafast
preset, one or two short clips per episode; the two consumers are started once for the module.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from collections import Counter
from pathlib import Path

import mediagen
import pytest
from conftest import ROOT
from workers import Consumer, use_config, wait_for_end, wait_until

from pipeline import db, jobs
from pipeline.jobs import outage, runner
from pipeline.library import episodes
from pipeline.media import probe
from pipeline.media.render_graph import variants_for

pytestmark = [pytest.mark.slow, pytest.mark.model, pytest.mark.timeout(600)]

TALK = ("Small teams ship great software when they plan the work first. Every change gets a test before it is "
        "merged. Reviews are short and kind. When something breaks, the team writes down what they learned and "
        "fixes the cause.")
SHORT_TALK = "Small teams ship great software every single week. Every change gets a careful test before it ships."
ASPECT = "16x9"
VARIANTS = variants_for((ASPECT,))   # clean and subtitled: the cheapest honest render
ONE_CLIP = {"max_clips": 1, "min_clip_seconds": 2, "max_clip_seconds": 4, "aspects": [ASPECT]}
TWO_CLIPS = dict(ONE_CLIP, max_clips=2, max_clip_seconds=6)   # the ~15 s talk holds two
HOSTS = ("alpha", "beta")
EPISODES = 12


def _video(folder: Path, text: str) -> Path:
    """The text's sentences said one by one, 1.8 s apart: a pause that ends a sentence even when the
    model leaves the transcript unpunctuated (it did on the non-MKL kernels, and then no clip fit)."""
    sentences = [f"{part.strip()}." for part in text.split(".") if part.strip()]
    speech = folder / "talk.wav"
    mediagen.spoken_pieces(speech, sentences, [1.8] * (len(sentences) - 1))
    return mediagen.picture_with(speech, folder / "talk.mp4", width=320, height=180)


@pytest.fixture(scope="module")
def talk(tmp_path_factory) -> Path:
    """~15 s of espeak-ng speech over a small test pattern: room for two clips."""
    return _video(tmp_path_factory.mktemp("talk"), TALK)


@pytest.fixture(scope="module")
def short_talk(tmp_path_factory) -> Path:
    """~5 s of speech: one short clip."""
    return _video(tmp_path_factory.mktemp("short_talk"), SHORT_TALK)


def _pid_of(worker_id: str | None) -> int | None:
    """The process part of a worker id (``<host>:<pid>``, whatever the host part is)."""
    pid = (worker_id or "").rpartition(":")[2]
    return int(pid) if pid.isdigit() else None


def _kinds(settings, job_id) -> list[str]:
    return [e["kind"] for e in jobs.events(settings, job_id)]


def _units(settings, job_id) -> list:
    with db.session(settings.app_db) as conn:
        return db.list_units(conn, job_id)


def _check_renders(settings, episode_id: str, clips: int) -> None:
    """Exactly ``clips`` clips, in rows and folders, each with one probed file per variant and nothing else."""
    summary = episodes.summary(settings, episode_id)
    assert summary["status"] == "ready" and len(summary["clips"]) == clips, summary["clips"]
    clip_dirs = sorted((settings.data_dir / "episodes" / episode_id / "clips").iterdir())
    assert len(clip_dirs) == clips, clip_dirs
    assert not [p for p in (settings.data_dir / "episodes" / episode_id).rglob("*") if ".partial" in p.name]
    with db.session(settings.app_db) as conn:
        assert len(db.list_renders(conn, episode_id)) == clips * len(VARIANTS), "no duplicate render rows"
    for clip, folder in zip(sorted(summary["clips"], key=lambda c: c["clip_id"]), clip_dirs, strict=True):
        assert folder.name == clip["clip_id"]
        assert sorted(p.name for p in folder.glob("*.mp4")) == sorted(f"{v}.mp4" for v in VARIANTS)
        assert set(clip["renders"]) == set(VARIANTS)
        for path in clip["renders"].values():
            info = probe(path)
            assert (info.width, info.height) == (1920, 1080)
            assert info.video_codec == "h264" and info.has_audio and info.audio_codec == "aac"
            assert abs(info.duration - (clip["end"] - clip["start"])) < 0.5


# --- a database outage -----------------------------------------------------------------------------

def test_postgresql_restart_while_a_job_transcribes_is_a_retried_write_not_a_failure(
        tmp_path, monkeypatch, postgres_server, postgres_url, speech_video, talk):
    """Its own database and consumer, with a stale-after well above the outage: nothing may be reaped."""
    monkeypatch.setenv("CLIPDESK_DATABASE_URL", postgres_url)
    settings = use_config(tmp_path, monkeypatch, worker={"stale_after_seconds": 30.0})
    consumer = Consumer(settings, env={"CLIPDESK_HOST_ID": "alpha"}).start()
    try:
        job_id = consumer.cli("enqueue", str(speech_video), "--target-stage", "transcribe")["job_id"]
        wait_until(lambda: (j := jobs.get(settings, job_id))["stage"] == "transcribe" and j["status"] == "running"
                   and _stage_progress(settings, job_id) > 0, 180, 0.02, "the job to be transcribing")
        postgres_server.restart(down_for=2.0)
        job = wait_for_end(settings, job_id, 180)
        assert consumer.process.poll() is None, "the consumer rode the outage out"
        after = consumer.cli("enqueue", str(talk), "--target-stage", "transcribe")["job_id"]
        assert wait_for_end(settings, after, 180)["status"] == "succeeded"
    finally:
        consumer.stop()
    assert job["status"] == "succeeded", job
    events = jobs.events(settings, job_id)
    kinds = [e["kind"] for e in events]
    assert outage.RETRIED in kinds, kinds
    assert not {"retrying", "failed", "recovered"} & set(kinds), kinds
    retried = next(e for e in events if e["kind"] == outage.RETRIED)
    assert "unreachable" in retried["message"] and "went through" in retried["message"]


def _stage_progress(settings, job_id) -> float:
    with db.session(settings.app_db) as conn:
        return db.get_job(conn, job_id)["stage_progress"] or 0.0


# --- two consumers, one database, one data dir -----------------------------------------------------

@dataclasses.dataclass
class Cluster:
    settings: object
    consumers: dict[str, Consumer]

    def by_pid(self, pid: int | None) -> Consumer | None:
        return next((c for c in self.consumers.values() if c.pid == pid), None)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, postgres_server):
    """Two consumers (host ids alpha and beta, one task at a time each) on one PostgreSQL database and
    one data dir, with fast heartbeats and reaping (tests/workers.py)."""
    url = postgres_server.create_database("scale")
    folder = tmp_path_factory.mktemp("cluster")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CLIPDESK_DATABASE_URL", url)
        settings = use_config(folder, patch)
        assert settings.uses_postgres
        consumers = {host: Consumer(settings, name=host, env={"CLIPDESK_HOST_ID": host}) for host in HOSTS}
        try:
            for consumer in consumers.values():
                consumer.start()
            yield Cluster(settings, consumers)
        finally:
            for consumer in consumers.values():
                consumer.stop()
            postgres_server.start()
            postgres_server.drop_database(url)


def test_two_hosts_share_twelve_episodes_and_render_every_clip_exactly_once(cluster, short_talk):
    settings = cluster.settings
    job_ids = cluster.consumers["alpha"].enqueue_many([short_talk] * EPISODES, options=ONE_CLIP)
    holders = set()   # the worker ids seen holding a job or a clip

    def all_ended():
        unfinished = db.orphan_candidates(conn)
        holders.update(r["worker_id"] for r in [*unfinished, *db.unit_orphan_candidates(conn)] if r["worker_id"])
        return not {r["id"] for r in unfinished} & set(job_ids)
    with db.session(settings.app_db) as conn:   # one connection for every look (autocommit: each sees the latest)
        wait_until(all_ended, 400, 0.1, f"{EPISODES} jobs to end")
    finished = [jobs.get(settings, job_id) for job_id in job_ids]
    assert [j["status"] for j in finished] == ["succeeded"] * EPISODES, [j["error"] for j in finished]
    pids = {c.pid for c in cluster.consumers.values()}
    assert holders and {_pid_of(w) for w in holders} <= pids, (holders, pids)   # sampled every 0.1 s
    assert {w.rpartition(":")[0] for w in holders} <= set(HOSTS), holders   # worker ids carry worker.host_id
    with db.session(settings.app_db) as conn:   # every stage's events name the host that ran it
        hosts = Counter(e["host"] for job_id in job_ids for e in db.list_events(conn, job_id)
                        if e["host"] and e["kind"] in ("finished", "clip_finished"))
    assert set(hosts) == set(HOSTS), f"both consumers did work: {hosts}"
    assert all(c.process.poll() is None for c in cluster.consumers.values())

    for job in finished:
        units, kinds = _units(settings, job["job_id"]), _kinds(settings, job["job_id"])
        assert units and all(u["status"] == "done" and u["attempts"] == 1 for u in units), [dict(u) for u in units]
        assert kinds.count("clip_finished") == len(units), kinds
        assert not {"recovered", "interrupted", "retrying"} & set(kinds), kinds
        assert set(Counter(e["stage"] for e in jobs.events(settings, job["job_id"])
                           if e["kind"] == "finished").values()) == {1}, "every stage ran once"
        _check_renders(settings, job["episode_id"], len(units))


# --- SIGKILL mid-render: the other host's reaper takes over -----------------------------------------

def _reached(conn, job_id: int, kill_point):
    units = db.list_units(conn, job_id)
    assert not units or any(u["status"] in ("queued", "running") for u in units), \
        f"every clip ended before the kill point: {[dict(u) for u in units]}"
    return kill_point(units)


def _running(units, low: float, high: float, done: int):
    """A unit rendering between ``low`` and ``high`` of its progress while ``done`` others are done."""
    if sum(u["status"] == "done" for u in units) != done:
        return None
    return next((u for u in units if u["status"] == "running" and low <= u["progress"] < high), None)


# (what, predicate on the job's units -> the unit whose worker is killed); the first trial is the
# episode's first job, the others render its clips again (their renders forgotten, as a trim does).
KILL_POINTS = [
    ("right after the fan-out", lambda units: _running(units, 0.0, 0.3, done=0)),
    ("mid-clip", lambda units: _running(units, 0.45, 0.8, done=0)),
    # two clips render side by side and end close together: any progress (1.0 = probing and recording it)
    ("while the last clip renders", lambda units: _running(units, 0.0, 1.01, done=1)),
]


def test_sigkilled_host_mid_render_is_resumed_by_the_other_hosts_reaper_without_duplicates(cluster, talk):
    settings = cluster.settings
    alpha = cluster.consumers["alpha"]
    [job_id] = alpha.enqueue_many([talk], options=TWO_CLIPS)
    episode_id = jobs.get(settings, job_id)["episode_id"]
    for trial, (what, kill_point) in enumerate(KILL_POINTS):
        if trial:   # reprocess --from render renders only clips missing a render
            with db.session(settings.app_db) as conn:
                for clip in db.list_clips(conn, episode_id):
                    db.delete_clip_renders(conn, clip["id"])
            job_id = alpha.cli("reprocess", episode_id, "--from", "render")["job_id"]
        with db.session(settings.app_db) as conn:   # one connection for every look
            unit = wait_until(lambda p=kill_point, j=job_id: _reached(conn, j, p), 240, 0.03, what)
        victim = cluster.by_pid(_pid_of(unit["worker_id"]))
        assert victim is not None, dict(unit)
        victim.kill()
        job = wait_for_end(settings, job_id, 240)   # the victim stays down: the survivor finishes the job
        victim.start()
        assert job["status"] == "succeeded", (what, job)
        units, kinds = _units(settings, job_id), _kinds(settings, job_id)
        assert len(units) == 2 and all(u["status"] == "done" for u in units), (what, [dict(u) for u in units])
        attempts = sorted(u["attempts"] for u in units)
        assert attempts == [1, 2], (what, attempts)   # the killed clip rendered again, once
        assert kinds.count("recovered") == 1 and kinds.count("clip_finished") == 2, (what, kinds)
        [recovered] = [e for e in jobs.events(settings, job_id) if e["kind"] == "recovered"]
        assert "not been heard from" in recovered["message"], recovered   # another host: by heartbeat alone
        _check_renders(settings, episode_id, 2)
    for consumer in cluster.consumers.values():
        consumer.wait_ready()


# --- db copy: a SQLite installation moved into PostgreSQL ------------------------------------------

def test_db_copy_moves_a_populated_sqlite_install_and_both_backends_show_the_same(
        tmp_path, monkeypatch, postgres_url, talk):
    from media_server import MediaServer

    from pipeline.automation import feeds, webhooks
    from pipeline.library import review
    from pipeline.security import keys

    monkeypatch.delenv("CLIPDESK_DATABASE_URL", raising=False)
    settings = use_config(tmp_path, monkeypatch)
    assert not settings.uses_postgres
    with MediaServer() as server:
        server.rss("/feed.xml", [("guid-1", "Episode 1", "/media/ep1.mp4")])
        server.serve("/hook", b"ok", "text/plain")
        feed = feeds.add(settings, server.url("/feed.xml"))   # its one entry is marked seen, nothing queued
        episode_id, job_id = jobs.create(settings, str(talk), title="Moved", trusted_path=True,
                                         options=TWO_CLIPS)
        assert runner.run_until_done(settings, job_id) == "succeeded"
        hooked = dataclasses.replace(settings, webhooks=dataclasses.replace(settings.webhooks,
                                                                            urls=(server.url("/hook"),)))
        for thread in webhooks.notify_job_finished(hooked, job_id):
            thread.join(30)
        assert len(server.received("/hook")) == 1
    keys.create(settings, "moved key")
    clips = episodes.summary(settings, episode_id)["clips"]
    assert len(clips) == 2
    review.set_clip_status(settings, clips[0]["clip_id"], "rejected")

    on_sqlite = Consumer(settings)   # not started: the CLI as a machine with this config and environment
    on_postgres = Consumer(settings, env={"CLIPDESK_DATABASE_URL": postgres_url})
    copied = on_sqlite.cli("db", "copy", "--to", postgres_url)
    tables = copied["tables"]
    for table in ("episodes", "jobs", "job_events", "clips", "renders", "feeds", "feed_entries", "api_keys",
                  "webhook_deliveries"):
        assert tables[table]["source"] == tables[table]["target"] >= 1, (table, tables.get(table))

    before = {backend: (consumer.cli("episode", episode_id), consumer.cli("stats"))
              for backend, consumer in (("sqlite", on_sqlite), ("postgresql", on_postgres))}
    summary, stats = before["postgresql"]
    assert summary == before["sqlite"][0]
    assert _comparable(stats) == _comparable(before["sqlite"][1])
    assert [c["status"] for c in summary["clips"]].count("rejected") == 1
    moved = dataclasses.replace(settings, database=dataclasses.replace(settings.database, url=postgres_url))
    assert feeds.list_feeds(moved) == feeds.list_feeds(settings) and feeds.list_feeds(moved)[0]["feed_id"] == feed["feed_id"]
    assert webhooks.deliveries(moved, job_id) == webhooks.deliveries(settings, job_id) != []
    assert [k["name"] for k in keys.list_keys(moved)] == ["moved key"]

    again = subprocess.run([sys.executable, "-m", "pipeline", "db", "copy", "--to", postgres_url], cwd=ROOT,
                           env=on_sqlite.env, capture_output=True, text=True, timeout=60)
    assert again.returncode != 0 and "is not empty" in again.stderr + again.stdout, again
    assert "Traceback" not in again.stderr, again.stderr
    assert on_postgres.cli("episode", episode_id) == summary, "the refused copy changed nothing"
    assert _comparable(on_postgres.cli("stats")) == _comparable(stats)


# What honestly differs between the backends' ``stats``: the database's size (a SQLite file and its queue
# file vs a PostgreSQL database) and the disk's free space, which other processes change between two calls.
MEASURED_NOW = ("database", "queue_database", "free", "warning")


def _comparable(stats: dict) -> dict:
    disk = {k: v for k, v in stats["disk"].items() if k not in MEASURED_NOW}
    return dict(stats, disk=disk)
