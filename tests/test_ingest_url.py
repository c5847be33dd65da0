"""URL ingest through the real yt-dlp against a real HTTP server on 127.0.0.1."""

import dataclasses
import json
import os
import subprocess
import sys

import ffmpeg
import mediagen
import pytest
from conftest import operator_config
from media_server import MediaServer
from yt_dlp.utils import DownloadError, ExtractorError, GeoRestrictedError

from pipeline import db, jobs
from pipeline.config import load_settings
from pipeline.errors import BadInput, Cancelled, ConfigError, DuplicateSource, TransientError
from pipeline.jobs import runner
from pipeline.media import ffmpeg_exe, probe
from pipeline.stages import download, ingest
from pipeline.stages.context import StageContext

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def talk(tmp_path_factory):
    return mediagen.tone_video(tmp_path_factory.mktemp("talk") / "talk.mp4", 3.0, width=320, height=180)


@pytest.fixture
def server(talk):
    with MediaServer() as srv:
        srv.serve("/media/talk.mp4", talk.read_bytes(), "video/mp4")
        yield srv


def stage_context(settings, episode_id, progress=lambda fraction: None) -> StageContext:
    return StageContext(settings, episode_id, {}, progress=progress)


def episode_row(settings, episode_id):
    with db.session(settings.app_db) as conn:
        return db.get_episode(conn, episode_id)


def test_url_is_downloaded_into_the_episode_with_metadata_and_byte_progress(settings, server, talk):
    url = server.url("/media/talk.mp4")
    episode_id, _ = jobs.create(settings, url)
    seen = []
    ctx = stage_context(settings, episode_id, seen.append)
    ingest.run(ctx)

    source = ctx.source_path()
    assert source.name == "source.mp4" and source.read_bytes() == talk.read_bytes()
    info = probe(source)
    assert (info.width, info.height) == (320, 180) and info.duration == pytest.approx(3.0, abs=0.1)
    assert not ingest.download_folder(ctx).exists()
    assert seen == sorted(seen) and seen[-1] == 1.0 and any(0 < f < 1 for f in seen)
    row = episode_row(settings, episode_id)
    state = json.loads(row["download_json"])
    assert state["status"] == "finished" and state["downloaded_bytes"] == talk.stat().st_size
    meta = json.loads(row["metadata_json"])
    assert meta["original_url"] == url and meta["extractor"] == "Generic" and meta["title"] == "talk"
    assert row["duration"] == pytest.approx(3.0, abs=0.1)


def test_missing_media_url_fails_the_job_with_a_clear_error(settings, server):
    _, job_id = jobs.create(settings, server.url("/media/gone.mp4"))
    assert runner.run_job(settings, job_id) == "failed"
    job = jobs.get(settings, job_id)
    assert job["error_kind"] == "bad_input"
    assert "was not found (HTTP 404)" in job["error"] and "/media/gone.mp4" in job["error"]


def test_server_errors_are_transient_so_the_job_is_retried(settings, server):
    server.serve("/media/busy.mp4", b"", "text/plain", status=503)
    settings = dataclasses.replace(settings, download=dataclasses.replace(settings.download, retries=0))
    episode_id, _ = jobs.create(settings, server.url("/media/busy.mp4"))
    with pytest.raises(TransientError, match="HTTP 503"):
        ingest.run(stage_context(settings, episode_id))


def test_unreachable_host_is_transient(settings):
    settings = dataclasses.replace(settings, download=dataclasses.replace(settings.download, retries=0))
    episode_id, _ = jobs.create(settings, "http://127.0.0.1:9/nothing-listens-here.mp4")
    with pytest.raises(TransientError, match="Could not download from 127.0.0.1"):
        ingest.run(stage_context(settings, episode_id))


def test_a_download_that_is_not_media_is_bad_input_and_leaves_nothing_behind(settings, server):
    server.serve("/media/fake.mp4", os.urandom(20_000), "video/mp4")
    episode_id, _ = jobs.create(settings, server.url("/media/fake.mp4"))
    ctx = stage_context(settings, episode_id)
    with pytest.raises(BadInput, match="is not playable media"):
        ingest.run(ctx)
    assert not list(ctx.episode_dir.glob("source.*")) and not ingest.download_folder(ctx).exists()


def test_cancel_from_the_progress_hook_stops_the_download_and_removes_the_partial_file(settings, server):
    episode_id, _ = jobs.create(settings, server.url("/media/talk.mp4"))

    def cancel_once_started(fraction):
        if fraction > 0:
            raise Cancelled("The job was cancelled.")

    ctx = stage_context(settings, episode_id, cancel_once_started)
    with pytest.raises(Cancelled):
        ingest.run(ctx)
    assert not ingest.download_folder(ctx).exists()
    assert not list(ctx.episode_dir.glob("source.*"))
    assert episode_row(settings, episode_id)["source_path"] is None


def test_a_feed_url_is_refused_as_a_single_episode(settings, server):
    server.rss("/feed.xml", [("g1", "One", "/media/talk.mp4")])
    episode_id, _ = jobs.create(settings, server.url("/feed.xml"))
    with pytest.raises(BadInput, match="not a single episode.*feeds add"):
        ingest.run(stage_context(settings, episode_id))


@pytest.mark.parametrize("url", ["ftp://example.com/talk.mp4", "file:///etc/passwd", "javascript://x"])
def test_only_http_and_https_urls_are_accepted(settings, url):
    with pytest.raises(BadInput, match="http:// and https://"):
        jobs.create(settings, url)


def test_the_same_url_twice_is_offered_as_reprocess_not_duplicated(settings, server):
    url = server.url("/media/talk.mp4")
    first, _ = jobs.create(settings, url)
    with pytest.raises(DuplicateSource) as caught:
        jobs.create(settings, url.replace("http://", "HTTP://") + "?utm_source=newsletter#t=10")
    assert caught.value.episode_id == first
    assert first in str(caught.value) and "reprocess" in str(caught.value)
    second, _ = jobs.create(settings, url, allow_duplicate=True)
    assert second != first


def test_cli_enqueue_reports_the_duplicate_episode_as_json(settings, server, tmp_path):
    url = server.url("/media/talk.mp4")
    first, _ = jobs.create(settings, url)
    env = dict(os.environ, CLIPDESK_DATA_DIR=str(settings.data_dir), CLIPDESK_CONFIG=str(operator_config(tmp_path)))
    done = subprocess.run([sys.executable, "-m", "pipeline", "enqueue", url, "--json"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    answer = json.loads(done.stdout)
    assert answer["duplicate_of"] == first
    assert f"reprocess {first}" in answer["error"] and "--allow-duplicate" in answer["error"]


def test_source_key_ignores_what_does_not_change_the_media():
    key = download.source_key
    assert key("https://www.youtube.com/watch?v=abcDEF12345&t=30s&si=x") == key("https://youtu.be/abcDEF12345")
    assert key("https://youtube.com/shorts/abcDEF12345") == "youtube:abcDEF12345"
    assert key("http://Example.com:80/a/b/?utm_medium=x&b=2&a=1#frag") == key("https://example.com/a/b?a=1&b=2")
    assert key("https://example.com/a?id=1") != key("https://example.com/a?id=2")
    assert key("https://www.youtube.com/watch?v=abcDEF12345") != key("https://www.youtube.com/watch?v=zzzDEF12345")


def test_a_dropped_connection_resumes_from_the_partial_file(settings, server, talk):
    size = talk.stat().st_size
    server.cut("/media/talk.mp4", size // 3, skip=1)   # the first GET only reads the headers
    episode_id, _ = jobs.create(settings, server.url("/media/talk.mp4"))
    ctx = stage_context(settings, episode_id)
    ingest.run(ctx)
    assert ctx.source_path().read_bytes() == talk.read_bytes()
    ranges = [r.headers.get("Range") for r in server.received("/media/talk.mp4", "GET")]
    assert any(r and r.startswith("bytes=") and r != "bytes=0-" for r in ranges), ranges


def test_bad_download_settings_are_rejected_with_the_key(settings, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("download:\n  rate_limit: fast\n")
    with pytest.raises(ConfigError, match="download.rate_limit"):
        load_settings(bad)
    bad.write_text("webhooks:\n  urls: [ftp://example.com/hook]\n")
    with pytest.raises(ConfigError, match="webhooks.urls"):
        load_settings(bad)
    missing = dataclasses.replace(settings, download=dataclasses.replace(settings.download,
                                                                         cookies_file=str(tmp_path / "no.txt")))
    episode_id, _ = jobs.create(settings, "https://example.com/video.mp4")
    with pytest.raises(BadInput, match="cookies_file .* does not exist"):
        ingest.run(stage_context(missing, episode_id))


def test_a_failed_attempt_keeps_its_partial_download_for_the_retry_to_resume(settings, server, talk):
    size = talk.stat().st_size
    no_retries = dataclasses.replace(settings, download=dataclasses.replace(settings.download, retries=0))
    server.cut("/media/talk.mp4", size // 2, skip=1)
    episode_id, _ = jobs.create(settings, server.url("/media/talk.mp4"))
    ctx = stage_context(no_retries, episode_id)
    with pytest.raises(TransientError):
        ingest.run(ctx)
    [partial] = ingest.download_folder(ctx).iterdir()
    kept = partial.stat().st_size
    assert 0 < kept <= size // 2

    ingest.run(ctx)   # the job's next attempt
    assert ctx.source_path().read_bytes() == talk.read_bytes()
    assert server.received("/media/talk.mp4", "GET")[-1].headers.get("Range") == f"bytes={kept}-"


@pytest.fixture(scope="module")
def hls_site(tmp_path_factory, talk):
    """An HLS master playlist like the big sites serve: two video-only renditions and a separate audio track."""
    root = tmp_path_factory.mktemp("hls")
    source = ffmpeg.input(str(talk))
    renditions = {"v180": (source.video.filter("scale", 160, 90), dict(vcodec="libx264", preset="ultrafast", an=None)),
                  "v360": (source.video, dict(vcodec="libx264", preset="ultrafast", an=None)),
                  "aud": (source.audio, dict(acodec="aac", vn=None))}
    for name, (stream, codecs) in renditions.items():
        (root / name).mkdir()
        (ffmpeg.output(stream, str(root / name / "index.m3u8"), f="hls", hls_time=1, hls_playlist_type="vod",
                       hls_segment_filename=str(root / name / "seg%d.ts"), **codecs)
         .run(cmd=ffmpeg_exe(), overwrite_output=True, quiet=True))
    master = ('#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="en",DEFAULT=YES,AUTOSELECT=YES,'
              'URI="aud/index.m3u8"\n'
              '#EXT-X-STREAM-INF:BANDWIDTH=200000,RESOLUTION=160x90,CODECS="avc1.42c00b",AUDIO="aud"\nv180/index.m3u8\n'
              '#EXT-X-STREAM-INF:BANDWIDTH=600000,RESOLUTION=320x180,CODECS="avc1.42c00d",AUDIO="aud"\nv360/index.m3u8\n')
    (root / "master.m3u8").write_text(master)
    return root


def serve_tree(server, root):
    for path in (p for p in root.rglob("*") if p.is_file()):
        kind = "application/vnd.apple.mpegurl" if path.suffix == ".m3u8" else "video/mp2t"
        server.serve("/show/" + path.relative_to(root).as_posix(), path.read_bytes(), kind)


@pytest.mark.parametrize("audio_only", [False, True])
def test_separate_video_and_audio_tracks_are_merged_by_the_bundled_ffmpeg_within_max_height(
        settings, server, hls_site, audio_only):
    serve_tree(server, hls_site)
    chosen = dataclasses.replace(settings.download, max_height=120, audio_only=audio_only)
    settings = dataclasses.replace(settings, download=chosen)
    episode_id, _ = jobs.create(settings, server.url("/show/master.m3u8"))
    seen = []
    ctx = stage_context(settings, episode_id, seen.append)
    ingest.run(ctx)
    info = probe(ctx.source_path())
    assert info.has_audio and info.duration == pytest.approx(3.0, abs=0.2)
    if audio_only:
        assert not info.has_video
    else:
        assert info.has_video and (info.width, info.height) == (160, 90), "the best rendition up to 120 px high"
    assert seen == sorted(seen) and seen[-1] == 1.0


@pytest.mark.parametrize("path, status, body, content_type, expected", [
    ("/page.html", 200, b"<html><head><title>Blog</title></head><body>No video here.</body></html>", "text/html",
     "unsupported URL"),
    ("/members/talk.mp4", 403, b"", "text/plain", "refused access (HTTP 403): it may be private"),
    ("/old/talk.mp4", 410, b"", "text/plain", "was not found (HTTP 410)"),
])
def test_links_that_can_never_work_fail_at_once_with_a_sentence(settings, server, path, status, body, content_type,
                                                                expected):
    server.serve(path, body, content_type, status=status)
    _, job_id = jobs.create(settings, server.url(path))
    assert runner.run_job(settings, job_id) == "failed"
    job = jobs.get(settings, job_id)
    assert job["error_kind"] == "bad_input" and expected in job["error"] and job["attempts"] == 1


@pytest.mark.parametrize("error, kind, expected", [
    (GeoRestrictedError("The uploader has not made this video available in your country."), BadInput, "geo-blocked"),
    (ExtractorError("Private video. Sign in if you've been granted access", expected=True), BadInput, "is private"),
    (ExtractorError("Video unavailable. This video has been removed by the uploader", expected=True), BadInput,
     "removed or is unavailable"),
    (ExtractorError("Sign in to confirm your age. This video may be inappropriate", expected=True), BadInput,
     "needs a signed-in account"),
    (DownloadError("ERROR: [download] Got error: Read timed out."), TransientError, "Could not download"),
])
def test_site_errors_from_yt_dlp_map_to_bad_input_or_transient(error, kind, expected):
    wrapped = DownloadError(f"ERROR: {error}", (type(error), error, None))
    mapped = download.explain(wrapped, "https://video.example.com/watch/1")
    assert type(mapped) is kind and expected in str(mapped)
