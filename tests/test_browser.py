"""The dashboard in a real browser: Playwright drives Debian's chromium against a real
``streamlit run`` and a real ``huey_consumer`` on free ports with a temp data dir.

An operator's day in one test: upload a generated episode through the file input, watch
its job reach succeeded on the Jobs page, open Review, play the four renders of a clip
(every <video> reaches readyState >= 1, no request answers 404), approve one clip and
reject another, download the zip of approved clips and probe what is inside. Every page
is screenshotted into ``tests/artifacts/browser/`` and must show no Streamlit exception.

``make test`` installs chromium (``apt-get install chromium``); Playwright never downloads
a browser: it launches ``/usr/bin/chromium``.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import mediagen
import pytest

from pipeline import jobs
from pipeline.config import PROJECT_ROOT, load_settings
from pipeline.library import episodes
from pipeline.media import probe
from pipeline.ops import serve

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = PROJECT_ROOT / "tests" / "artifacts" / "browser"
JOB_TIMEOUT_S = 420
UI_TIMEOUT_MS = 30_000
# Short clips and the fastest x264 preset keep the real pipeline quick on 2 cores.
TEST_CONFIG = """
enrich:
  max_clips: 3
  min_clip_seconds: 6
  max_clip_seconds: 14
render:
  preset: ultrafast
  crf: 35
worker:
  poll_max_seconds: 0.5
  heartbeat_seconds: 1.0
dashboard:
  poll_seconds: 1.0
  max_upload_mb: 50
"""

pytestmark = [pytest.mark.timeout(900), pytest.mark.slow]   # a real browser, consumer and dashboard


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url: str, process: subprocess.Popen, log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the dashboard exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"{url} did not answer within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def stop(process: subprocess.Popen, sig: int) -> None:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def stack(tmp_path, monkeypatch):
    """A real consumer and a real dashboard sharing one temp data dir; yields (base_url, settings)."""
    assert Path(CHROMIUM).exists(), "chromium is not installed: `make test` installs it (apt-get install chromium)"
    config = tmp_path / "test.yaml"
    config.write_text(TEST_CONFIG)
    env = dict(os.environ, CLIPDESK_CONFIG=str(config), CLIPDESK_DATA_DIR=str(tmp_path / "data"),
               PYTHONUNBUFFERED="1")
    monkeypatch.setenv("CLIPDESK_CONFIG", env["CLIPDESK_CONFIG"])
    monkeypatch.setenv("CLIPDESK_DATA_DIR", env["CLIPDESK_DATA_DIR"])
    settings = load_settings()
    settings.data_dir.mkdir(parents=True)
    port = free_port()
    worker_log, dashboard_log = tmp_path / "worker.log", tmp_path / "dashboard.log"
    with open(worker_log, "wb") as wlog, open(dashboard_log, "wb") as dlog:
        worker = subprocess.Popen([sys.executable, "-m", "huey.bin.huey_consumer", "queue_worker.huey",
                                   "-w", "1", "-k", "thread", "-m", "0.5", "-C"],
                                  cwd=PROJECT_ROOT, env=env, stdout=wlog, stderr=subprocess.STDOUT)
        dashboard = subprocess.Popen(serve.dashboard_command(settings, port) + ["--server.fileWatcherType", "none"],
                                     cwd=PROJECT_ROOT, env=env, stdout=dlog, stderr=subprocess.STDOUT)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/_stcore/health", dashboard, dashboard_log)
        yield f"http://127.0.0.1:{port}", settings, worker_log
    finally:
        stop(dashboard, signal.SIGTERM)
        stop(worker, signal.SIGINT)


@pytest.fixture
def browser_page(stack):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
        page = context.new_page()
        page.set_default_timeout(UI_TIMEOUT_MS)
        not_found: list[str] = []
        # Streamlit probes /<page>/_stcore/... before / on a deep link; those 404s are its own. Media must never 404.
        page.on("response", lambda r: not_found.append(r.url) if r.status == 404 and "/media/" in r.url else None)
        page.not_found = not_found
        try:
            yield page
        finally:
            context.close()
            browser.close()


def settle(page, text: str | re.Pattern) -> None:
    """Wait for the app shell, then for ``text``, then for Streamlit to finish running the script."""
    page.wait_for_selector('[data-testid="stAppViewContainer"]')
    page.get_by_text(text).first.wait_for()
    page.wait_for_function("!document.querySelector('[data-testid=\"stStatusWidgetRunningIcon\"]')")


def visit(page, base: str, path: str, text: str | re.Pattern, shot: str) -> None:
    page.goto(f"{base}/{path}")
    settle(page, text)
    check_page(page, shot)


def check_page(page, shot: str) -> None:
    # Streamlit scrolls inside its own container, so grow the viewport to the content for a whole-page shot.
    height = page.evaluate("document.querySelector('[data-testid=\"stMain\"]')?.scrollHeight || 1000")
    page.set_viewport_size({"width": 1400, "height": max(1000, min(int(height), 8000))})
    page.screenshot(path=str(ARTIFACTS / f"{shot}.png"))
    page.set_viewport_size({"width": 1400, "height": 1000})
    exceptions = page.locator('[data-testid="stException"]')
    assert exceptions.count() == 0, f"{shot}: Streamlit exception shown: {exceptions.first.inner_text()}"
    assert page.get_by_text("Something went wrong on this page").count() == 0, f"{shot}: the page broke"


def test_operator_uploads_watches_reviews_and_downloads_in_a_real_browser(stack, browser_page, tmp_path):
    base, settings, worker_log = stack
    page = browser_page
    video = mediagen.speech_video(tmp_path / "talk.mp4")

    visit(page, base, "", "No jobs yet", "01-overview-empty")
    visit(page, base, "settings", "Effective configuration", "02-settings")

    # Upload through the real file input and queue it.
    visit(page, base, "new_episode", "Upload episodes", "03-new-episode")
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(video))
    page.locator('[data-testid="stFileChipName"]', has_text="talk.mp4").wait_for()
    page.wait_for_function("!document.querySelector('[data-testid=\"stFileChipIconSpinner\"]')")
    assert page.locator('[data-testid="stFileChipIconError"]').count() == 0
    page.get_by_role("button", name="Process").click()
    page.get_by_text("Queued 1 episode").wait_for(timeout=UI_TIMEOUT_MS * 3)   # the first dispatch imports the worker
    settle(page, "Queued 1 episode")
    check_page(page, "04-queued")
    queued = jobs.list_jobs(settings)
    assert [job["status"] for job in queued] in (["queued"], ["running"], ["succeeded"])
    job_id, episode_id = queued[0]["job_id"], queued[0]["episode_id"]

    # The Jobs page follows the job live until it succeeds.
    page.get_by_text("Follow progress on the Jobs page").click()
    settle(page, "Job details")
    assert page.url.endswith(f"/jobs?job={job_id}")
    page.get_by_text(f"Job #{job_id} succeeded · created").first.wait_for(timeout=JOB_TIMEOUT_S * 1000)
    assert jobs.get(settings, job_id)["status"] == "succeeded", worker_log.read_text()[-3000:]
    settle(page, "Job details")
    check_page(page, "05-jobs-succeeded")

    # Review: the four renders of the first clip play.
    summary = episodes.summary(settings, episode_id)
    assert Path(summary["source_path"]).read_bytes() == video.read_bytes()   # the uploaded bytes, intact
    clips = summary["clips"]
    assert clips, "the speech episode should yield clips"
    page.get_by_role("button", name="Open episode").click()
    settle(page, re.compile(r"Clips: \d+"))
    page.get_by_role("radio", name="all four").first.click()
    # One player per clip card ("all four" adds three to the first); only the open tab is drawn.
    page.wait_for_function(f"document.querySelectorAll('video').length == {len(clips) + 3}")
    page.wait_for_function("[...document.querySelectorAll('video')].every(v => v.readyState >= 1)",
                           timeout=UI_TIMEOUT_MS * 2)
    sources = page.eval_on_selector_all("video", "videos => videos.map(v => v.currentSrc)")
    assert all("/media/" in src for src in sources) and len(set(sources[:4])) == 4
    durations = page.eval_on_selector_all("video", "videos => videos.map(v => v.duration)")
    first_length = clips[0]["end"] - clips[0]["start"]
    assert all(abs(d - first_length) < 1.5 for d in durations[:4]), (durations, first_length)
    check_page(page, "06-review-clips")

    # Approve one clip, reject another; the database follows.
    page.get_by_role("button", name="Approve").first.click()
    settle(page, "Clip marked approved.")
    if len(clips) > 1:
        page.get_by_role("button", name="Reject").nth(1).click()
        settle(page, "Clip marked rejected.")
    statuses = [clip["status"] for clip in episodes.summary(settings, episode_id)["clips"]]
    assert statuses[0] == "approved" and (len(statuses) == 1 or statuses[1] == "rejected")

    # Transcript: clicking a line seeks the episode player.
    page.get_by_role("tab", name="Transcript & chapters").click()
    line = page.get_by_role("button", name=re.compile(r"^0:\d\d\s+\S")).nth(2)
    seconds = int(re.match(r"0:(\d\d)", line.inner_text()).group(1))
    line.click()
    settle(page, f"Playing from 0:{seconds:02d}.")
    check_page(page, "07-review-transcript")

    # Download the zip of approved clips and look inside.
    page.get_by_role("tab", name="Downloads").click()
    with page.expect_download(timeout=UI_TIMEOUT_MS * 2) as download_info:
        page.get_by_role("button", name="Download approved clips (.zip)").click()
    archive_path = tmp_path / "approved.zip"
    download_info.value.save_as(archive_path)
    check_page(page, "08-review-downloads")
    approved = episodes.summary(settings, episode_id)["clips"][0]
    with zipfile.ZipFile(archive_path) as archive:
        names = archive.namelist()
        folders = {name.split("/")[0] for name in names if "/" in name}
        assert len(folders) == 1, names                      # the rejected clip is not in the zip
        folder = folders.pop()
        for variant, path in approved["renders"].items():
            assert archive.getinfo(f"{folder}/{variant}.mp4").file_size == Path(path).stat().st_size
        assert f"{folder}/captions.srt" in names and "transcript.srt" in names
        archive.extract(f"{folder}/subtitled_9x16.mp4", tmp_path / "unzipped")
    info = probe(tmp_path / "unzipped" / folder / "subtitled_9x16.mp4")
    assert (info.width, info.height) == (1080, 1920)
    assert abs(info.duration - (approved["end"] - approved["start"])) < 1.0

    visit(page, base, "episodes", "1 episode, newest first", "09-episodes")
    visit(page, base, "", "Throughput", "10-overview")
    assert not page.not_found, f"404 responses: {page.not_found}"
