"""The Streamlit dashboard, driven by ``AppTest`` against real data directories.

A finished episode is built once per module by running the real pipeline on a generated
speech video; each test works on its own copy, with ``CLIPDESK_DATA_DIR`` pointing at it
before the app loads. No worker runs: queued jobs stay queued, which is what the
enqueue / cancel / retry assertions need. Live refresh (``run_every``) and real media
playback are covered by ``test_browser.py``.
"""

from __future__ import annotations

import base64
import contextlib
import http.server
import importlib
import json
import re
import shutil
import sqlite3
import sys
import threading
import time
import zipfile
from pathlib import Path

import mediagen
import pytest
from streamlit.testing.v1 import AppTest

from pipeline import db, jobs
from pipeline.config import PROJECT_ROOT, load_settings
from pipeline.errors import BadInput
from pipeline.jobs import runner
from pipeline.library import bundle, episodes, review
from pipeline.media import probe
from pipeline.ops import health, retention, stats

APP = str(PROJECT_ROOT / "dashboard.py")
OVERVIEW, NEW_EPISODE, JOBS = "pages/overview.py", "pages/new_episode.py", "pages/jobs.py"
EPISODES, REVIEW, SETTINGS = "pages/episodes.py", "pages/review.py", "pages/settings.py"
TIMEOUT = 30
# Short clips and the fastest x264 preset keep the one real pipeline run of this module quick.
FAST_CONFIG = """
enrich:
  max_clips: 3
  min_clip_seconds: 6
  max_clip_seconds: 14
render:
  preset: ultrafast
  crf: 35
"""

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A data dir holding one episode processed end to end by the real pipeline."""
    root = tmp_path_factory.mktemp("finished")
    video = mediagen.speech_video(root / "talk.mp4")
    (root / "fast.yaml").write_text(FAST_CONFIG)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CLIPDESK_DATA_DIR", str(root / "data"))
        mp.setenv("CLIPDESK_CONFIG", str(root / "fast.yaml"))
        settings = load_settings()
        episode_id, job_id = jobs.create(settings, str(video), trusted_path=True)
        assert runner.run_job(settings, job_id) == "succeeded"
        summary = episodes.summary(settings, episode_id)
    assert len(summary["clips"]) >= 2, "the speech sample should yield several clips"
    return {"data_dir": root / "data", "config": root / "fast.yaml", "episode_id": episode_id, "job_id": job_id,
            "summary": summary}


@pytest.fixture
def empty_dir(tmp_path, monkeypatch):
    data_dir = tmp_path / "data"
    monkeypatch.setenv("CLIPDESK_DATA_DIR", str(data_dir))
    monkeypatch.delenv("CLIPDESK_CONFIG", raising=False)
    return data_dir


@pytest.fixture
def finished_dir(finished, tmp_path, monkeypatch):
    """A private copy of the finished data dir, so tests can add and change jobs."""
    data_dir = tmp_path / "data"
    shutil.copytree(finished["data_dir"], data_dir)
    monkeypatch.setenv("CLIPDESK_DATA_DIR", str(data_dir))
    monkeypatch.setenv("CLIPDESK_CONFIG", str(finished["config"]))
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


def use_config(tmp_path, monkeypatch, text: str) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(text)
    monkeypatch.setenv("CLIPDESK_CONFIG", str(config))


def open_page(page: str, query_params: dict | None = None, tab: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    if page != OVERVIEW:
        at.switch_page(page)
        at.query_params.update(query_params or {})
        at.run()
    if tab:
        open_tab(at, tab)
    assert not at.exception, at.exception
    assert not [e.value for e in at.error if e.value.startswith("Something went wrong")]
    return at


def open_tab(at: AppTest, label: str) -> AppTest:
    """What clicking a Review tab does: its state changes and the app reruns with only that tab's content."""
    at.session_state["review_tab"] = label
    at.run()
    assert not [e.value for e in at.error if e.value.startswith("Something went wrong")]
    return at


def texts(at: AppTest) -> str:
    """Every piece of text the page shows, as one string to search."""
    parts = []
    for kind in ("markdown", "caption", "info", "warning", "error", "success", "header", "subheader", "title"):
        parts += [element.value for element in getattr(at, kind)]
    return "\n".join(str(p) for p in parts)


def button(at: AppTest, label: str, index: int = 0):
    return [b for b in at.button if b.label == label][index]


def db_rows(data_dir: Path, sql: str, params=()) -> list[tuple]:
    with contextlib.closing(sqlite3.connect(data_dir / "clipdesk.db")) as conn:
        return conn.execute(sql, params).fetchall()


def db_counts(data_dir: Path) -> dict[str, int]:
    return dict(db_rows(data_dir, "SELECT status, COUNT(*) FROM jobs GROUP BY status"))


def table(at: AppTest, index: int = 0):
    return at.dataframe[index].value


def failed_job(folder, name: str) -> tuple[str, int]:
    """A real job that failed at ingest: a text file given as an episode."""
    settings = load_settings()
    bad = folder / name
    bad.write_text(f"{name} is not a video")
    episode_id, job_id = jobs.create(settings, str(bad), trusted_path=True)
    assert runner.run_job(settings, job_id) == "failed"
    return episode_id, job_id


# --- every page ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("page", "empty_text"), [
    (OVERVIEW, "No jobs yet"),
    (NEW_EPISODE, "Upload episodes"),
    (JOBS, "No jobs yet"),
    (EPISODES, "No episodes yet"),
    (REVIEW, "No episodes yet"),
    (SETTINGS, "Effective configuration"),
])
def test_every_page_renders_its_empty_state_on_an_empty_data_dir(empty_dir, page, empty_text):
    at = open_page(page)
    shown = texts(at) + "\n".join(w.label for w in at.file_uploader)
    assert empty_text in shown
    assert not at.error


def test_a_deep_link_as_first_request_still_runs_through_the_navigation(empty_dir):
    """Streamlit treats ``pages/`` as an old-style page folder until ``st.navigation`` runs;
    a first request for ``/jobs`` must not leave the app in that mode."""
    from streamlit.runtime.pages_manager import PagesManager

    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.switch_page(JOBS).run()                     # no run of the main page before
    assert not at.exception
    assert [t.value for t in at.title] == ["Jobs"]
    assert PagesManager.uses_pages_directory is False


def test_an_unexpected_error_is_a_sentence_with_the_details_folded_away(empty_dir, tmp_path):
    """The app wraps every page; a page that breaks (here: its database is not a database) explains itself."""
    empty_dir.mkdir(parents=True)
    (empty_dir / "clipdesk.db").write_text("not a database")
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception
    assert at.error[0].value.startswith("Something went wrong on this page: DatabaseError")
    assert "Traceback" in at.code[0].value and at.expander[0].label == "Details"


# --- password gate -----------------------------------------------------------------------------------

def test_password_gate_asks_for_the_password_and_lets_the_right_one_in(empty_dir, tmp_path, monkeypatch):
    use_config(tmp_path, monkeypatch, "dashboard:\n  password_env: CLIPDESK_TEST_PASSWORD\n")
    monkeypatch.setenv("CLIPDESK_TEST_PASSWORD", "s3cret words")
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.metric and [t.value for t in at.title] == ["Clipdesk"]
    at.text_input(key="password_input").input("wrong")         # a form: typing and submitting in one run
    at.button[0].click().run()
    assert [e.value for e in at.error] == ["Wrong password."] and not at.metric
    at.text_input(key="password_input").input("s3cret words")
    at.button[0].click().run()
    assert not at.exception
    assert [t.value for t in at.title] == ["Overview"] and at.metric


def test_password_gate_with_an_unset_variable_fails_closed(empty_dir, tmp_path, monkeypatch):
    use_config(tmp_path, monkeypatch, "dashboard:\n  password_env: CLIPDESK_TEST_PASSWORD\n")
    monkeypatch.delenv("CLIPDESK_TEST_PASSWORD", raising=False)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert "`CLIPDESK_TEST_PASSWORD` is not set" in at.error[0].value
    assert not at.text_input and not at.metric


# --- overview ------------------------------------------------------------------------------------------

def test_overview_warns_when_no_worker_is_running(empty_dir):
    at = open_page(OVERVIEW)
    warning = "\n".join(w.value for w in at.warning)
    assert "No worker is running" in warning and "huey_consumer queue_worker.huey" in warning


@pytest.mark.slow
def test_overview_counts_match_the_database(finished_dir):
    settings = load_settings()
    jobs.create(settings, str(mediagen.DATA / "speech.opus"), trusted_path=True)          # queued
    _, to_cancel = jobs.create(settings, str(mediagen.DATA / "speech.opus"), trusted_path=True)
    jobs.cancel(settings, to_cancel)                                   # cancelled
    at = open_page(OVERVIEW)
    metrics = {m.label: m.value for m in at.metric}
    counts = db_counts(finished_dir)
    assert {label: int(metrics[label]) for label in ("Queued", "Running", "Succeeded", "Failed", "Cancelled")} == {
        "Queued": counts.get("queued", 0), "Running": counts.get("running", 0),
        "Succeeded": counts.get("succeeded", 0), "Failed": counts.get("failed", 0),
        "Cancelled": counts.get("cancelled", 0)}
    assert int(metrics["Queued"]) == int(metrics["Succeeded"]) == int(metrics["Cancelled"]) == 1
    duration = db_rows(finished_dir, "SELECT duration FROM episodes WHERE status = 'ready'")[0][0]
    assert metrics["Media hours"] == f"{duration / 3600:.2f}"


@pytest.mark.slow
def test_overview_charts_throughput_and_stage_durations_from_the_finished_job(finished_dir, finished):
    overview = stats.overview(load_settings())
    today = overview["throughput"][-1]
    assert today["episodes"] == 1
    assert today["media_hours"] == pytest.approx(finished["summary"]["duration"] / 3600, abs=1e-3)
    assert sum(day["episodes"] for day in overview["throughput"]) == 1
    assert [s["stage"] for s in overview["stages"]][:5] == ["ingest", "extract_audio", "transcribe", "enrich", "render"]
    assert all(s["runs"] == 1 and s["mean_seconds"] >= 0 for s in overview["stages"])
    assert overview["success_rate"] == 1.0
    at = open_page(OVERVIEW)
    assert len(at.get("vega_lite_chart")) == 2
    assert "Success rate **100%**" in texts(at)


@pytest.mark.slow
def test_overview_lists_recent_failures_with_their_error(finished_dir):
    settings = load_settings()
    _, job_id = failed_job(finished_dir, "not-media.mp4")
    error = jobs.get(settings, job_id)["error"]
    at = open_page(OVERVIEW)
    failures = "\n".join(e.value for e in at.error)
    assert f"job #{job_id}" in failures and error in failures
    assert "failures: 1 bad input" in texts(at)


# --- jobs ---------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_jobs_page_lists_the_finished_job_with_its_timeline_and_stage_chart(finished_dir, finished):
    at = open_page(JOBS)
    rows = table(at)
    row = rows[rows["ID"] == finished["job_id"]].iloc[0]
    assert row["Status"] == "succeeded" and row["Progress"] == 1.0
    assert row["Episode"] == finished["summary"]["title"]
    timeline = table(at, 1)
    assert list(timeline["Event"])[-1] == "succeeded"
    assert {"ingest", "transcribe", "render"} <= set(timeline["Stage"])
    assert len(at.get("vega_lite_chart")) == 1                      # stage durations
    assert f"Job #{finished['job_id']} succeeded" in texts(at)


@pytest.mark.slow
def test_jobs_page_status_filter_shows_only_that_status(finished_dir):
    at = open_page(JOBS)
    at.segmented_control(key="jobs_status").set_value("failed").run()
    assert not at.exception
    assert not at.dataframe
    assert "No failed jobs." in texts(at)


@pytest.mark.slow
def test_jobs_search_finds_jobs_by_title_or_number(finished_dir, finished):
    _, failed_id = failed_job(finished_dir, "broken-upload.mp4")
    at = open_page(JOBS)
    at.text_input(key="jobs_search").input("broken-upload").run()
    assert list(table(at)["ID"]) == [failed_id], [(j["job_id"], j["title"]) for j in jobs.list_jobs(load_settings())]
    at.text_input(key="jobs_search").input(f"#{finished['job_id']}").run()
    assert list(table(at)["ID"]) == [finished["job_id"]]
    at.text_input(key="jobs_search").input("no such thing").run()
    assert not at.dataframe and "No jobs match “no such thing”." in texts(at)


@pytest.mark.slow
def test_job_detail_shows_the_full_error(finished_dir):
    _, job_id = failed_job(finished_dir, "notes.mp4")
    error = jobs.get(load_settings(), job_id)["error"]
    at = open_page(JOBS, {"job": str(job_id)})
    assert any(error.replace("'", "") in e.value.replace("\\", "").replace("'", "") and "Bad input" in e.value
               for e in at.error)


@pytest.mark.slow
def test_bulk_retry_requeues_every_failed_job_shown(queue, finished_dir):
    failed_ids = [failed_job(finished_dir, f"bad-{n}.mp4")[1] for n in range(2)]
    at = open_page(JOBS)
    button(at, "Retry all failed shown (2)").click().run()
    assert not at.exception
    settings = load_settings()
    assert [jobs.get(settings, i)["status"] for i in failed_ids] == ["queued", "queued"]
    assert queue.huey.pending_count() == 2
    assert f"2 jobs queued again: #{failed_ids[0]}, #{failed_ids[1]}." in texts(at)


@pytest.mark.slow
def test_bulk_cancel_stops_only_the_picked_jobs(queue, finished_dir):
    settings = load_settings()
    first = jobs.enqueue(settings, str(mediagen.DATA / "speech.opus"), queue.dispatch, trusted_path=True)[1]
    second = jobs.enqueue(settings, str(mediagen.DATA / "speech.opus"), queue.dispatch, trusted_path=True)[1]
    at = open_page(JOBS)
    at.multiselect(key="bulk_pick").select(second).run()
    button(at, "Cancel picked").click().run()
    assert not at.exception
    assert jobs.get(settings, first)["status"] == "queued" and jobs.get(settings, second)["status"] == "cancelled"
    assert at.multiselect(key="bulk_pick").value == []


@pytest.mark.slow
def test_cancel_then_retry_from_the_job_detail(queue, finished_dir):
    settings = load_settings()
    _, job_id = jobs.enqueue(settings, str(mediagen.DATA / "speech.opus"), queue.dispatch, trusted_path=True)
    at = open_page(JOBS, {"job": str(job_id)})
    assert at.selectbox(key="job_pick").value == job_id
    cancel = button(at, "Cancel")
    assert not cancel.disabled
    cancel.click().run()
    assert not at.exception
    assert jobs.get(settings, job_id)["status"] == "cancelled"
    assert f"Job #{job_id} is cancelled." in "\n".join(s.value for s in at.success)
    rows = table(at)
    assert rows[rows["ID"] == job_id].iloc[0]["Status"] == "cancelled"
    button(at, "Retry").click().run()
    assert jobs.get(settings, job_id)["status"] == "queued"


@pytest.mark.slow
def test_open_episode_from_the_jobs_page_goes_to_review(finished_dir, finished):
    at = open_page(JOBS, {"job": str(finished["job_id"])})
    button(at, "Open episode").click().run()
    assert not at.exception
    assert at.query_params.get("episode") == finished["episode_id"]
    assert [t.value for t in at.title] == ["Review"]


# --- new episode ----------------------------------------------------------------------------------------

def test_new_episode_with_a_missing_local_path_shows_the_error(empty_dir):
    at = open_page(NEW_EPISODE)
    missing = str(empty_dir / "nope.mp4")
    at.text_input(key="local_path").input(missing)
    at.button(key="process").click().run()
    assert not at.exception
    assert [e.value for e in at.error] == [f"File not found: {missing}"]
    outside = str(mediagen.DATA / "speech.opus")   # exists, but outside the data dir and the inbox
    at.text_input(key="local_path").input(outside)
    at.button(key="process").click().run()
    assert [e.value for e in at.error] == [f"'{outside}' is outside the folders files may be taken from; "
                                           f"see paths.allowed_source_dirs."]
    assert not jobs.list_jobs(load_settings())


def test_new_episode_with_nothing_chosen_says_what_to_add(empty_dir):
    at = open_page(NEW_EPISODE)
    at.button(key="process").click().run()
    assert "Add something to process first" in at.warning[0].value


@pytest.mark.slow
def test_new_episode_with_a_local_path_queues_a_job_once(queue, finished_dir):
    source = finished_dir / "media" / "speech.opus"   # under the data dir: a path the dashboard may take
    source.parent.mkdir()
    shutil.copyfile(mediagen.DATA / "speech.opus", source)
    at = open_page(NEW_EPISODE)
    at.text_input(key="local_path").input(str(source))
    at.text_input(key="title").input("My talk")
    at.number_input(key="opt_max_clips").set_value(4)
    at.button(key="process").click().run()
    assert not at.exception and not at.error
    newest = jobs.list_jobs(load_settings(), limit=1)[0]
    assert newest["status"] == "queued" and newest["title"] == "My talk"
    assert f"job **#{newest['job_id']}**" in at.success[0].value
    assert queue.huey.pending_count() == 1
    options = json.loads(db_rows(finished_dir, "SELECT options_json FROM jobs WHERE id = ?", (newest["job_id"],))[0][0])
    assert options == {"max_clips": 4}                          # only what differs from the config
    at.button(key="process").click().run()                      # a second press queues nothing new
    assert f"already queued (job #{newest['job_id']})" in texts(at)
    assert queue.huey.pending_count() == 1 and len(jobs.list_jobs(load_settings(), status="queued")) == 1


@pytest.mark.slow
def test_new_episode_uploads_are_saved_and_queued_one_job_each(queue, finished_dir):
    at = open_page(NEW_EPISODE)
    speech = (mediagen.DATA / "speech.opus").read_bytes()
    tone = mediagen.tone_audio(finished_dir / "tone.mp3", 2.0).read_bytes()
    at.file_uploader(key="uploads").set_value([("talk.opus", speech, "audio/ogg"), ("tone.mp3", tone, "audio/mpeg")])
    at.run()
    at.button(key="process").click().run()
    assert not at.exception and not at.error
    queued = jobs.list_jobs(load_settings(), status="queued")
    assert len(queued) == 2 and "Queued 2 episodes" in at.success[0].value
    saved = {Path(episodes.summary(load_settings(), j["episode_id"])["source"]).name: j for j in queued}
    assert Path(episodes.summary(load_settings(), saved["talk.opus"]["episode_id"])["source"]).read_bytes() == speech
    assert set(saved) == {"talk.opus", "tone.mp3"}
    at.button(key="process").click().run()                      # same files, pressed again
    assert "already queued" in texts(at)
    assert queue.huey.pending_count() == 2


@pytest.mark.slow
def test_new_episode_urls_are_queued_with_the_chosen_options_and_priority(queue, finished_dir):
    at = open_page(NEW_EPISODE)
    at.text_area(key="urls").input("https://media.example/a.mp4\n\n  https://media.example/b.mp3  \n")
    at.multiselect(key="opt_aspects").unselect("16x9")
    at.selectbox(key="opt_reframe").set_value("fit")
    at.checkbox(key="opt_full_episode").check()
    at.text_input(key="opt_vocabulary").input("Ada Quist,  Quorbex ")
    at.segmented_control(key="opt_priority").set_value("High")
    at.button(key="process").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    rows = db_rows(finished_dir, "SELECT e.source_uri, j.priority, j.options_json FROM jobs j"
                                 " JOIN episodes e ON e.id = j.episode_id WHERE j.status = 'queued' ORDER BY j.id")
    assert [(uri, priority) for uri, priority, _ in rows] == [("https://media.example/a.mp4", jobs.PRIORITY_RETRY),
                                                            ("https://media.example/b.mp3", jobs.PRIORITY_RETRY)]
    assert all(json.loads(o) == {"aspects": ["9x16"], "reframe": "fit", "full_episode": True,
                                 "vocabulary": ["Ada Quist", "Quorbex"]} for _, _, o in rows)
    assert queue.huey.pending_count() == 2


def test_new_episode_names_the_lines_that_are_not_urls(empty_dir):
    at = open_page(NEW_EPISODE)
    at.text_area(key="urls").input("https://media.example/a.mp4\nftp://old.example/b.mp3\nnot a url")
    at.button(key="process").click().run()
    assert [e.value for e in at.error] == [
        "Each line must be one http:// or https:// address; check line 2 (ftp://old.example/b.mp3), "
        "line 3 (not a url)."]
    assert not jobs.list_jobs(load_settings())


def test_new_episode_refuses_invalid_options_before_queueing(empty_dir):
    at = open_page(NEW_EPISODE)
    at.text_input(key="local_path").input(str(mediagen.DATA / "speech.opus"))
    at.text_input(key="opt_model").input("x" * 201)
    at.button(key="process").click().run()
    assert [e.value for e in at.error] == ["Option model must be a short text."]
    at.text_input(key="opt_model").input("tiny.en")
    at.multiselect(key="opt_aspects").unselect("9x16").unselect("16x9")
    at.button(key="process").click().run()
    assert [e.value for e in at.error] == ["Pick at least one aspect ratio."]
    assert not jobs.list_jobs(load_settings())


@pytest.mark.slow
def test_new_episode_queues_a_file_picked_from_the_inbox(queue, finished_dir):
    inbox = finished_dir / "inbox"
    inbox.mkdir()
    shutil.copy(mediagen.DATA / "speech.opus", inbox / "dropped.opus")
    (inbox / "notes.txt").write_text("not media")
    at = open_page(NEW_EPISODE)
    picker = at.multiselect(key="inbox_picks")
    assert picker.options == ["dropped.opus"]
    picker.select(str(inbox / "dropped.opus")).run()
    at.button(key="process").click().run()
    assert not at.exception and not at.error
    newest = jobs.list_jobs(load_settings(), limit=1)[0]
    assert newest["status"] == "queued" and newest["title"] == "dropped.opus"
    source = Path(episodes.summary(load_settings(), newest["episode_id"])["source"])
    assert not (inbox / "dropped.opus").exists()             # taken out, so the inbox watcher cannot take it again
    assert source.read_bytes() == (mediagen.DATA / "speech.opus").read_bytes()
    assert queue.huey.pending_count() == 1


# --- episodes library -----------------------------------------------------------------------------------------

@pytest.mark.slow
def test_episodes_library_lists_and_searches_episodes(finished_dir, finished):
    failed_job(finished_dir, "other-show.mp4")
    at = open_page(EPISODES)
    assert len(table(at)) == 2
    at.text_input(key="episodes_search").input("other-show").run()
    rows = table(at)
    assert list(rows["Title"]) == ["other-show.mp4"]
    at.text_input(key="episodes_search").input("zzz").run()
    assert "No episode matches “zzz”." in texts(at)


@pytest.mark.slow
def test_episode_moved_to_trash_can_be_restored(finished_dir, finished):
    at = open_page(EPISODES)
    at.button(key="soft_delete").click().run()
    assert not at.exception
    assert "moved to the trash" in at.success[0].value
    assert "No episodes yet" in texts(at)
    at.toggle(key="episodes_deleted").set_value(True).run()
    assert list(table(at)["Status"]) == ["deleted"]
    at.button(key="restore").click().run()
    assert "is back in the library" in at.success[0].value
    assert not episodes.list_episodes(load_settings())[0]["deleted"]


@pytest.mark.slow
def test_permanent_delete_names_what_goes_and_removes_it(finished_dir, finished):
    folder = finished_dir / "episodes" / finished["episode_id"]
    at = open_page(EPISODES)
    at.button(key="hard_delete").click().run()
    warning = at.warning[0].value
    clips = finished["summary"]["clips"]
    renders = sum(len(c["renders"]) for c in clips)
    assert f"{len(clips)} clip(s) with {renders} render(s)" in warning and "cannot be undone" in warning
    assert str(folder) in warning
    assert folder.is_dir()
    at.button(key="keep_episode").click().run()                 # changing one's mind removes nothing
    assert folder.is_dir() and not at.warning
    at.button(key="hard_delete").click().run()
    at.button(key="confirm_delete").click().run()
    assert not at.exception
    assert "was deleted permanently" in at.success[0].value
    assert not folder.exists() and not episodes.list_episodes(load_settings(), include_deleted=True)


@pytest.mark.slow
def test_reprocess_from_render_queues_a_new_job(queue, finished_dir, finished):
    at = open_page(EPISODES)
    at.radio(key="reprocess_from").set_value("render").run()
    at.button(key="reprocess").click().run()
    assert not at.exception and not at.error
    newest = jobs.list_jobs(load_settings(), limit=1)[0]
    assert newest["episode_id"] == finished["episode_id"] and newest["status"] == "queued"
    assert f"Job #{newest['job_id']} queued: render again." in at.success[0].value
    assert queue.huey.pending_count() == 1


# --- review ---------------------------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.model
def test_review_shows_transcript_clips_and_one_player_per_clip_until_all_four_are_asked_for(finished_dir, finished):
    at = open_page(REVIEW, {"episode": finished["episode_id"]})
    clips = finished["summary"]["clips"]
    for clip in clips:
        assert any(clip["title"] in s.value.replace("\\", "") for s in at.subheader)
    assert len(at.get("video")) == len(clips)                    # one player per clip card
    first = clips[0]["clip_id"]
    assert at.segmented_control(key=f"show_{first}").value == "subtitled_9x16"
    at.segmented_control(key=f"show_{first}").set_value("all four").run()
    assert len(at.get("video")) == len(clips) + 3
    downloads = [b.label for b in at.get("download_button")]
    assert downloads[:5] == ["subtitled 9x16", "clean 9x16", "subtitled 16x9", "clean 16x9", "captions"]

    open_tab(at, "Transcript & chapters")                         # only the open tab runs: no clip players
    lines = [b.label.replace("\\", "") for b in at.button if b.key and b.key.startswith("line_")]
    segments = episodes.load_transcript(load_settings(), finished["episode_id"])["segments"]
    assert len(lines) == len(segments) and all(s["text"].strip() in line for s, line in zip(segments, lines,
                                                                                          strict=True))
    assert len(at.get("video")) == 1                             # the episode player
    open_tab(at, "Downloads")
    assert [b.label for b in at.get("download_button")] == [
        "Download approved clips (.zip)", "Download .srt", "Download .vtt", "Download .txt", "Download .json"]


@pytest.mark.slow
@pytest.mark.model
def test_review_shows_the_shorter_length_of_a_clip_rendered_with_jump_cuts(finished_dir, finished, tmp_path,
                                                                          monkeypatch):
    from pipeline import db
    from pipeline.stages import render
    from pipeline.stages.context import StageContext
    use_config(tmp_path, monkeypatch, FAST_CONFIG + "  max_pause_seconds: 0.2\n")   # the sample pauses ~0.4 s
    settings = load_settings()
    # the longest clip has the most pauses; which clip that is, and how long its pauses are,
    # depends on the words the model heard on this CPU
    clip = max(finished["summary"]["clips"], key=lambda c: c["end"] - c["start"])
    review.set_clip_render_options(settings, clip["clip_id"], remove_silences=True)
    with db.session(settings.app_db) as conn:
        row = db.get_clip(conn, clip["clip_id"])
    render.render_one(StageContext(settings, finished["episode_id"], {"aspects": ["9x16"]}, lambda f: None), row,
                      lambda f: None)
    shorter = review.get_clip(settings, clip["clip_id"])["rendered_seconds"]
    assert shorter < clip["end"] - clip["start"] - 0.1   # a pause went (the amounts: test_jump_cuts.py)
    assert probe(review.get_clip(settings, clip["clip_id"])["renders"]["clean_9x16"]).duration == pytest.approx(
        shorter, abs=0.05)

    at = open_page(REVIEW, {"episode": finished["episode_id"]})
    assert "after jump cuts" in texts(at)
    assert at.segmented_control(key=f"cuts_{clip['clip_id']}").value == "Cut pauses"


def phrase_in_one_line(segments: list[dict]) -> tuple[str, dict]:
    """Two words said in exactly one transcript line after the first second (what a user might search for)."""
    for segment in segments:
        words = segment["text"].lower().split()
        for pair in zip(words, words[1:], strict=False):
            phrase = " ".join(pair)
            if int(segment["start"]) > 0 and sum(phrase in s["text"].lower() for s in segments) == 1:
                return phrase, segment
    raise AssertionError("no two-word phrase is said in just one line")


@pytest.mark.slow
@pytest.mark.model
def test_review_transcript_search_filters_lines_and_a_click_seeks_the_player(finished_dir, finished):
    segments = episodes.load_transcript(load_settings(), finished["episode_id"])["segments"]
    needle, segment = phrase_in_one_line(segments)
    at = open_page(REVIEW, {"episode": finished["episode_id"]}, tab="Transcript & chapters")
    at.text_input(key="transcript_filter").input(needle).run()
    assert not at.exception
    lines = [b for b in at.button if b.key and b.key.startswith("line_")]
    assert len(lines) == 1 and needle in lines[0].label.replace("\\", "").lower(), (needle, [b.label for b in lines])
    lines[0].click().run()
    player = at.get("video")[0]
    assert player.proto.start_time == int(segment["start"]) > 0
    assert f"Playing from 0:{int(segment['start']):02d}." in texts(at)


@pytest.mark.slow
@pytest.mark.model
def test_review_approve_and_reject_change_the_clip_status(finished_dir, finished):
    clips = finished["summary"]["clips"]
    at = open_page(REVIEW, {"episode": finished["episode_id"]}, tab="Downloads")
    assert at.get("download_button")[0].proto.disabled           # the zip: nothing approved yet
    open_tab(at, "Clips")
    at.button(key=f"approve_{clips[0]['clip_id']}").click().run()
    assert "Clip marked approved." in texts(at)
    at.button(key=f"reject_{clips[1]['clip_id']}").click().run()
    summary = episodes.summary(load_settings(), finished["episode_id"])
    assert [c["status"] for c in summary["clips"][:2]] == ["approved", "rejected"]
    assert not summary["clips"][1]["renders"]                    # rejecting drops the renders
    assert "Rejected: its renders were removed." in texts(at)
    open_tab(at, "Downloads")
    assert not at.get("download_button")[0].proto.disabled
    assert "**Approved clips** (1 of" in texts(at)


@pytest.mark.slow
@pytest.mark.model
def test_review_trim_snaps_to_words_and_queues_a_render_job(queue, finished_dir, finished):
    clip = finished["summary"]["clips"][0]
    at = open_page(REVIEW, {"episode": finished["episode_id"]})
    at.number_input(key=f"start_{clip['clip_id']}").set_value(round(clip["start"] + 0.37, 2))
    at.button(key=f"trim_{clip['clip_id']}").click().run()
    assert not at.exception
    assert "snapped to word boundaries" in at.success[0].value, texts(at)
    trimmed = review.get_clip(load_settings(), clip["clip_id"])
    words = [w["start"] for s in episodes.load_transcript(load_settings(), finished["episode_id"])["segments"]
             for w in s["words"]]
    assert trimmed["start"] != clip["start"] and any(abs(trimmed["start"] - w) < 0.01 for w in words)
    assert jobs.list_jobs(load_settings(), limit=1)[0]["status"] == "queued" and queue.huey.pending_count() == 1


@pytest.mark.slow
@pytest.mark.model
def test_review_saves_edited_title_summary_and_keywords(finished_dir, finished):
    at = open_page(REVIEW, {"episode": finished["episode_id"]}, tab="Title & summary")
    at.text_input(key="edit_title").input("Lessons from the test pattern")
    at.text_area(key="edit_summary").input("A short summary.")
    at.text_input(key="edit_keywords").input("testing, lessons ,  ,clips")
    at.button[[b.label for b in at.button].index("Save")].click().run()
    assert not at.exception
    summary = episodes.summary(load_settings(), finished["episode_id"])
    assert summary["title"] == "Lessons from the test pattern"
    assert summary["enrichment"]["summary"] == "A short summary."
    assert summary["enrichment"]["keywords"] == ["testing", "lessons", "clips"]


@pytest.mark.slow
def test_review_shows_progress_while_its_job_waits(finished_dir):
    settings = load_settings()
    episode_id, job_id = jobs.create(settings, str(mediagen.DATA / "speech.opus"), title="Waiting episode",
                                     trusted_path=True)
    at = open_page(REVIEW, {"episode": episode_id})
    assert f"Job #{job_id} is queued" in "\n".join(i.value for i in at.info)
    assert "Clips appear here once the episode is processed." in texts(at)
    assert not at.get("video")


@pytest.mark.slow
def test_review_explains_a_failed_job_and_links_to_retry(finished_dir):
    episode_id, job_id = failed_job(finished_dir, "broken.mp4")
    at = open_page(REVIEW, {"episode": episode_id})
    assert f"Processing failed (job #{job_id})" in at.error[0].value
    assert "No clips were found in this episode." in texts(at)


# --- the approved-clips zip -------------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.model
def test_approved_zip_holds_every_render_captions_and_the_transcript(finished_dir, finished, tmp_path):
    settings = load_settings()
    clip = finished["summary"]["clips"][0]
    review.set_clip_status(settings, clip["clip_id"], "approved")
    path = bundle.approved_zip(settings, finished["episode_id"])
    with zipfile.ZipFile(path) as archive:
        names = sorted(archive.namelist())
        folder = names[0].split("/")[0]
        assert names == sorted([f"{folder}/{v}.mp4" for v in clip["renders"]] + [f"{folder}/captions.srt",
                               "transcript.srt", "transcript.txt", "transcript.vtt"])
        for variant, render in clip["renders"].items():
            assert archive.read(f"{folder}/{variant}.mp4") == Path(render).read_bytes()
        archive.extractall(tmp_path / "out")
    assert folder.startswith("01-")
    info = probe(tmp_path / "out" / folder / "subtitled_16x9.mp4")
    assert (info.width, info.height) == (1920, 1080)
    assert info.duration == pytest.approx(clip["end"] - clip["start"], abs=0.5)


@pytest.mark.slow
def test_approved_zip_without_approved_clips_says_what_to_do(finished_dir, finished):
    with pytest.raises(BadInput, match="No clip is approved yet"):
        bundle.approved_zip(load_settings(), finished["episode_id"])


# --- settings & health ------------------------------------------------------------------------------------------

class ModelsHandler(http.server.BaseHTTPRequestHandler):
    """A tiny OpenAI-compatible endpoint: ``GET /v1/models`` answers only with the right key
    (or, behind a proxy, the right basic-auth credentials from the URL)."""

    ACCEPTED = ("Bearer test-key", "Basic " + base64.b64encode(b"operator:hunter2").decode())

    def do_GET(self):  # noqa: N802
        ok = self.path == "/v1/models" and self.headers.get("Authorization") in self.ACCEPTED
        body = json.dumps({"data": [{"id": "tiny"}]} if ok else {"error": "no"}).encode()
        self.send_response(200 if ok else 401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def models_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), ModelsHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_port}"
    server.shutdown()


def test_settings_page_reports_health_and_masks_secrets(empty_dir, tmp_path, monkeypatch, models_server):
    use_config(tmp_path, monkeypatch, f"llm:\n  base_url: http://operator:hunter2@{models_server}/v1\n"
                                      "  model: tiny\n  api_key_env: CLIPDESK_TEST_LLM_KEY\n")
    monkeypatch.setenv("CLIPDESK_TEST_LLM_KEY", "test-key")
    at = open_page(SETTINGS)
    shown = texts(at)
    assert any(s.value.startswith("ffmpeg version") for s in at.success)
    assert "`subtitles` ✓" in shown and "✗" not in shown
    assert "faster-whisper · tiny.en is available offline." in shown
    assert f"http://••••••@{models_server}/v1 answers (HTTP 200)." in shown
    assert "hunter2" not in at.get("json")[0].proto.body
    assert "huey_consumer queue_worker.huey" in at.code[0].value


def test_settings_page_lists_the_workers_by_host_alive_or_stale(empty_dir):
    """Rows as the consumers' heartbeat writes them: two consumers on alpha, one long-silent on beta."""
    now = time.time()
    with db.session(load_settings().app_db) as conn:
        db.worker_heartbeat(conn, "alpha:101", now - 1, threads=2)
        db.worker_heartbeat(conn, "alpha:102", now - 2, threads=1)
        db.worker_heartbeat(conn, "beta:201", now - 3600, threads=4)
    at = open_page(SETTINGS)
    hosts = [(a.value, "success") for a in at.success] + [(w.value, "warning") for w in at.warning]
    assert [kind for text, kind in hosts if text.startswith("**alpha** · alive · 2 consumer(s), 3 slot(s) alive"
                                                            " · last heartbeat ")] == ["success"]
    assert [kind for text, kind in hosts if text.startswith("**beta** · stale · 0 consumer(s), 0 slot(s) alive"
                                                            " · last heartbeat 36")] == ["warning"]
    shown = texts(at)
    assert re.search(r"- `alpha:101` · 2 slot\(s\) · alive · heartbeat \d s ago\n"
                     r"- `alpha:102` · 1 slot\(s\) · alive · heartbeat \d s ago", shown), shown
    assert re.search(r"- `beta:201` · 4 slot\(s\) · stale · heartbeat 36\d\d s ago", shown), shown
    assert f"This machine is `{load_settings().worker.host_id}`" in shown


def test_settings_page_says_when_the_llm_endpoint_refuses(empty_dir, tmp_path, monkeypatch, models_server):
    use_config(tmp_path, monkeypatch, f"llm:\n  base_url: http://{models_server}/v1\n"
                                      "  model: tiny\n  api_key_env: CLIPDESK_TEST_LLM_KEY\n")
    monkeypatch.setenv("CLIPDESK_TEST_LLM_KEY", "wrong-key")
    at = open_page(SETTINGS)
    assert any("is not reachable: HTTP 401 — check the URL and the API key." in e.value for e in at.error)


def test_effective_config_masks_secret_values_but_not_env_var_names(empty_dir, tmp_path, monkeypatch):
    use_config(tmp_path, monkeypatch, "llm:\n  base_url: https://user:pw@llm.example/v1\n  model: tiny\n")
    config = health.effective_config(load_settings())
    assert config["llm"]["base_url"] == "https://••••••@llm.example/v1"
    assert config["llm"]["api_key_env"] == "CLIPDESK_LLM_API_KEY"          # a name, not a secret
    assert config["dashboard"]["password_env"] == ""
    assert health._mask({"api_key": "sk-123", "token": "", "password": "pw"}) == {
        "api_key": "••••••", "token": "", "password": "••••••"}


def test_model_status_tells_a_model_to_download_from_one_on_disk(empty_dir, tmp_path, monkeypatch):
    use_config(tmp_path, monkeypatch, "transcribe:\n  model: small.en\n")
    at = open_page(SETTINGS)
    assert any("faster-whisper · small.en is not on this machine yet: the first job downloads it" in e.value
               for e in at.error)
    cache = empty_dir / "models" / "faster-whisper" / "models--Systran--faster-whisper-small.en"
    cache.mkdir(parents=True)                                  # what a first download leaves behind
    status = health.model_status(load_settings())
    assert status["available"] and status["where"] == str(cache)
    use_config(tmp_path, monkeypatch, f"transcribe:\n  model: {tmp_path / 'gone'}\n")
    gone = health.model_status(load_settings())
    assert not gone["available"] and gone["where"] == f"missing: {tmp_path / 'gone'} does not exist"


# --- retention, disk view and backlog (issue 21) -----------------------------------------------

@pytest.mark.slow
@pytest.mark.model
def test_disk_view_pins_and_backlog(finished_dir, finished, tmp_path, monkeypatch):
    """Settings shows space by kind, what retention frees next and the low-space warning; Episodes shows each
    episode's size and pins it; Review pins a clip; Overview shows the backlog."""
    use_config(tmp_path, monkeypatch, FAST_CONFIG + "retention:\n  source_days: 1\nworker:\n  min_free_mb: 10000000\n")
    episode_id = finished["episode_id"]
    with contextlib.closing(sqlite3.connect(finished_dir / "clipdesk.db")) as conn, conn:
        conn.execute("UPDATE jobs SET finished_at = finished_at - 2 * 86400")
    at = open_page(SETTINGS)
    shown = texts(at)
    folder = finished_dir / "episodes" / episode_id
    source_mb = next(folder.glob("source.*")).stat().st_size + (folder / "audio.wav").stat().st_size
    assert "Sources: **" in shown and "Renders: **" in shown and "below worker.min_free_mb" in shown
    assert "frees **" in shown and "2 source" not in shown and "1 source, 1 audio" in shown
    assert stats.episode_footprint(load_settings(), episode_id)["bytes"] > source_mb > 0

    at = open_page(EPISODES)
    assert table(at)["Size"].iloc[0].endswith("B")
    at.button(key="pin_episode").click().run()
    assert "is pinned" in texts(at) and episodes.summary(load_settings(), episode_id)["pinned"] is True
    at = open_page(SETTINGS)
    assert "frees **0 B** at its next run." in texts(at), "a pinned episode is kept"

    clip_id = finished["summary"]["clips"][0]["clip_id"]
    at = open_page(REVIEW, {"episode": episode_id}, tab="Clips")
    at.button(key=f"pin_{clip_id}").click().run()
    assert episodes.summary(load_settings(), episode_id)["clips"][0]["pinned"] is True

    jobs.create(load_settings(), str(mediagen.tone_video(tmp_path / "waiting.mp4", 1, 160, 90)), trusted_path=True)
    at = open_page(OVERVIEW)
    assert "Backlog: **1** job waiting" in texts(at)

    use_config(tmp_path, monkeypatch, FAST_CONFIG + "retention:\n  events_days: 1\n")
    assert retention.cleanup(load_settings())["events"] > 0
    at = open_page(JOBS, {"job": str(finished["job_id"])})
    assert "events of this job were compacted" in texts(at)
