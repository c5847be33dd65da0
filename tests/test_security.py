"""Attack cases (issue 17): each asserts the specific refusal and that nothing was fetched or written.

``shipped`` is the configuration a fresh install runs with (no allowed hosts, paths limited to the
data dir and the inbox); ``settings`` (conftest) is the test operator's, which lists 127.0.0.1 so
the local test servers can play allowed hosts. A name that resolves to loopback is ``localhost``
(resolved through /etc/hosts, offline) and the decimal form of 127.0.0.1.
"""

import dataclasses
import http.server
import io
import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from conftest import ROOT
from media_server import MediaServer
from streamlit.testing.v1 import AppTest

from pipeline import db, jobs
from pipeline.automation import feeds, inbox, webhooks
from pipeline.config import load_settings
from pipeline.errors import BadInput, ConfigError, TransientError
from pipeline.ops import serve
from pipeline.security import network
from pipeline.stages import ingest, model_choice
from pipeline.stages.context import StageContext


@pytest.fixture
def shipped(settings):
    """The shipped defaults on the same data dir as ``settings``."""
    return load_settings()


@pytest.fixture
def server():
    with MediaServer() as srv:
        srv.serve("/talk.mp4", b"\x00" * 1000, "video/mp4")
        yield srv


@pytest.fixture
def bystander():
    """A server on 127.0.0.2 (loopback, not in the test allow-list) that must never be reached."""
    hits = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", "6")
            self.end_headers()
            self.wfile.write(b"secret")

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.2", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.2:{httpd.server_address[1]}", hits
    httpd.shutdown()
    httpd.server_close()


def nothing_written(settings, episodes: int = 0) -> bool:
    """No file under the episodes folder, and no episode rows beyond the ``episodes`` expected."""
    folder = settings.data_dir / "episodes"
    files = [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []
    if not settings.app_db_path.exists():
        return files == []
    with db.session(settings.app_db) as conn:
        return files == [] and len(db.list_episodes(conn)) == episodes


# --- outbound fetches -------------------------------------------------------------------------

@pytest.mark.parametrize("make_url, reason", [
    (lambda srv: srv.url("/talk.mp4"), "a loopback address"),
    (lambda srv: "http://10.20.30.40/talk.mp4", "a private network address"),
    (lambda srv: "http://169.254.169.254/latest/meta-data/", "a cloud metadata address"),
    (lambda srv: "http://[::1]:8080/talk.mp4", "a loopback address"),
    (lambda srv: srv.url("/talk.mp4").replace("127.0.0.1", "localhost"), "localhost (resolves to 127.0.0.1)"),
    (lambda srv: srv.url("/talk.mp4").replace("127.0.0.1", "2130706433"), "resolves to 127.0.0.1"),
])
def test_urls_to_internal_addresses_are_refused_before_anything_is_fetched(shipped, server, make_url, reason):
    with pytest.raises(network.RefusedFetch, match=f"{re.escape(reason)}.*network.allowed_hosts"):
        jobs.create(shipped, make_url(server))
    assert server.requests == []
    assert nothing_written(shipped)


@pytest.mark.parametrize("url, scheme", [("file:///etc/passwd", "file:"), ("ftp://example.com/talk.mp4", "ftp:"),
                                         ("gopher://127.0.0.1:25/x", "gopher:")])
def test_schemes_other_than_http_are_refused_for_episodes_and_feeds(shipped, url, scheme):
    with pytest.raises(network.RefusedFetch, match=f"uses the {scheme} scheme; Clipdesk fetches only http"):
        jobs.create(shipped, url)
    with pytest.raises(BadInput, match="http"):
        feeds.add(shipped, url)
    assert nothing_written(shipped) and feeds.list_feeds(shipped) == []


def test_a_name_resolving_to_loopback_is_refused_at_download_time_too(settings, shipped, server):
    """Queued while the operator allowed it (or while DNS said otherwise): the download checks again."""
    url = server.url("/talk.mp4").replace("127.0.0.1", "localhost")
    episode_id, _ = jobs.create(dataclasses_replace_network(settings, ("localhost",)), url)
    ctx = StageContext(shipped, episode_id, {}, progress=lambda fraction: None)
    with pytest.raises(network.RefusedFetch, match="localhost \\(resolves to 127.0.0.1\\) is a loopback address"):
        ingest.run(ctx)
    assert server.requests == []
    assert not ingest.download_folder(ctx).exists()


def test_a_redirect_from_an_allowed_server_to_a_private_address_is_not_followed(settings, server, bystander):
    target, hits = bystander
    server.redirect("/talk.mp4", f"{target}/secret.mp4")
    episode_id, _ = jobs.create(settings, server.url("/talk.mp4"))
    with pytest.raises(network.RefusedFetch, match="127.0.0.2 is a loopback address"):
        ingest.run(StageContext(settings, episode_id, {}, progress=lambda fraction: None))
    assert [r.path for r in server.requests] == ["/talk.mp4"]   # the redirect was asked for, its target never
    assert hits == []
    with pytest.raises(network.RefusedFetch, match="127.0.0.2 is a loopback address"):
        network.get(server.url("/talk.mp4"), settings.network, timeout=5)   # feeds' own fetches, the same
    assert hits == []


def test_a_feed_item_pointing_at_a_private_address_is_not_queued(settings, server):
    server.serve("/ep1.mp4", b"\x00" * 100, "video/mp4")
    body = ('<?xml version="1.0"?><rss version="2.0"><channel><title>Show</title>'
            '<item><title>Inside</title><guid>g-private</guid>'
            '<enclosure url="http://10.0.0.5/admin.mp4" type="video/mp4" length="1"/></item>'
            "</channel></rss>")
    server.serve("/feed.xml", body.encode(), "application/rss+xml")
    dispatched = []
    feed = feeds.add(settings, server.url("/feed.xml"), backfill=1,
                     dispatch=lambda job_id, priority: dispatched.append(job_id) or "task")
    entry = feeds.get(settings, feed["feed_id"])["entries"][0]
    assert entry["job_id"] is None and entry["episode_id"] is None
    assert "10.0.0.5 is a private network address" in entry["note"]
    assert dispatched == [] and nothing_written(settings)


def test_a_download_past_the_size_cap_stops_and_keeps_nothing(settings, server):
    server.endless("/forever.mp4", b"\x00" * 65536)
    capped = dataclasses_replace_download(settings, max_filesize_mb=1)
    episode_id, _ = jobs.create(capped, server.url("/forever.mp4"))
    with pytest.raises(BadInput, match="larger than the download limit of 1 MB \\(download.max_filesize_mb\\)"):
        ingest.run(StageContext(capped, episode_id, {}, progress=lambda fraction: None))
    assert nothing_written(capped, episodes=1)
    # an announced size over the cap is refused as well, before the body is read
    server.serve("/big.mp4", b"\x00" * (3 << 20), "video/mp4")
    episode_id, _ = jobs.create(capped, server.url("/big.mp4"))
    with pytest.raises(BadInput, match="larger than the download limit"):
        ingest.run(StageContext(capped, episode_id, {}, progress=lambda fraction: None))
    assert nothing_written(capped, episodes=2)


def test_a_download_the_disk_cannot_hold_waits_for_space(settings, server):
    server.serve("/talk.mp4", b"\x00" * (256 << 10), "video/mp4")
    full = dataclasses.replace(settings, worker=dataclasses.replace(settings.worker, min_free_mb=10_000_000))
    episode_id, _ = jobs.create(full, server.url("/talk.mp4"))
    with pytest.raises(TransientError, match="Not enough free disk for .* it needs 0 MB .*will be retried"):
        ingest.run(StageContext(full, episode_id, {}, progress=lambda fraction: None))
    assert not any((full.data_dir / "episodes" / episode_id).glob("source.*"))


def test_webhooks_to_internal_addresses_are_refused_and_logged(shipped, server):
    body = b'{"event": "job.succeeded"}'
    with pytest.raises(network.RefusedFetch, match="a loopback address"):
        network.post(server.url("/hook"), shipped.network, data=body, timeout=5)
    assert server.requests == []


# --- local paths ------------------------------------------------------------------------------

def test_a_path_outside_the_allowed_folders_gets_one_message_whether_it_exists_or_not(shipped, tmp_path):
    real = tmp_path / "elsewhere.mp4"
    real.write_bytes(b"\x00" * 100)
    messages = []
    for path in (real, tmp_path / "does-not-exist.mp4", "/etc/passwd", "/etc/no-such-file"):
        with pytest.raises(BadInput) as refused:
            jobs.create(shipped, str(path))
        messages.append(str(refused.value).replace(str(path), "PATH"))
    assert set(messages) == {"'PATH' is outside the folders files may be taken from; "
                             "see paths.allowed_source_dirs."}
    assert nothing_written(shipped) and real.read_bytes() == b"\x00" * 100


def test_dot_dot_and_symlink_escapes_from_the_inbox_are_refused(shipped, tmp_path):
    secret = tmp_path / "secret.mp4"
    secret.write_bytes(b"private")
    folder = inbox.inbox_dir(shipped)
    folder.mkdir(parents=True)
    os.symlink(secret, folder / "link.mp4")
    escapes = [folder / ".." / ".." / "secret.mp4", folder / "link.mp4"]
    for path in escapes:
        with pytest.raises(BadInput, match="is outside the folders files may be taken from"):
            jobs.create(shipped, str(path))
    # the watch folder itself does not follow the link either
    taken = inbox.scan(shipped, lambda job_id, priority: "task", now=0)
    taken += inbox.scan(shipped, lambda job_id, priority: "task", now=10**9)
    assert [t["error"] for t in taken] == ["'link.mp4' is a symbolic link; the inbox takes only files dropped into it."]
    assert secret.read_bytes() == b"private"   # neither read into the data dir nor moved
    assert nothing_written(shipped)


def test_uploads_cannot_escape_their_folder_nor_name_another_file(shipped, tmp_path):
    saved = jobs.save_upload(shipped, "../../../etc/cron.d/evil.mp4", io.BytesIO(b"\x00" * 10))
    assert saved.parent.parent == shipped.data_dir / "uploads" and saved.name == "evil.mp4"
    victim = tmp_path / "victim.mp4"
    victim.write_bytes(b"keep me")
    for path in (victim, shipped.data_dir / "uploads" / ".." / ".." / "victim.mp4"):
        with pytest.raises(BadInput, match="is not in the uploads folder"):
            jobs.create(shipped, str(path), source_kind="upload")   # ingest would *move* an upload
    assert victim.read_bytes() == b"keep me"


def test_the_cli_still_takes_any_readable_file_and_anywhere_is_an_explicit_choice(shipped, settings, tmp_path):
    outside = tmp_path / "mine.mp4"
    outside.write_bytes(b"\x00" * 10)
    env = dict(os.environ, CLIPDESK_DATA_DIR=str(shipped.data_dir))   # the shipped config
    env.pop("CLIPDESK_CONFIG", None)
    done = subprocess.run([sys.executable, "-m", "pipeline", "enqueue", str(outside), "--json"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert jobs.get(shipped, json.loads(done.stdout)["job_id"])["status"] == "queued"
    assert settings.paths.allowed_source_dirs == ("*",)   # the test operator chose "anywhere" explicitly
    assert jobs.create(settings, str(outside))[0]


def dataclasses_replace_network(settings, allowed_hosts):
    return dataclasses.replace(settings, network=dataclasses.replace(settings.network, allowed_hosts=allowed_hosts))


def dataclasses_replace_download(settings, **changes):
    return dataclasses.replace(settings, download=dataclasses.replace(settings.download, **changes))


# --- models -----------------------------------------------------------------------------------

def test_an_unknown_model_name_is_refused_at_enqueue(shipped):
    with pytest.raises(BadInput, match="Unknown model 'tiny-evil'; choose one of tiny.en, tiny, base"):
        jobs.create(shipped, "https://example.com/talk.mp3", options={"model": "tiny-evil"})
    assert nothing_written(shipped)


def test_hub_models_download_only_when_allowed_and_model_folders_only_from_the_models_dir(shipped, tmp_path):
    url = "https://example.com/talk.mp3"
    with pytest.raises(BadInput, match="from the Hugging Face hub, which is off; set transcribe.allow_downloads: true"):
        jobs.create(shipped, url, options={"model": "someone/whisper-backdoor"})
    elsewhere = tmp_path / "model"
    elsewhere.mkdir()
    for folder in (elsewhere, shipped.data_dir / "models" / ".." / ".." / "model"):
        with pytest.raises(BadInput, match="is not a model folder under the models dir"):
            jobs.create(shipped, url, options={"model": str(folder)})
    assert nothing_written(shipped)
    # what is allowed: a folder the operator put under the models dir, a known name, a hub id once opted in
    mine = shipped.data_dir / "models" / "my-finetune"
    mine.mkdir(parents=True)
    jobs.create(shipped, url, options={"model": str(mine)}, allow_duplicate=True)
    jobs.create(shipped, url, options={"model": "base"}, allow_duplicate=True)
    opted_in = dataclasses.replace(shipped, transcribe=dataclasses.replace(shipped.transcribe, allow_downloads=True))
    jobs.create(opted_in, url, options={"model": "someone/whisper-large"}, allow_duplicate=True)
    # the config's own model is held to allow_downloads at the transcribe stage, the CLI's folder anywhere
    with pytest.raises(BadInput, match="transcribe.allow_downloads: true"):
        model_choice.check("someone/whisper-backdoor", shipped.data_dir, allow_downloads=False, trusted=True)
    jobs.create(shipped, url, options={"model": str(elsewhere)}, allow_duplicate=True, trusted_path=True)


# --- webhooks ---------------------------------------------------------------------------------

def deliver_once(settings, server) -> tuple:
    """One real delivery of a recorded body to the local receiver; returns (request, delivery JSON)."""
    _, job_id = jobs.create(settings, "https://example.com/hooked.mp3")
    with db.session(settings.app_db) as conn:
        delivery_id = db.insert_webhook_delivery(conn, job_id, server.url("/hook"), "job.succeeded",
                                                 b'{"event": "job.succeeded", "job": {"job_id": 1}}', 0.0)
    assert webhooks.attempt(settings, delivery_id) is None
    [post] = server.received("/hook")
    return post, webhooks.deliveries(settings, job_id)[0]


def test_a_receiver_refuses_replayed_and_tampered_deliveries(settings, server, monkeypatch):
    monkeypatch.setenv(settings.webhooks.secret_env, "receiver-shared-secret")
    server.serve("/hook", b"ok", "text/plain")
    post, delivery = deliver_once(settings, server)
    timestamp, signature = post.headers["X-Clipdesk-Timestamp"], post.headers["X-Clipdesk-Signature"]
    assert delivery["signed"] is True and signature.startswith(f"t={timestamp},v1=")
    secret = "receiver-shared-secret"
    assert webhooks.verify(secret, timestamp, signature, post.body)                     # as delivered: accepted
    assert not webhooks.verify(secret, timestamp, signature, post.body, now=int(timestamp) + 301)  # replayed later
    assert not webhooks.verify(secret, timestamp, signature, post.body.replace(b"1}", b"2}"))     # body changed
    assert not webhooks.verify(secret, str(int(timestamp) + 60), signature, post.body)            # timestamp moved
    assert not webhooks.verify("another secret", timestamp, signature, post.body)


def test_a_delivery_without_a_secret_goes_out_marked_unsigned(settings, server, monkeypatch):
    monkeypatch.delenv(settings.webhooks.secret_env, raising=False)
    server.serve("/hook", b"ok", "text/plain")
    post, delivery = deliver_once(settings, server)
    assert "X-Clipdesk-Signature" not in post.headers and "X-Clipdesk-Timestamp" not in post.headers
    assert delivery["signed"] is False and delivery["status"] == "delivered"


# --- dashboard --------------------------------------------------------------------------------

APP = str(Path(__file__).resolve().parents[1] / "dashboard.py")


def dashboard_config(tmp_path, monkeypatch, text: str, name: str = "dashboard.yaml") -> None:
    config = tmp_path / name   # the dashboard caches settings per config path
    config.write_text(text)
    monkeypatch.setenv("CLIPDESK_CONFIG", str(config))


def test_ten_wrong_dashboard_passwords_in_a_row_are_throttled_and_logged(settings, tmp_path, monkeypatch, caplog):
    dashboard_config(tmp_path, monkeypatch, "dashboard:\n  password_env: CLIPDESK_TEST_PASSWORD\n")
    monkeypatch.setenv("CLIPDESK_TEST_PASSWORD", "correct horse")
    at = AppTest.from_file(APP, default_timeout=30).run()
    answers = []
    for attempt in range(10):
        at.text_input(key="password_input").input(f"guess {attempt}")
        at.button[0].click().run()
        [error] = at.error
        answers.append(error.value)
    assert answers[:3] == ["Wrong password."] * 3                       # a typo or two costs nothing
    assert answers[3] == "Wrong password. Try again in 1 s."
    delays = [int(re.search(r"in (\d+) s", a).group(1)) for a in answers[3:] if a.startswith("Wrong")]
    assert delays == sorted(delays) and len(set(delays)) == len(delays)   # each checked failure waits longer
    refused = [a for a in answers if a.startswith("Too many wrong passwords; try again in")]
    assert refused and len(refused) + len(delays) == 7                  # blocked guesses were not even checked
    at.text_input(key="password_input").input("correct horse")         # right, but still inside the delay
    at.button[0].click().run()
    assert at.error[0].value.startswith("Too many wrong passwords") and not at.metric
    logged = [r.getMessage() for r in caplog.records if "dashboard password: failed attempt" in r.getMessage()]
    assert len(logged) == 3 + len(delays)


def test_the_overview_warns_when_the_dashboard_listens_beyond_localhost_without_a_password(settings, tmp_path,
                                                                                        monkeypatch):
    dashboard_config(tmp_path, monkeypatch, "dashboard:\n  address: 0.0.0.0\n")
    at = AppTest.from_file(APP, default_timeout=30).run()
    assert [t.value for t in at.title] == ["Overview"]
    assert any("listens on `0.0.0.0` without a password" in w.value for w in at.warning)
    dashboard_config(tmp_path, monkeypatch, "dashboard:\n  address: 127.0.0.1\n", name="local.yaml")
    at = AppTest.from_file(APP, default_timeout=30).run()
    assert not any("without a password" in w.value for w in at.warning)


def test_the_job_page_marks_unsigned_webhook_deliveries(settings, server, monkeypatch):
    monkeypatch.delenv(settings.webhooks.secret_env, raising=False)
    server.serve("/hook", b"ok", "text/plain")
    deliver_once(settings, server)
    at = AppTest.from_file(APP, default_timeout=30).run()
    at.switch_page("pages/jobs.py")
    at.query_params.update({"job": "1"})
    at.run()
    assert any("went out unsigned" in w.value for w in at.warning)
    [deliveries] = [d.value for d in at.dataframe if "Signature" in d.value.columns]
    assert list(deliveries["Signature"]) == ["UNSIGNED"]


def test_streamlits_upload_limit_follows_the_config(settings):
    small = dataclasses.replace(settings, dashboard=dataclasses.replace(settings.dashboard, max_upload_mb=123))
    command = serve.dashboard_command(small)
    assert command[command.index("--server.maxUploadSize") + 1] == "123"


@pytest.mark.parametrize("text, message", [
    ("network:\n  allowed_hosts: ['not a host!']\n", "network.allowed_hosts: must be host names, IP addresses or networks"),
    ("paths:\n  allowed_source_dirs: ['*', /srv]\n", "paths.allowed_source_dirs: must be folders, or [\"*\"] alone"),
    ("download:\n  max_filesize_mb: 0\n", "download.max_filesize_mb: must be a number of megabytes"),
    ("transcribe:\n  allow_downloads: 'yes'\n", "transcribe.allow_downloads: must be true or false"),
])
def test_security_settings_are_validated_with_the_key(tmp_path, text, message):
    config = tmp_path / "bad.yaml"
    config.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings(config)
