"""Webhook deliveries to a real receiver on 127.0.0.1, triggered by real jobs finishing."""

import dataclasses
import hashlib
import hmac
import json
import threading
import time

import mediagen
import pytest
from media_server import MediaServer

from pipeline import jobs
from pipeline.automation import webhooks
from pipeline.jobs import runner

SECRET = "s3cret-for-tests"


@pytest.fixture(scope="module")
def talk(tmp_path_factory):
    return mediagen.tone_video(tmp_path_factory.mktemp("hook") / "talk.mp4", 3.0, width=320, height=180)


@pytest.fixture
def receiver():
    with MediaServer() as srv:
        srv.serve("/hook", b"ok", "text/plain")
        yield srv


def with_webhooks(settings, url, **changes):
    hooks = dataclasses.replace(settings.webhooks, **({"urls": (url,), "retry_delay_seconds": 0.05} | changes))
    return dataclasses.replace(settings, webhooks=hooks)


def wait_for_deliveries():
    """Join the background delivery threads the finished job started."""
    for thread in threading.enumerate():
        if thread.name.startswith("clipdesk-webhook-"):
            thread.join(timeout=60)
            assert not thread.is_alive()


def expected_signature(post) -> str:
    """Recomputed as a receiver would: HMAC-SHA256 over "<timestamp>." + raw body."""
    timestamp = post.headers["X-Clipdesk-Timestamp"]
    return f"t={timestamp},v1=" + hmac.new(SECRET.encode(), f"{timestamp}.".encode() + post.body,
                                           hashlib.sha256).hexdigest()


def test_a_succeeded_job_is_posted_with_a_correct_signature_and_its_summary(settings, receiver, talk, monkeypatch):
    monkeypatch.setenv("CLIPDESK_WEBHOOK_SECRET", SECRET)
    settings = with_webhooks(settings, receiver.url("/hook"))
    episode_id, job_id = jobs.create(settings, str(talk), title="Hooked")
    assert runner.run_job(settings, job_id) == "succeeded"
    wait_for_deliveries()

    [post] = receiver.received("/hook")
    assert post.headers["X-Clipdesk-Signature"] == expected_signature(post)
    assert post.headers["X-Clipdesk-Event"] == "job.succeeded"
    assert post.headers["Content-Type"] == "application/json"
    payload = json.loads(post.body)
    assert payload["event"] == "job.succeeded"
    assert payload["job"]["job_id"] == job_id and payload["job"]["status"] == "succeeded"
    assert payload["episode"]["episode_id"] == episode_id and payload["episode"]["title"] == "Hooked"
    assert isinstance(payload["episode"]["clips"], list)
    assert payload["episode"]["source_path"] == f"episodes/{episode_id}/source.mp4"   # relative to the data dir
    assert str(settings.data_dir) not in post.body.decode() and str(talk) not in post.body.decode()
    [delivery] = webhooks.deliveries(settings, job_id)
    assert (delivery["status"], delivery["attempts"], delivery["url"]) == ("delivered", 1, receiver.url("/hook"))
    assert delivery["signed"] is True
    assert [a["http_status"] for a in delivery["log"]] == [200]


def test_a_receiver_failing_twice_gets_the_failed_job_on_the_third_attempt(settings, receiver, monkeypatch):
    monkeypatch.setenv("CLIPDESK_WEBHOOK_SECRET", SECRET)
    settings = with_webhooks(settings, receiver.url("/hook"))
    receiver.fail("/hook", [500, 503])
    _, job_id = jobs.create(settings, receiver.url("/media/missing.mp4"))
    assert runner.run_job(settings, job_id) == "failed"
    wait_for_deliveries()

    posts = receiver.received("/hook")
    assert len(posts) == 3
    assert len({p.body for p in posts}) == 1 and len({p.headers["X-Clipdesk-Delivery"] for p in posts}) == 1
    assert all(p.headers["X-Clipdesk-Signature"] == expected_signature(p) for p in posts)
    payload = json.loads(posts[-1].body)
    assert payload["event"] == "job.failed" and "HTTP 404" in payload["job"]["error"]
    [delivery] = webhooks.deliveries(settings, job_id)
    assert (delivery["status"], delivery["attempts"]) == ("delivered", 3)
    assert [(a["attempt"], a["http_status"]) for a in delivery["log"]] == [(1, 500), (2, 503), (3, 200)]
    assert delivery["log"][0]["error"] == "HTTP 500"


def test_a_delivery_out_of_attempts_is_marked_failed(settings, receiver, monkeypatch):
    monkeypatch.delenv("CLIPDESK_WEBHOOK_SECRET", raising=False)
    settings = with_webhooks(settings, receiver.url("/hook"), max_attempts=2)
    receiver.fail("/hook", [500, 500, 500])
    _, job_id = jobs.create(settings, receiver.url("/media/missing.mp4"))
    runner.run_job(settings, job_id)
    wait_for_deliveries()
    [delivery] = webhooks.deliveries(settings, job_id)
    assert (delivery["status"], delivery["attempts"], delivery["last_error"]) == ("failed", 2, "HTTP 500")
    posts = receiver.received("/hook")
    assert len(posts) == 2 and "X-Clipdesk-Signature" not in posts[0].headers   # no secret configured


def test_pending_deliveries_are_finished_by_the_periodic_sweep(settings, receiver):
    """What a restarted worker does with deliveries its threads did not finish."""
    settings = with_webhooks(settings, receiver.url("/hook"), retry_delay_seconds=600)
    receiver.fail("/hook", [502])
    _, job_id = jobs.create(settings, receiver.url("/media/missing.mp4"))
    settings_without = dataclasses.replace(settings, webhooks=dataclasses.replace(settings.webhooks, urls=()))
    runner.run_job(settings_without, job_id)   # finishes the job without delivering
    [delivery_id] = webhooks.record(settings, job_id)

    assert webhooks.deliver_due(settings) == 1
    assert webhooks.deliver_due(settings) == 0, "not due again before the back-off"
    assert webhooks.deliver_due(settings, now=time.time() + 601) == 1
    [delivery] = webhooks.deliveries(settings, job_id)
    assert delivery["delivery_id"] == delivery_id and delivery["status"] == "delivered"
    assert [a["http_status"] for a in delivery["log"]] == [502, 200]
