"""Followed feeds against a real HTTP server whose RSS/Atom items the tests change between checks."""

import json
import os
import subprocess
import sys
import time

import mediagen
import pytest
from conftest import operator_config
from media_server import MediaServer

from pipeline import db, jobs
from pipeline.automation import feeds
from pipeline.errors import BadInput
from pipeline.jobs import runner
from pipeline.library import episodes
from pipeline.media import probe
from pipeline.stages import download

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MINUTE = 60.0


@pytest.fixture(scope="module")
def talk_bytes(tmp_path_factory):
    return mediagen.tone_video(tmp_path_factory.mktemp("feed") / "talk.mp4", 3.0, width=320, height=180).read_bytes()


@pytest.fixture
def server(talk_bytes):
    with MediaServer() as srv:
        for n in range(1, 5):
            srv.serve(f"/media/ep{n}.mp4", talk_bytes, "video/mp4")
        yield srv


class Dispatcher:
    """The queue, played in-process: records (job_id, priority); ``run_all`` runs them like the worker."""

    def __init__(self, settings):
        self.settings, self.calls = settings, []

    def __call__(self, job_id, priority, delay=0.0):
        self.calls.append((job_id, priority))
        return f"task-{job_id}"

    def run_all(self):
        return [runner.run_job(self.settings, job_id) for job_id, _ in self.calls]


def items(*numbers):
    return [(f"guid-{n}", f"Episode {n}", f"/media/ep{n}.mp4") for n in numbers]


def feed_row(settings, feed_id):
    with db.session(settings.app_db) as conn:
        return db.get_feed(conn, feed_id)


def test_new_feed_starts_from_now_then_queues_exactly_the_new_entry_once_and_it_is_processed(settings, server):
    server.rss("/feed.xml", items(2, 1))
    dispatch = Dispatcher(settings)
    feed = feeds.add(settings, server.url("/feed.xml"), options={"max_clips": 2})
    assert (feed["title"], feed["kind"], feed["entries_seen"], feed["entries_queued"]) == ("Test Show", "rss", 2, 0)

    later = time.time() + 16 * MINUTE
    assert feeds.check_due(settings, dispatch, now=later) == [{"feed_id": feed["feed_id"], "queued": [],
                                                               "waiting": 0, "error": None}]
    server.rss("/feed.xml", items(3, 2, 1))
    [result] = feeds.check_due(settings, dispatch, now=later + 16 * MINUTE)
    assert len(result["queued"]) == 1 and dispatch.calls == [(result["queued"][0], jobs.PRIORITY_FEED)]
    assert feeds.check_due(settings, dispatch, now=later + 32 * MINUTE)[0]["queued"] == []
    assert feeds.check_all(settings, dispatch)[0]["queued"] == []
    assert len(dispatch.calls) == 1, "an entry is never enqueued twice"

    assert dispatch.run_all() == ["succeeded"]
    job = jobs.get(settings, result["queued"][0])
    summary = episodes.summary(settings, job["episode_id"])
    assert summary["title"] == "Episode 3" and summary["source"] == server.url("/media/ep3.mp4")
    assert probe(summary["source_path"]).duration == pytest.approx(3.0, abs=0.1)
    assert summary["source_metadata"]["original_url"] == server.url("/media/ep3.mp4")
    assert summary["download"]["downloaded_bytes"] == summary["download"]["total_bytes"] > 0
    assert job["progress"] == 1.0
    with db.session(settings.app_db) as conn:
        assert json.loads(db.get_job(conn, job["job_id"])["options_json"]) == {"max_clips": 2}
    detail = feeds.get(settings, feed["feed_id"])
    assert [(e["entry_id"], e["job_id"]) for e in detail["entries"]][0] == ("guid-3", job["job_id"])
    assert detail["entries_seen"] == 3 and detail["entries_queued"] == 1


def test_backfill_queues_the_newest_entries_oldest_first(settings, server):
    server.rss("/feed.xml", items(3, 2, 1))
    dispatch = Dispatcher(settings)
    feeds.add(settings, server.url("/feed.xml"), backfill=2, dispatch=dispatch)
    titles = [jobs.get(settings, job_id)["title"] for job_id, _ in dispatch.calls]
    assert titles == ["Episode 2", "Episode 3"]


def test_a_failing_feed_backs_off_while_another_keeps_working(settings, server):
    server.rss("/a.xml", items(1))
    server.rss("/b.xml", items(2))
    dispatch = Dispatcher(settings)
    a = feeds.add(settings, server.url("/a.xml"))["feed_id"]
    b = feeds.add(settings, server.url("/b.xml"))["feed_id"]
    server.serve("/a.xml", b"upstream broke", "text/plain", status=500)
    server.rss("/b.xml", items(3, 2))

    t1 = time.time() + 16 * MINUTE
    results = {r["feed_id"]: r for r in feeds.check_due(settings, dispatch, now=t1)}
    assert "HTTP 500" in results[a]["error"] and results[b]["error"] is None and len(results[b]["queued"]) == 1
    failed = feed_row(settings, a)
    assert failed["failures"] == 1 and "HTTP 500" in failed["last_error"]
    assert failed["next_check_at"] == pytest.approx(t1 + 2 * 15 * MINUTE)   # twice the interval

    requests_to_a = len(server.received("/a.xml", "GET"))
    server.rss("/b.xml", items(4, 3, 2))
    t2 = t1 + 16 * MINUTE
    assert [(r["feed_id"], len(r["queued"])) for r in feeds.check_due(settings, dispatch, now=t2)] == [(b, 1)]
    assert len(server.received("/a.xml", "GET")) == requests_to_a, "a backing-off feed is not fetched"

    server.rss("/a.xml", items(1))
    assert [r["feed_id"] for r in feeds.check_due(settings, dispatch, now=t1 + 31 * MINUTE)] == [a, b]
    recovered = feed_row(settings, a)
    assert recovered["failures"] == 0 and recovered["last_error"] is None


def test_an_entry_already_added_by_hand_is_linked_not_queued_again(settings, server):
    server.rss("/feed.xml", items(1))
    dispatch = Dispatcher(settings)
    feed_id = feeds.add(settings, server.url("/feed.xml"))["feed_id"]
    by_hand, _ = jobs.create(settings, server.url("/media/ep2.mp4"))
    server.rss("/feed.xml", items(2, 1))
    assert feeds.check_feed(settings, feed_id, dispatch)["queued"] == []
    entry = feeds.get(settings, feed_id)["entries"][0]
    assert entry["episode_id"] == by_hand and entry["job_id"] is None and by_hand in entry["note"]


def test_atom_feeds_are_read_too(settings, server):
    entries = "".join(
        f"<entry><id>urn:ep:{n}</id><title>Atom {n}</title><updated>2026-11-0{n}T10:00:00Z</updated>"
        f'<link rel="enclosure" href="{server.url(f"/media/ep{n}.mp4")}"/></entry>' for n in (2, 1))
    server.serve("/atom.xml", (f'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom">'
                               f"<title>Atom Show</title>{entries}</feed>").encode(), "application/atom+xml")
    dispatch = Dispatcher(settings)
    feed = feeds.add(settings, server.url("/atom.xml"), backfill=1, dispatch=dispatch)
    assert (feed["kind"], feed["title"], feed["entries_seen"]) == ("atom", "Atom Show", 2)
    [(job_id, _)] = dispatch.calls
    assert jobs.get(settings, job_id)["title"] == "Atom 2"


def test_atom_entries_keep_ids_media_links_titles_and_dates(settings, server):
    body = ('<?xml version="1.0" encoding="utf-8"?>'
            '<feed xmlns="http://www.w3.org/2005/Atom" xmlns:media="http://search.yahoo.com/mrss/">'
            "<title>Tom &amp; Jerry&#8217;s show</title>"
            "<entry><id> urn:ep:old </id><title>Old &lt;one&gt;</title><published>2026-01-02T03:04:05Z</published>"
            '<link href="/episodes/old.html"/><link rel="enclosure" href="/media/ep1.mp4" type="video/mp4"/></entry>'
            "<entry><id>urn:ep:new</id><title>New</title><updated>2026-02-01T00:00:00+01:00</updated>"
            '<link rel="alternate" type="text/html" href="/episodes/new.html"/>'
            f'<media:content url="{server.url("/media/ep2.mp4")}" type="video/mp4"/></entry>'
            "<entry><id>yt:video:abc</id><title>YouTube style</title>"
            '<link rel="alternate" href="https://www.youtube.com/watch?v=abc"/><media:group>'
            '<media:content url="https://www.youtube.com/v/abc?version=3" type="application/x-shockwave-flash"/>'
            "</media:group></entry>"
            "<entry><id>ep-3</id><title>Page only</title>"
            '<link rel="alternate" href="https://example.org/page"/></entry>'
            "<entry><id>https://example.org/id-is-no-link</id><title>Nothing to fetch</title></entry>"
            "</feed>").encode()
    server.serve("/atom.xml", body, "application/atom+xml")
    listing = download.list_entries(server.url("/atom.xml"), settings)
    assert (listing.kind, listing.title) == ("atom", "Tom & Jerry\u2019s show")
    assert [(e.entry_id, e.url, e.title, e.published_at) for e in listing.entries] == [
        ("urn:ep:old", server.url("/media/ep1.mp4"), "Old <one>", 1767323045.0),      # relative link resolved
        ("urn:ep:new", server.url("/media/ep2.mp4"), "New", 1769900400.0),            # media:content, UTC
        ("yt:video:abc", "https://www.youtube.com/watch?v=abc", "YouTube style", None),   # a player is no media
        ("ep-3", "https://example.org/page", "Page only", None),   # no media: its page; the id as written
    ]


def test_a_feed_declaring_xml_entities_is_refused_before_it_is_expanded(settings, server):
    laughs = '<!ENTITY lol "lol">' + "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1 or str()};" * 10}">'
                                             for i in range(1, 10))
    bomb = (f'<?xml version="1.0"?><!DOCTYPE feed [{laughs}]><feed xmlns="http://www.w3.org/2005/Atom">'
            f"<title>&lol9;</title><entry><id>1</id><title>&lol9;</title>"
            f'<link rel="enclosure" href="{server.url("/media/ep1.mp4")}"/></entry></feed>').encode()
    server.serve("/bomb.xml", bomb, "application/atom+xml")
    started = time.monotonic()
    with pytest.raises(BadInput, match=r"/bomb\.xml declares XML entities .* refused as unsafe"):
        feeds.add(settings, server.url("/bomb.xml"))
    assert time.monotonic() - started < 30
    local_file = (b'<?xml version="1.0"?><!DOCTYPE feed [<!ENTITY secret SYSTEM "file:///etc/hostname">]>'
                  b'<feed xmlns="http://www.w3.org/2005/Atom"><title>&secret;</title></feed>')
    server.serve("/xxe.xml", local_file, "application/atom+xml")
    with pytest.raises(BadInput, match="refused as unsafe"):
        feeds.add(settings, server.url("/xxe.xml"))
    assert feeds.list_feeds(settings) == []


def test_a_page_that_is_not_a_feed_is_refused_naming_the_url(settings, server):
    server.serve("/blog.html", b"<html><head><title>Blog</title></head><body>No feed.</body></html>", "text/html")
    with pytest.raises(BadInput, match=f"{server.url('/blog.html')} is not a page or media file"):
        feeds.add(settings, server.url("/blog.html"))


def test_adding_a_single_video_or_the_same_feed_twice_is_refused(settings, server):
    with pytest.raises(BadInput, match="single item"):
        feeds.add(settings, server.url("/media/ep1.mp4"))
    server.rss("/feed.xml", items(1))
    feeds.add(settings, server.url("/feed.xml"))
    with pytest.raises(BadInput, match="already followed as feed"):
        feeds.add(settings, server.url("/feed.xml/?utm_source=x"))
    with pytest.raises(BadInput, match="was not found"):
        feeds.add(settings, server.url("/missing.xml"))


@pytest.mark.slow
def test_cli_feeds_add_list_check_remove_speak_json(settings, server, tmp_path):
    server.rss("/feed.xml", items(1))
    env = dict(os.environ, CLIPDESK_DATA_DIR=str(settings.data_dir), CLIPDESK_CONFIG=str(operator_config(tmp_path)))

    def cli(*args):
        done = subprocess.run([sys.executable, "-m", "pipeline", "feeds", *args, "--json"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    added = cli("add", server.url("/feed.xml"), "--interval", "30", "--max-clips", "3")
    assert added["interval_minutes"] == 30 and added["options"] == {"max_clips": 3} and added["entries_seen"] == 1
    assert [f["feed_id"] for f in cli("list")["feeds"]] == [added["feed_id"]]
    assert cli("check")["results"] == [{"feed_id": added["feed_id"], "queued": [], "waiting": 0,
                                        "error": None}]
    assert cli("remove", str(added["feed_id"]))["removed"] is True
    assert feeds.list_feeds(settings) == []
