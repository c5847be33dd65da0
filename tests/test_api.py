"""The HTTP API (issue 15) against a real uvicorn subprocess and a real consumer: submit by upload,
URL and server path, follow /v1/events (and resume it with Last-Event-ID), cancel a running render
and retry it, download renders with Range requests, idempotent submits, auth, bad requests,
and /metrics against the database."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import httpx
import mediagen
import pytest
import srt
from api_server import ApiServer, sse
from conftest import ROOT
from media_server import MediaServer
from prometheus_client.parser import text_string_to_metric_families
from workers import Consumer, ffmpeg_pids, wait_until, write_config

from pipeline import db, jobs
from pipeline.config import load_settings
from pipeline.jobs.states import STAGES
from pipeline.media import probe

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]
UPLOAD_LIMIT_MB = 16
PROGRESS_INTERVAL = 0.5


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """One data dir, one consumer and one API server for the whole module (the tests build on each other)."""
    root = tmp_path_factory.mktemp("api")
    allowed = root / "allowed"
    allowed.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        config = write_config(root, paths={"allowed_source_dirs": [str(allowed)]},
                              api={"max_upload_mb": UPLOAD_LIMIT_MB, "event_poll_seconds": 0.1,
                                   "progress_interval_seconds": PROGRESS_INTERVAL, "keepalive_seconds": 1.0})
        mp.setenv("CLIPDESK_CONFIG", str(config))
        mp.setenv("CLIPDESK_DATA_DIR", str(root / "data"))
        settings = load_settings()
        consumer = Consumer(settings).start()
        server = ApiServer(settings).start()
        client = httpx.Client(base_url=server.url, timeout=30)
        try:
            yield {"settings": settings, "server": server, "client": client, "allowed": allowed, "root": root,
                   "consumer": consumer, "state": {}}
        finally:
            client.close()
            server.stop()
            consumer.stop()


def problem(response: httpx.Response, status: int, *words: str) -> dict:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    body = response.json()
    assert body["status"] == status and body["title"] and body["detail"]
    for word in words:
        assert word.lower() in body["detail"].lower(), (word, body["detail"])
    return body


def follow(client, job_id: int, headers: dict | None = None, stop_after: int | None = None,
           progress: list | None = None, episode_id: str | None = None) -> list[dict]:
    """The job's stored events off /v1/events until it ends (or ``stop_after`` of them); the progress
    samples, with their arrival times, go to ``progress``. With ``episode_id`` the stream is the
    episode's (every job of it) and ends when this job does."""
    seen = []
    query = f"episode_id={episode_id}" if episode_id else f"job_id={job_id}"
    for message in sse(client, f"/v1/events?{query}", headers):
        assert {"job_id", "episode_id", "status", "stage", "progress"} <= set(message["data"])
        if episode_id:
            assert message["data"]["episode_id"] == episode_id
            if message["data"]["job_id"] != job_id:
                seen.append(message)
                continue
        assert message["data"]["job_id"] == job_id
        if "id" not in message:
            assert message["event"] == "job.progress" and 0 <= message["data"]["progress"] <= 1
            if progress is not None:
                progress.append((time.monotonic(), message["data"]["progress"]))
            continue
        seen.append(message)
        if message["data"]["status"] in jobs.FINAL_STATUSES or (stop_after and len(seen) >= stop_after):
            return seen
    raise AssertionError("the stream ended")


def stored_ids(client, job_id: int) -> list[int]:
    return [e["id"] for e in client.get(f"/v1/jobs/{job_id}/events").json()["events"]]


@pytest.mark.model
def test_upload_is_processed_and_every_render_downloads_whole_and_in_ranges(stack, media_dir):
    client = stack["client"]
    video = mediagen.speech_video(media_dir / "api-upload.mp4")
    with open(video, "rb") as f:
        response = client.post("/v1/episodes", files={"file": ("talk.mp4", f, "video/mp4")},
                               data={"max_clips": "1", "aspects": "9x16", "title": "API upload"})
    assert response.status_code == 202, response.text
    job = response.json()
    assert response.headers["location"] == f"/v1/jobs/{job['job_id']}" and job["status"] == "queued"

    started_at, samples = time.monotonic(), []
    events = follow(client, job["job_id"], progress=samples)
    assert events[-1]["event"] == "job.succeeded" and events[-1]["data"]["progress"] == 1
    # progress is sampled live, rate-limited: at most one per api.progress_interval_seconds (0.5 s here)
    assert len(samples) >= 3 and len(samples) <= (time.monotonic() - started_at) / PROGRESS_INTERVAL + 2
    started = [e["data"]["stage"] for e in events if e["event"] == "stage.started"]
    assert started == list(STAGES)                                      # every stage, in order, once
    assert [int(e["id"]) for e in events] == stored_ids(client, job["job_id"])

    episode = client.get(f"/v1/episodes/{job['episode_id']}").json()
    assert episode["title"] == "API upload" and len(episode["clips"]) == 1
    stack["state"].update(episode_id=job["episode_id"], clip_id=episode["clips"][0]["clip_id"])
    for clip in episode["clips"]:
        assert set(clip["renders"]) == {"clean_9x16", "subtitled_9x16"}
        for variant in clip["renders"]:
            url = f"/v1/clips/{clip['clip_id']}/renders/{variant}"
            whole = client.get(url)
            assert whole.status_code == 200 and whole.headers["content-type"] == "video/mp4"
            assert whole.headers["accept-ranges"] == "bytes" and whole.headers["etag"]
            path = stack["root"] / f"{clip['clip_id']}-{variant}.mp4"
            path.write_bytes(whole.content)
            info = probe(path)
            assert (info.width, info.height) == (1080, 1920) and info.has_audio
            assert info.duration == pytest.approx(clip["end"] - clip["start"], abs=0.5)
            part = client.get(url, headers={"Range": "bytes=100-1099"})
            assert part.status_code == 206 and part.content == whole.content[100:1100]
            assert part.headers["content-range"] == f"bytes 100-1099/{len(whole.content)}"
            tail = client.get(url, headers={"Range": "bytes=-500", "If-Range": whole.headers["etag"]})
            assert tail.status_code == 206 and tail.content == whole.content[-500:]

    cues = list(srt.parse(client.get(f"/v1/episodes/{job['episode_id']}/transcript.srt").text))
    assert cues and cues[-1].end.total_seconds() <= episode["duration"] + 0.5
    audio = client.get(f"/v1/episodes/{job['episode_id']}/audio")
    assert audio.status_code == 200 and audio.content[:4] == b"RIFF"
    source = client.get(f"/v1/episodes/{job['episode_id']}/source")
    assert hashlib.sha256(source.content).digest() == hashlib.sha256(video.read_bytes()).digest()


@pytest.mark.model
def test_transcript_only_url_job_and_a_stream_resumed_with_last_event_id(stack, media_dir):
    client = stack["client"]
    audio = mediagen.speech_audio(media_dir / "api-talk.mp3")
    with MediaServer() as server:
        server.serve("/talk.mp3", audio.read_bytes(), "audio/mpeg")
        server.serve("/hook", b"ok", "text/plain")
        response = client.post("/v1/episodes", json={"source": server.url("/talk.mp3"), "target_stage": "transcribe",
                                                     "webhook_url": server.url("/hook")})
        assert response.status_code == 202, response.text
        job_id = response.json()["job_id"]
        first = follow(client, job_id, stop_after=3)                     # disconnect mid-job
        rest = follow(client, job_id, headers={"Last-Event-ID": first[-1]["id"]})
        again = client.post("/v1/episodes", json={"source": server.url("/talk.mp3")})
        hooks = wait_until(lambda: server.received("/hook"), 30, 0.1, "the job's webhook")
    assert json.loads(hooks[0].body)["event"] == "job.succeeded" and json.loads(hooks[0].body)["job"]["job_id"] == job_id
    ids = [int(m["id"]) for m in first + rest]
    assert ids == stored_ids(client, job_id) and len(set(ids)) == len(ids)   # no gap, no repeat
    assert rest[-1]["event"] == "job.succeeded"
    stages = {m["data"]["stage"] for m in first + rest if m["event"] == "stage.finished"}
    assert stages == {"ingest", "extract_audio", "transcribe"}            # stopped after transcribe
    episode = client.get(f"/v1/episodes/{response.json()['episode_id']}").json()
    stack["state"]["transcript_episode_id"] = episode["episode_id"]
    assert episode["clips"] == [] and set(episode["transcript"]) == {"json", "srt", "vtt", "txt"}
    assert len(client.get(f"/v1/episodes/{episode['episode_id']}/transcript.txt").text.split()) > 20
    assert client.get(f"/v1/episodes/{episode['episode_id']}/transcript.vtt").text.startswith("WEBVTT")
    # the same URL again: the existing episode, no second job
    assert again.status_code == 200 and again.json()["duplicate_of"] == episode["episode_id"]
    assert again.headers["location"] == f"/v1/episodes/{episode['episode_id']}"


@pytest.mark.model
def test_cancel_a_running_render_stops_ffmpeg_and_retry_finishes_it(stack):
    client, settings = stack["client"], stack["settings"]
    episode_id, clip_id = stack["state"]["episode_id"], stack["state"]["clip_id"]
    clip = client.patch(f"/v1/clips/{clip_id}", json={"reframe": "fit", "status": "approved"})
    assert clip.status_code == 200 and clip.json()["reframe"] == "fit" and clip.json()["renders"] == {}
    job_id = client.get("/v1/jobs", params={"search": episode_id}).json()["jobs"][0]["job_id"]   # the re-render
    wait_until(lambda: ffmpeg_pids(str(settings.data_dir)), 120, 0.05, "a render's ffmpeg")
    problem(client.post(f"/v1/jobs/{job_id}/retry"), 409, f"job {job_id}", "running")
    cancelled_at = time.monotonic()
    assert client.post(f"/v1/jobs/{job_id}/cancel").status_code == 200
    wait_until(lambda: not ffmpeg_pids(str(settings.data_dir)), 5, 0.05, "ffmpeg to stop")
    assert time.monotonic() - cancelled_at < 5
    wait_until(lambda: client.get(f"/v1/jobs/{job_id}").json()["status"] == "cancelled", 30, 0.1, "cancelled")
    problem(client.post(f"/v1/jobs/{job_id}/cancel"), 409, "cancelled", "nothing to cancel")

    seen = stored_ids(client, job_id)[-1]
    retried = client.post(f"/v1/jobs/{job_id}/retry")
    assert retried.status_code == 200 and retried.json()["status"] == "queued"
    assert retried.json()["priority"] == jobs.PRIORITY_RETRY            # ahead of routine work
    after_retry = follow(client, job_id, headers={"Last-Event-ID": str(seen)})
    assert after_retry[0]["event"] == "job.queued" and after_retry[-1]["event"] == "job.succeeded"
    clips = client.get(f"/v1/episodes/{episode_id}/clips").json()["clips"]
    assert clips and all(set(c["renders"]) == {"clean_9x16", "subtitled_9x16"} for c in clips)
    bundle = client.get(f"/v1/episodes/{episode_id}/approved.zip")          # the approved clip, ready to post
    assert bundle.status_code == 200 and bundle.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(bundle.content)) as archive:
        assert sorted(Path(n).name for n in archive.namelist() if n.endswith(".mp4")) == \
            ["clean_9x16.mp4", "subtitled_9x16.mp4"]


def test_idempotency_key_returns_the_first_answer(stack, media_dir):
    client, settings = stack["client"], stack["settings"]
    path = mediagen.tone_audio(stack["allowed"] / "tone.wav", 3)
    body = {"source": str(path), "target_stage": "transcribe", "priority": 1}
    first = client.post("/v1/episodes", json=body, headers={"Idempotency-Key": "nightly-42"})
    second = client.post("/v1/episodes", json=body, headers={"Idempotency-Key": "nightly-42"})
    assert first.status_code == second.status_code == 202
    assert first.json()["job_id"] == second.json()["job_id"]
    assert first.headers["location"] == second.headers["location"]
    problem(client.post("/v1/episodes", json=dict(body, title="other"), headers={"Idempotency-Key": "nightly-42"}),
            409, "nightly-42", "different request")
    with db.session(settings.app_db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM episodes WHERE source_uri = ?", (str(path),)).fetchone()[0] == 1
    other = client.post("/v1/episodes", json=body, headers={"Idempotency-Key": "nightly-43"})
    assert other.status_code == 202 and other.json()["job_id"] != first.json()["job_id"]
    for job_id in (first.json()["job_id"], other.json()["job_id"]):
        wait_until(lambda j=job_id: client.get(f"/v1/jobs/{j}").json()["status"] in jobs.FINAL_STATUSES, 120,
                   0.2, f"job {job_id}")

    # the job list: filters and a cursor that pages through every job once
    listed, cursor = [], None
    while True:
        page = client.get("/v1/jobs", params={"limit": 2, **({"before": cursor} if cursor else {})}).json()
        listed += [j["job_id"] for j in page["jobs"]]
        if not (cursor := page["next"]):
            break
    with db.session(settings.app_db) as conn:
        assert listed == [r[0] for r in conn.execute("SELECT id FROM jobs ORDER BY id DESC")]
    mine = client.get("/v1/jobs", params={"episode_id": first.json()["episode_id"], "status": "succeeded",
                                          "stage": "transcribe", "created_since": "2000-01-01T00:00:00Z"}).json()
    assert [j["job_id"] for j in mine["jobs"]] == [first.json()["job_id"]]
    assert client.get("/v1/jobs", params={"created_since": "2999-01-01T00:00:00"}).json()["jobs"] == []


def test_episodes_are_listed_edited_reprocessed_deleted_and_restored(stack):
    client, settings = stack["client"], stack["settings"]
    episode_id = stack["state"]["transcript_episode_id"]
    pages, cursor = [], None
    while True:
        page = client.get("/v1/episodes", params={"limit": 1, **({"after": cursor} if cursor else {})}).json()
        pages += [e["episode_id"] for e in page["episodes"]]
        if not (cursor := page["next"]):
            break
    assert episode_id in pages and len(pages) == len(set(pages)) >= 3
    edited = client.patch(f"/v1/episodes/{episode_id}", json={"title": "Edited by a script", "summary": "Short.",
                                                                 "keywords": ["api", "test"]}).json()
    assert (edited["title"], edited["enrichment"]["summary"], edited["enrichment"]["keywords"]) == \
        ("Edited by a script", "Short.", ["api", "test"])
    assert [e["episode_id"] for e in client.get("/v1/episodes", params={"search": "Edited by"}).json()["episodes"]] \
        == [episode_id]

    redo = client.post(f"/v1/episodes/{episode_id}/reprocess", json={"from_stage": "enrich", "target_stage": "enrich",
                                                                     "max_clips": 1})
    assert redo.status_code == 202 and redo.headers["location"] == f"/v1/jobs/{redo.json()['job_id']}"
    every = follow(client, redo.json()["job_id"], episode_id=episode_id)   # the episode's stream: both jobs
    assert {m["data"]["job_id"] for m in every} == {redo.json()["job_id"], *(
        j["job_id"] for j in client.get("/v1/jobs", params={"episode_id": episode_id}).json()["jobs"])}
    events = [m for m in every if m["data"]["job_id"] == redo.json()["job_id"]]
    assert events[-1]["event"] == "job.succeeded"
    assert {e["data"]["stage"] for e in events if e["event"] == "stage.skipped"} == \
        {"ingest", "extract_audio", "transcribe"}                            # nothing downloaded again
    assert [e["data"]["stage"] for e in events if e["event"] == "stage.finished"] == ["enrich"]

    assert client.delete(f"/v1/episodes/{episode_id}").json()["deleted"] == "soft"
    assert episode_id not in [e["episode_id"] for e in client.get("/v1/episodes").json()["episodes"]]
    hidden = client.get("/v1/episodes", params={"include_deleted": True}).json()["episodes"]
    assert [e["deleted"] for e in hidden if e["episode_id"] == episode_id] == [True]
    assert client.post(f"/v1/episodes/{episode_id}/restore").json()["episode_id"] == episode_id
    assert episode_id in [e["episode_id"] for e in client.get("/v1/episodes").json()["episodes"]]

    folder = settings.data_dir / "episodes" / episode_id
    assert folder.is_dir()
    assert client.delete(f"/v1/episodes/{episode_id}", params={"hard": True}).json()["deleted"] == "hard"
    problem(client.get(f"/v1/episodes/{episode_id}"), 404, episode_id)
    assert not folder.exists()
    with db.session(settings.app_db) as conn:                   # nothing orphaned
        for table in ("jobs", "clips", "stage_checkpoints"):
            assert conn.execute(f"SELECT COUNT(*) FROM {table} WHERE episode_id = ?",   # noqa: S608
                                (episode_id,)).fetchone()[0] == 0
        assert conn.execute("SELECT COUNT(*) FROM job_events WHERE job_id NOT IN (SELECT id FROM jobs)"
                            ).fetchone()[0] == 0


def _state(settings) -> tuple:
    """Every row of the app database and every file of the data dir, to show nothing changed."""
    with db.session(settings.app_db) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"
                                             " AND name NOT IN ('workers')")]
        rows = {t: conn.execute(f"SELECT * FROM {t}").fetchall() for t in tables}   # noqa: S608 - table names
    files = sorted(str(p.relative_to(settings.data_dir)) for p in settings.data_dir.rglob("*")
                   if p.is_file() and not p.name.startswith(("clipdesk.db", "queue.db")))
    return rows, files


def _chunked_multipart(size: int):
    """A multipart body sent without Content-Length (chunked), ``size`` bytes of file."""
    yield b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="big.mp4"\r\n\r\n'
    for _ in range(size // (1 << 20)):
        yield b"\0" * (1 << 20)
    yield b"\r\n--XyZ--\r\n"


def test_bad_requests_get_a_specific_problem_and_change_nothing(stack, media_dir):
    client, settings = stack["client"], stack["settings"]
    clip_id, episode_id = stack["state"].get("clip_id", "nope"), stack["state"].get("episode_id", "nope")
    outside = mediagen.tone_audio(stack["root"] / "outside.wav", 1)
    before = _state(settings)
    big = UPLOAD_LIMIT_MB + 2
    cases = [
        (client.post("/v1/episodes", json={"source": "https://example.com/a.mp4", "colour": "red"}), 422, "colour"),
        (client.post("/v1/episodes", json={"source": "https://example.com/a.mp4", "max_clips": "many"}), 422,
         "max_clips"),
        (client.post("/v1/episodes", json={"source": "https://example.com/a.mp4", "min_clip_seconds": -5}), 422,
         "min_clip_seconds"),
        (client.post("/v1/episodes", json={"source": "https://example.com/a.mp4", "reframe": "zoom"}), 422,
         "reframe"),
        (client.post("/v1/episodes", json={"source": "https://example.com/a.mp4", "target_stage": "enrich",
                                           "full_episode": True}), 422, "full_episode"),
        (client.post("/v1/episodes", json={"source": str(outside)}), 422, "outside the folders"),
        (client.post("/v1/episodes", json={"source": str(stack["allowed"] / "missing.mp4")}), 422, "not found"),
        (client.post("/v1/episodes", json={"source": "ftp://example.com/a.mp4"}), 422, "http"),
        (client.post("/v1/episodes", json={"title": "no source"}), 422, "source"),
        (client.post("/v1/episodes", content=b"{not json", headers={"content-type": "application/json"}), 400,
         "not valid JSON"),
        (client.post("/v1/episodes", content=b"--XyZ\r\nbroken", headers={"content-type": "multipart/form-data"}),
         400, "boundary"),
        (client.post("/v1/episodes", files={"media": ("a.mp4", b"abc")}), 422, "'file'"),
        (client.post("/v1/episodes", files={"file": ("a.mp4", b"\0" * (big << 20))}), 413, "api.max_upload_mb"),
        (client.post("/v1/episodes", content=_chunked_multipart(big << 20),
                     headers={"content-type": "multipart/form-data; boundary=XyZ"}), 413, f"{UPLOAD_LIMIT_MB} MB"),
        (client.post("/v1/episodes", content=b"source=x", headers={"content-type": "text/plain"}), 415, "text/plain"),
        (client.get("/v1/jobs", params={"status": "done"}), 422, "unknown status 'done'"),
        (client.post("/v1/episodes", json={"source": "https://example.com/a.mp4", "webhook_url": "file:///x"}), 422,
         "webhook_url"),
        (client.get("/v1/jobs/999999"), 404, "no job 999999"),
        (client.get("/v1/jobs/abc"), 422, "job_id"),
        (client.get("/v1/episodes/nope"), 404, "no episode nope"),
        (client.get("/v1/clips/nope/renders/clean_9x16"), 404, "no clip nope"),
        (client.get(f"/v1/clips/{clip_id}/renders/clean_4x3"), 404, "clean_4x3"),
        (client.get(f"/v1/clips/{clip_id}/renders/clean_9x16", headers={"Range": "bytes=999999999-"}), 416,
         "range"),
        (client.get(f"/v1/clips/{clip_id}/renders/clean_9x16", headers={"Range": "pages=1-2"}), 400, "range"),
        (client.get(f"/v1/episodes/{episode_id}/transcript.doc"), 404, "doc"),
        (client.post("/v1/jobs/1/cancel"), 409, "nothing to cancel"),
        (client.post(f"/v1/episodes/{episode_id}/restore"), 409, "not deleted"),
        (client.post(f"/v1/episodes/{episode_id}/reprocess", json={"from_stage": "upload"}), 422, "from_stage"),
        (client.patch(f"/v1/episodes/{episode_id}", json={"title": "  "}), 422, "title"),
        (client.patch(f"/v1/clips/{clip_id}", json={"start": 1.0}), 422, "both start and end"),
        (client.patch(f"/v1/clips/{clip_id}", json={"start": -5.0, "end": 10.0}), 422, "inside the episode"),
        (client.patch(f"/v1/clips/{clip_id}", json={"caption_style": "comic-sans"}), 422, "comic-sans"),
        (client.patch(f"/v1/clips/{clip_id}", json={"status": "loved"}), 422, "status"),
        (client.get("/v1/events", headers={"Last-Event-ID": "yesterday"}), 400, "Last-Event-ID"),
        (client.delete("/v1/jobs/1"), 405, "DELETE"),
        (client.get("/v2/jobs"), 404, "/v2/jobs"),
        (client.post("/v1/episodes", json={"source": "https://example.com/a.mp4"},
                     headers={"Idempotency-Key": "x" * 300}), 422, "Idempotency-Key"),
    ]
    for response, status, words in cases:
        problem(response, status, words)
    assert len(cases) >= 15
    assert _state(settings) == before


def test_metrics_parse_and_match_the_database(stack):
    client, settings = stack["client"], stack["settings"]
    families = {f.name: f for f in text_string_to_metric_families(client.get("/metrics").text)}
    with db.session(settings.app_db) as conn:
        by_status = dict(conn.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status").fetchall())
        finished = dict(conn.execute("SELECT stage, COUNT(*) FROM job_events WHERE kind IN ('finished',"
                                     " 'clip_finished') AND media_seconds > 0 GROUP BY stage").fetchall())
    jobs_by_status = {s.labels["status"]: s.value for s in families["clipdesk_jobs"].samples}
    assert jobs_by_status == {s: by_status.get(s, 0) for s in jobs.JOB_STATUSES}
    assert sum(jobs_by_status.values()) >= 4
    counts = {s.labels["stage"]: s.value for s in families["clipdesk_stage_seconds_per_media_second"].samples
              if s.name.endswith("_count")}
    assert counts == finished and counts["transcribe"] >= 2
    assert families["clipdesk_live_workers"].samples[0].value == 1
    assert {s.labels["kind"] for s in families["clipdesk_running_units"].samples} == {"stage", "clip"}
    stats = client.get("/v1/stats").json()
    assert stats["jobs"] == jobs_by_status and stats["live_workers"] == 1
    assert stats["average_processing_seconds"] > 0 and stats["seconds_per_media_hour"]["transcribe"] > 0
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["workers"]["alive"] == 1
    with client.stream("GET", "/v1/events") as stream:                  # idle: keep-alive comments
        started, lines = time.monotonic(), []
        for line in stream.iter_lines():
            lines.append(line)
            if time.monotonic() - started > 2.5:
                break
    assert lines.count(": keep-alive") >= 1 and not any(line.startswith("data:") for line in lines)
    docs = client.get("/docs")                                           # offline: assets come from here
    assert docs.status_code == 200 and "/static-offline-docs/swagger-ui-bundle.js" in docs.text
    assert client.get("/static-offline-docs/swagger-ui-bundle.js").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/episodes", "/v1/jobs/{job_id}", "/v1/episodes/{episode_id}", "/v1/events", "/metrics", "/healthz",
            "/v1/clips/{clip_id}/renders/{variant}"} <= set(paths)


def test_keys_close_the_api_and_failed_attempts_are_throttled(stack):
    client = stack["client"]
    created = stack["consumer"].cli("api-keys", "create", "n8n")
    key = created["key"]
    assert key.startswith("cdk_") and len(key) > 40
    with db.session(stack["settings"].app_db) as conn:   # only the hash is stored
        assert key not in json.dumps([list(row) for row in conn.execute("SELECT * FROM api_keys").fetchall()])
    time.sleep(1.1)   # the app re-reads whether keys exist once a second
    try:
        problem(client.get("/v1/jobs"), 401, "needs a key")
        assert client.get("/v1/jobs", headers={"Authorization": f"Bearer {key}"}).status_code == 200
        assert client.get("/v1/jobs", headers={"X-API-Key": key}).status_code == 200
        assert client.get("/healthz").status_code == 200                   # liveness stays open
        for _ in range(3):
            problem(client.get("/v1/jobs", headers={"X-API-Key": "cdk_wrong"}), 401, "not valid")
        problem(client.get("/v1/jobs", headers={"X-API-Key": "cdk_wrong"}), 401, "not valid")   # 4th: delay starts
        throttled = client.get("/v1/jobs", headers={"X-API-Key": key})     # even the right key waits
        problem(throttled, 429, "try again")
        assert int(throttled.headers["retry-after"]) >= 1
        time.sleep(int(throttled.headers["retry-after"]) + 0.1)
        assert client.get("/v1/jobs", headers={"X-API-Key": key}).status_code == 200
    finally:
        listed = stack["consumer"].cli("api-keys", "list")["keys"]
        assert [k["prefix"] for k in listed] == [key[:10]]
        stack["consumer"].cli("api-keys", "revoke", str(created["key_id"]))
    time.sleep(1.1)
    assert client.get("/v1/jobs").status_code == 200                      # no key left: open on loopback again


def test_a_public_address_without_a_key_refuses_to_start(stack):
    settings = stack["settings"]
    out = subprocess.run([sys.executable, "-m", "pipeline", "api", "--address", "0.0.0.0", "--port", "1"],
                         cwd=ROOT, env=ApiServer(settings).env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "no API key" in out.stderr and "api-keys create" in out.stderr
    server = ApiServer(settings, address="0.0.0.0")
    with pytest.raises(AssertionError, match="no API key"):               # uvicorn on the app directly
        server.start()
    assert Path(server.log_path).exists()


def test_the_api_offers_every_job_option():
    """A job option added to ``pipeline.jobs.options`` is a field of the submit and reprocess bodies
    (which refuse unknown fields), so scripts can use it the day it lands."""
    from api.schemas import JobOptions
    from pipeline.jobs import options
    assert set(options.NAMES) <= set(JobOptions.model_fields)
    body = JobOptions(remove_silences=True, title_overlay_seconds=2, vocabulary="Quorbex, Ada Quist")
    assert body.options() == {"remove_silences": True, "title_overlay_seconds": 2, "vocabulary": "Quorbex, Ada Quist"}
