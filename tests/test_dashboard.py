"""The Streamlit dashboard, driven by ``AppTest`` against real data directories.

A finished episode is built once per module by running the real pipeline on a generated
speech video; each test works on its own copy, with ``CLIPDESK_DATA_DIR`` pointing at it
before the app loads. No worker runs: queued jobs stay queued, which is what the
enqueue / cancel / retry assertions need.
"""

from __future__ import annotations

import contextlib
import importlib
import shutil
import sqlite3
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

sys.path.insert(0, str(Path(__file__).parent))
import mediagen  # noqa: E402

from pipeline import episodes, jobs, runner  # noqa: E402
from pipeline.config import PROJECT_ROOT, load_settings  # noqa: E402

APP = str(PROJECT_ROOT / "dashboard.py")
OVERVIEW, NEW_EPISODE, JOBS, EPISODE = "pages/overview.py", "pages/new_episode.py", "pages/jobs.py", "pages/episode.py"
TIMEOUT = 30

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A data dir holding one episode processed end to end by the real pipeline."""
    root = tmp_path_factory.mktemp("finished")
    video = mediagen.speech_video(root / "talk.mp4")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CLIPDESK_DATA_DIR", str(root / "data"))
        settings = load_settings()
        episode_id, job_id = jobs.create(settings, str(video))
        assert runner.run_job(settings, job_id) == "succeeded"
        summary = episodes.summary(settings, episode_id)
    assert summary["clips"], "the speech sample should yield at least one clip"
    return {"data_dir": root / "data", "episode_id": episode_id, "job_id": job_id, "summary": summary}


@pytest.fixture
def empty_dir(tmp_path, monkeypatch):
    data_dir = tmp_path / "data"
    monkeypatch.setenv("CLIPDESK_DATA_DIR", str(data_dir))
    return data_dir


@pytest.fixture
def finished_dir(finished, tmp_path, monkeypatch):
    """A private copy of the finished data dir, so tests can add and change jobs."""
    data_dir = tmp_path / "data"
    shutil.copytree(finished["data_dir"], data_dir)
    monkeypatch.setenv("CLIPDESK_DATA_DIR", str(data_dir))
    return data_dir


@pytest.fixture
def queue(finished_dir):
    """A fresh ``queue_worker`` bound to this test's data dir (it reads settings at import).

    A new module object rather than a reload, so no other test's reference is rebound;
    the dashboard imports it when it dispatches and so gets this one.
    """
    sys.modules.pop("queue_worker", None)
    queue_worker = importlib.import_module("queue_worker")
    yield queue_worker
    sys.modules.pop("queue_worker", None)


def open_page(page: str, query_params: dict | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    if page != OVERVIEW:
        at.switch_page(page)
        at.query_params.update(query_params or {})
        at.run()
    assert not at.exception, at.exception
    return at


def texts(at: AppTest) -> str:
    """Every piece of text the page shows, as one string to search."""
    parts = []
    for kind in ("markdown", "caption", "info", "warning", "error", "success", "header", "subheader", "title"):
        parts += [element.value for element in getattr(at, kind)]
    return "\n".join(str(p) for p in parts)


def db_counts(data_dir: Path) -> dict[str, int]:
    with contextlib.closing(sqlite3.connect(data_dir / "clipdesk.db")) as conn:
        return dict(conn.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status").fetchall())


def table(at: AppTest, index: int = 0):
    return at.dataframe[index].value


@pytest.mark.parametrize(("page", "empty_text"), [
    (OVERVIEW, "No jobs yet"),
    (NEW_EPISODE, "Upload episodes"),
    (JOBS, "No jobs yet"),
    (EPISODE, "No episodes yet"),
])
def test_every_page_renders_its_empty_state_on_an_empty_data_dir(empty_dir, page, empty_text):
    at = open_page(page)
    shown = texts(at) + "\n".join(w.label for w in at.file_uploader)
    assert empty_text in shown
    assert not at.error


def test_overview_warns_when_no_worker_is_running(empty_dir):
    at = open_page(OVERVIEW)
    warning = "\n".join(w.value for w in at.warning)
    assert "No worker is running" in warning and "huey_consumer queue_worker.huey" in warning


def test_overview_counts_match_the_database(finished_dir):
    settings = load_settings()
    jobs.create(settings, str(mediagen.DATA / "speech.opus"))          # queued
    _, to_cancel = jobs.create(settings, str(mediagen.DATA / "speech.opus"))
    jobs.cancel(settings, to_cancel)                                   # cancelled
    at = open_page(OVERVIEW)
    metrics = {m.label: int(m.value) for m in at.metric}
    counts = db_counts(finished_dir)
    assert metrics == {"Queued": counts.get("queued", 0), "Running": counts.get("running", 0),
                       "Succeeded": counts.get("succeeded", 0), "Failed": counts.get("failed", 0),
                       "Cancelled": counts.get("cancelled", 0)}
    assert metrics["Queued"] == metrics["Succeeded"] == metrics["Cancelled"] == 1


def failed_job(folder, name: str) -> tuple[str, int]:
    """A real job that failed at ingest: a text file given as an episode."""
    settings = load_settings()
    bad = folder / name
    bad.write_text(f"{name} is not a video")
    episode_id, job_id = jobs.create(settings, str(bad))
    assert runner.run_job(settings, job_id) == "failed"
    return episode_id, job_id


def test_overview_lists_recent_failures_with_their_error(finished_dir):
    settings = load_settings()
    _, job_id = failed_job(finished_dir, "not-media.mp4")
    error = jobs.get(settings, job_id)["error"]
    at = open_page(OVERVIEW)
    failures = "\n".join(e.value for e in at.error)
    assert f"job #{job_id}" in failures and error in failures


def test_jobs_page_lists_the_finished_job_as_succeeded(finished_dir, finished):
    at = open_page(JOBS)
    rows = table(at)
    row = rows[rows["ID"] == finished["job_id"]].iloc[0]
    assert "succeeded" in row["Status"]
    assert row["Progress"] == 1.0
    assert row["Episode"] == finished["summary"]["title"]
    timeline = table(at, 1)
    assert list(timeline["Event"])[-1] == "succeeded"
    assert {"ingest", "transcribe", "render"} <= set(timeline["Stage"])


def test_jobs_page_status_filter_shows_only_that_status(finished_dir):
    at = open_page(JOBS)
    at.segmented_control(key="jobs_status").set_value("failed").run()
    assert not at.exception
    assert not at.dataframe
    assert "No failed jobs." in texts(at)


def test_episode_page_shows_transcript_clips_and_four_videos_per_clip(finished_dir, finished):
    at = open_page(EPISODE, {"episode": finished["episode_id"]})
    shown = texts(at)
    assert "lesson" in shown.lower()
    assert "testing" in shown
    clips = finished["summary"]["clips"]
    for clip in clips:
        assert any(clip["title"] in s.value.replace("\\", "") for s in at.subheader)
    assert len(at.get("video")) == 4 * len(clips)
    labels = [m.value for m in at.markdown if m.value.startswith("**") and "x" in m.value]
    assert labels[:4] == ["**clean_9x16**", "**subtitled_9x16**", "**clean_16x9**", "**subtitled_16x9**"]
    assert [b.label for b in at.get("download_button")] == ["Download .srt", "Download .vtt", "Download .txt"]


def test_episode_transcript_filter_keeps_matching_lines_only(finished_dir, finished):
    at = open_page(EPISODE, {"episode": finished["episode_id"]})
    at.text_input(key="transcript_filter").input("third lesson").run()
    assert not at.exception
    transcript = next(m.value for m in at.markdown if m.value.startswith("`"))
    assert "third lesson" in transcript.lower()
    assert "welcome" not in transcript.lower()


def test_episode_page_shows_progress_while_its_job_waits(finished_dir):
    settings = load_settings()
    episode_id, job_id = jobs.create(settings, str(mediagen.DATA / "speech.opus"), title="Waiting episode")
    at = open_page(EPISODE, {"episode": episode_id})
    assert f"Job #{job_id} is queued" in "\n".join(i.value for i in at.info)
    assert "Clips appear here once the episode is processed." in texts(at)
    assert not at.get("video")


def test_new_episode_with_a_missing_local_path_shows_the_error(empty_dir):
    at = open_page(NEW_EPISODE)
    missing = str(empty_dir / "nope.mp4")
    at.text_input[0].input(missing)
    at.button[0].click().run()
    assert not at.exception
    assert [e.value for e in at.error] == [f"File not found: {missing}"]
    assert not jobs.list_jobs(load_settings())


def test_new_episode_with_a_local_path_queues_a_job(queue, finished_dir):
    source = mediagen.DATA / "speech.opus"
    at = open_page(NEW_EPISODE)
    at.text_input[0].input(str(source))
    at.text_input[1].input("My talk")
    at.number_input[0].set_value(3)
    at.button[0].click().run()
    assert not at.exception and not at.error
    newest = jobs.list_jobs(load_settings(), limit=1)[0]
    assert newest["status"] == "queued" and newest["title"] == "My talk"
    assert f"job **#{newest['job_id']}**" in at.success[0].value
    assert queue.huey.pending_count() == 1
    at.button[0].click().run()                                    # a second press queues nothing new
    assert f"already queued (job #{newest['job_id']})" in texts(at)
    assert queue.huey.pending_count() == 1 and len(jobs.list_jobs(load_settings(), status="queued")) == 1


def test_new_episode_upload_is_saved_and_queued_once(queue, finished_dir):
    at = open_page(NEW_EPISODE)
    data = (mediagen.DATA / "speech.opus").read_bytes()
    at.file_uploader[0].set_value([("talk.opus", data, "audio/ogg")]).run()
    at.button[0].click().run()
    assert not at.exception and not at.error
    newest = jobs.list_jobs(load_settings(), limit=1)[0]
    assert newest["status"] == "queued"
    source = Path(episodes.summary(load_settings(), newest["episode_id"])["source"])
    assert source.name == "talk.opus" and source.read_bytes() == data
    at.button[0].click().run()                                    # same files, pressed again
    assert "already queued" in texts(at)
    assert queue.huey.pending_count() == 1


def test_cancel_from_the_jobs_page_marks_a_queued_job_cancelled(queue, finished_dir):
    settings = load_settings()
    _, job_id = jobs.enqueue(settings, str(mediagen.DATA / "speech.opus"), queue.dispatch)
    at = open_page(JOBS, {"job": str(job_id)})
    assert at.selectbox(key="job_pick").value == job_id
    cancel = next(b for b in at.button if b.label == "Cancel")
    assert not cancel.disabled
    cancel.click().run()
    assert not at.exception
    assert jobs.get(settings, job_id)["status"] == "cancelled"
    assert f"Job #{job_id} is cancelled." in "\n".join(s.value for s in at.success)
    rows = table(at)
    assert "cancelled" in rows[rows["ID"] == job_id].iloc[0]["Status"]

    retry = next(b for b in at.button if b.label == "Retry")
    retry.click().run()
    assert jobs.get(settings, job_id)["status"] == "queued"


def test_open_episode_from_the_jobs_page(finished_dir, finished):
    at = open_page(JOBS, {"job": str(finished["job_id"])})
    next(b for b in at.button if b.label == "Open episode").click().run()
    assert not at.exception
    assert at.query_params.get("episode") == finished["episode_id"]
    assert len(at.get("video")) == 4 * len(finished["summary"]["clips"])


def test_a_deep_link_as_first_request_still_runs_through_the_navigation(empty_dir):
    """Streamlit treats ``pages/`` as an old-style page folder until ``st.navigation`` runs;
    a first request for ``/jobs`` must not leave the app in that mode."""
    from streamlit.runtime.pages_manager import PagesManager

    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.switch_page(JOBS).run()                     # no run of the main page before
    assert not at.exception
    assert [t.value for t in at.title] == ["Jobs"]
    assert PagesManager.uses_pages_directory is False


def test_episode_page_explains_a_failed_job_and_links_to_retry(finished_dir):
    episode_id, job_id = failed_job(finished_dir, "broken.mp4")
    at = open_page(EPISODE, {"episode": episode_id})
    assert f"Processing failed (job #{job_id})" in at.error[0].value
    assert "No clips were found in this episode." in texts(at)
