"""Operator edits: approve/reject, trim (re-render queued), per-clip render choices, enrichment edits."""

import json
import time
from pathlib import Path

import pytest

from pipeline import db, jobs, storage, transcript
from pipeline.errors import BadInput
from pipeline.library import review
from pipeline.stages import enrich, ingest
from pipeline.stages.context import StageContext

pytestmark = pytest.mark.model

OPTIONS = {"min_clip_seconds": 8, "max_clip_seconds": 20}
ROOT = Path(__file__).resolve().parents[1]


class Queue:
    """Stands in for the Huey queue at its boundary: records what was dispatched."""

    def __init__(self):
        self.dispatched = []

    def __call__(self, job_id, priority, delay=0.0):
        self.dispatched.append(job_id)
        return f"task-{job_id}"


@pytest.fixture
def episode(settings, speech_video, speech_transcript):
    """An ingested, transcribed and enriched episode whose first job has finished."""
    episode_id, job_id = jobs.create(settings, str(speech_video), options=OPTIONS)
    ctx = StageContext(settings, episode_id, OPTIONS, lambda f: None)
    ingest.run(ctx)
    storage.write_text_atomic(ctx.transcript_path(), json.dumps(speech_transcript))
    enrich.run(ctx)
    with db.session(settings.app_db) as conn:
        for stage in ("ingest", "extract_audio", "transcribe", "enrich", "render"):
            db.mark_stage_done(conn, episode_id, stage, time.time())
        assert db.start_job(conn, job_id, time.time(), "test:1")   # a job succeeds only from running
        assert db.finish_job(conn, job_id, "succeeded", time.time())
    return episode_id


def clips_of(settings, episode_id):
    with db.session(settings.app_db) as conn:
        return db.list_clips(conn, episode_id)


def fake_render(settings, episode_id, clip_id):
    """A render row and its file, as the render stage would leave them (contents do not matter here)."""
    path = storage.clip_dir(settings.data_dir, episode_id, clip_id) / "clean_9x16.mp4"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x00" * 100)
    with db.session(settings.app_db) as conn:
        db.record_render(conn, clip_id, "clean_9x16", str(path.relative_to(settings.data_dir)), 1080, 1920, 10.0,
                         100, time.time())
    return path


def test_approve_and_reject_change_the_status_and_rejecting_drops_renders(settings, episode):
    first, second = clips_of(settings, episode)[:2]
    rendered = fake_render(settings, episode, second["id"])
    assert review.set_clip_status(settings, first["id"], "approved")["status"] == "approved"
    assert review.get_clip(settings, second["id"])["renders"] == {"clean_9x16": str(rendered)}
    rejected = review.set_clip_status(settings, second["id"], "rejected")
    assert rejected["status"] == "rejected" and rejected["renders"] == {}
    assert not rendered.exists()
    assert [c["status"] for c in clips_of(settings, episode)[:2]] == ["approved", "rejected"]
    assert review.set_clip_status(settings, second["id"], "suggested")["status"] == "suggested"


def test_unknown_status_or_clip_is_bad_input(settings, episode):
    clip = clips_of(settings, episode)[0]
    with pytest.raises(BadInput, match="'published' is not one of them"):
        review.set_clip_status(settings, clip["id"], "published")
    with pytest.raises(BadInput, match="no clip nope"):
        review.set_clip_status(settings, "nope", "approved")


def test_trim_snaps_to_words_drops_renders_and_queues_a_render_job(settings, episode, speech_transcript):
    clip = clips_of(settings, episode)[0]
    rendered = fake_render(settings, episode, clip["id"])
    queue = Queue()
    trimmed = review.trim_clip(settings, clip["id"], 6.6, 16.3, queue)
    words = transcript.all_words(speech_transcript)
    assert trimmed["start"] in {round(w["start"], 3) for w in words}
    assert trimmed["end"] in {round(w["end"], 3) for w in words}
    assert abs(trimmed["start"] - 6.6) < 0.5 and abs(trimmed["end"] - 16.3) < 0.5
    assert trimmed["renders"] == {} and not rendered.exists()
    (job_id,) = queue.dispatched
    with db.session(settings.app_db) as conn:
        job = db.get_job(conn, job_id)
        done = db.completed_stages(conn, episode)
    assert job["episode_id"] == episode and job["status"] == "queued"
    assert json.loads(job["options_json"])["min_clip_seconds"] == 8          # the episode's options carry over
    assert done == {"ingest", "extract_audio", "transcribe", "enrich"}        # only rendering is redone


def test_trim_outside_the_episode_or_the_length_rules_is_refused(settings, episode):
    clip = clips_of(settings, episode)[0]
    with pytest.raises(BadInput, match="inside the episode"):
        review.trim_clip(settings, clip["id"], 30.0, 95.0, Queue())
    with pytest.raises(BadInput, match="clips must last 8-20 s"):
        review.trim_clip(settings, clip["id"], 6.5, 9.0, Queue())
    assert clips_of(settings, episode)[0]["start"] == clip["start"]


def test_trim_while_a_job_runs_is_refused_before_anything_changes(settings, episode):
    clip = clips_of(settings, episode)[0]
    queue = Queue()
    first = review.trim_clip(settings, clip["id"], 6.6, 16.3, queue)      # queues job 2, still queued
    with pytest.raises(BadInput, match="already has job 2 queued"):
        review.trim_clip(settings, clip["id"], 14.2, 29.3, queue)
    with pytest.raises(BadInput, match="already has job 2 queued"):
        review.set_clip_render_options(settings, clip["id"], reframe="fit", dispatch=queue)
    assert review.get_clip(settings, clip["id"])["start"] == first["start"]
    assert review.get_clip(settings, clip["id"])["reframe"] is None
    assert len(queue.dispatched) == 1


def test_render_choices_are_validated_and_stored(settings, episode):
    clip = clips_of(settings, episode)[0]
    updated = review.set_clip_render_options(settings, clip["id"], reframe="fit", caption_style="boxed")
    assert (updated["reframe"], updated["caption_style"]) == ("fit", "boxed")
    with pytest.raises(BadInput, match="Reframe 'zoom'"):
        review.set_clip_render_options(settings, clip["id"], reframe="zoom")
    with pytest.raises(BadInput, match="Caption style 'comic'"):
        review.set_clip_render_options(settings, clip["id"], caption_style="comic")
    kept = review.set_clip_render_options(settings, clip["id"], reframe="face")
    assert (kept["reframe"], kept["caption_style"]) == ("face", "boxed")        # None keeps the other choice
    cleared = review.set_clip_render_options(settings, clip["id"], reframe="", caption_style="")
    assert (cleared["reframe"], cleared["caption_style"]) == (None, None)
    assert cleared["remove_silences"] is None
    cut = review.set_clip_render_options(settings, clip["id"], remove_silences=True, reframe="split")
    assert (cut["remove_silences"], cut["reframe"]) == (True, "split")
    assert review.set_clip_render_options(settings, clip["id"], remove_silences=False)["remove_silences"] is False
    assert review.set_clip_render_options(settings, clip["id"], remove_silences="")["remove_silences"] is None
    with pytest.raises(BadInput, match="remove_silences must be true, false or ''"):
        review.set_clip_render_options(settings, clip["id"], remove_silences="yes")


def test_changing_render_choices_with_a_queue_rerenders_that_clip(settings, episode):
    clip = clips_of(settings, episode)[0]
    rendered = fake_render(settings, episode, clip["id"])
    queue = Queue()
    review.set_clip_render_options(settings, clip["id"], reframe="center", dispatch=queue)
    assert not rendered.exists() and len(queue.dispatched) == 1


def test_enrichment_edits_are_validated_and_saved(settings, episode):
    edited = review.update_enrichment(settings, episode, title="  Three lessons  ", keywords=["testing", "testing",
                                                                                              "speed"],
                                      chapters=[{"start": 0, "title": "Plan"}, {"start": 14.26, "title": "Tests"}])
    assert edited["title"] == "Three lessons" and edited["keywords"] == ["testing", "speed"]
    with db.session(settings.app_db) as conn:
        row = db.get_episode(conn, episode)
    assert row["title"] == "Three lessons"
    assert json.loads(row["enrichment_json"])["chapters"][1] == {"start": 14.26, "title": "Tests"}
    assert json.loads(row["enrichment_json"])["source"] == "heuristic"          # the rest is kept
    for chapters, problem in [([{"start": 10, "title": "A"}, {"start": 5, "title": "B"}], "time order"),
                              ([{"start": 0, "title": "A"}, {"start": 400, "title": "B"}], "outside the episode"),
                              ([{"start": 3, "title": "A"}], "must start at 0:00"),
                              ([{"start": 0, "title": " "}], "needs a title")]:
        with pytest.raises(BadInput, match=problem):
            review.update_enrichment(settings, episode, chapters=chapters)
    with pytest.raises(BadInput, match="title cannot be empty"):
        review.update_enrichment(settings, episode, title=" ")


def test_clip_command_reviews_a_suggestion_from_the_shell(settings, episode):
    import subprocess
    import sys
    clip = clips_of(settings, episode)[0]
    done = subprocess.run([sys.executable, "-m", "pipeline", "clip", clip["id"], "--status", "rejected",
                           "--reframe", "auto", "--remove-silences", "on", "--json"],
                          capture_output=True, text=True, timeout=120, cwd=str(ROOT))
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert (shown["status"], shown["reframe"], shown["remove_silences"]) == ("rejected", "auto", True)
    assert clips_of(settings, episode)[0]["status"] == "rejected"
    missing = subprocess.run([sys.executable, "-m", "pipeline", "clip", "nope", "--json"], capture_output=True,
                             text=True, timeout=120, cwd=str(ROOT))
    assert missing.returncode == 1 and json.loads(missing.stdout) == {"error": "There is no clip nope."}
