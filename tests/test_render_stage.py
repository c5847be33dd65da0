"""The render and episode_render stages on a real app database and real media."""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from itertools import pairwise

import mediagen
import pytest

from pipeline import db, media, storage
from pipeline.library import episodes
from pipeline.media.render_graph import VARIANTS
from pipeline.stages import episode_render, render
from pipeline.stages.context import StageContext

pytestmark = pytest.mark.timeout(240)


def words(start: float, end: float, step: float = 0.3) -> list[dict]:
    count = int((end - start) / step)
    return [{"word": f" word{i}" + ("." if i % 6 == 5 else ""), "start": round(start + i * step, 3),
             "end": round(start + i * step + 0.25, 3), "probability": 0.9} for i in range(count)]


@pytest.fixture
def episode(settings, tmp_path):
    """An ingested, transcribed 6 s episode with three clips: approved (boxed captions),
    rejected, and suggested at the very end of the episode."""
    fast = dataclasses.replace(settings, render=dataclasses.replace(settings.render, preset="ultrafast"))
    episode_id = "ep1"
    folder = storage.episode_dir(fast.data_dir, episode_id)
    folder.mkdir(parents=True)
    source = mediagen.tone_video(tmp_path / "tone.mp4", 6.0, width=320, height=180)
    shutil.copy(source, folder / "source.mp4")
    info = media.probe(folder / "source.mp4")
    transcript = {"segments": [{"text": "words", "start": 0.0, "end": 6.0, "words": words(0.0, 6.0)}]}
    storage.transcript_path(fast.data_dir, episode_id).write_text(json.dumps(transcript), encoding="utf-8")
    now = time.time()
    with db.session(fast.app_db) as conn, db.transaction(conn):
        db.insert_episode(conn, episode_id, "Test", "path", str(source), now)
        db.set_episode_source(conn, episode_id, "source.mp4", info.duration, json.dumps(info.to_dict()), now)
        db.replace_clips(conn, episode_id, [
            {"id": "c1", "start": 0.5, "end": 2.5, "score": 80, "title": "one", "reason": "r"},
            {"id": "c2", "start": 1.0, "end": 3.0, "score": 60, "title": "two", "reason": "r"},
            {"id": "c3", "start": 4.5, "end": info.duration, "score": 50, "title": "three", "reason": "r"}], now)
        db.set_clip_review_status(conn, "c1", "approved", now)
        db.set_clip_review_status(conn, "c2", "rejected", now)
        db.set_clip_render_choices(conn, "c1", None, "boxed", now)
    return fast, episode_id, info


def context(settings, episode_id: str, progress: list, options: dict | None = None) -> StageContext:
    return StageContext(settings=settings, episode_id=episode_id, options=options or {}, progress=progress.append)


def outputs(settings, episode_id: str, clip_id: str) -> dict:
    folder = storage.clip_dir(settings.data_dir, episode_id, clip_id)
    return {v: (folder / f"{v}.mp4").stat().st_mtime_ns for v in VARIANTS if (folder / f"{v}.mp4").exists()}


def style_of(settings, episode_id: str, clip_id: str) -> list[str]:
    ass = (storage.clip_dir(settings.data_dir, episode_id, clip_id) / "captions_9x16.ass").read_text()
    return next(line for line in ass.splitlines() if line.startswith("Style:")).split(",")


def test_render_stage_renders_every_clip_but_rejected_and_keeps_review_status(episode):
    settings, episode_id, info = episode
    progress: list[float] = []
    render.run(context(settings, episode_id, progress))
    summary = episodes.summary(settings, episode_id)
    by_id = {c["clip_id"]: c for c in summary["clips"]}
    assert set(by_id["c1"]["renders"]) == set(VARIANTS) and set(by_id["c3"]["renders"]) == set(VARIANTS)
    assert by_id["c2"]["renders"] == {}
    assert [by_id[c]["status"] for c in ("c1", "c2", "c3")] == ["approved", "rejected", "suggested"]
    for path in by_id["c3"]["renders"].values():   # the clip at the very end of the episode
        assert abs(media.probe(path).duration - (info.duration - 4.5)) <= 0.1
    assert style_of(settings, episode_id, "c1")[15] == "3"     # the clip's own caption style (boxed)
    assert style_of(settings, episode_id, "c3")[15] == "1"     # the config default (bold-pop)
    assert progress[-1] == 1.0 and all(a <= b for a, b in pairwise(progress))


def test_a_clip_whose_renders_were_deleted_is_the_only_one_rendered_again(episode):
    settings, episode_id, _ = episode
    render.run(context(settings, episode_id, []))
    first, third = outputs(settings, episode_id, "c1"), outputs(settings, episode_id, "c3")
    with db.session(settings.app_db) as conn, db.transaction(conn):   # what a trim in the review page does
        db.delete_clip_renders(conn, "c3")
    for path in storage.clip_dir(settings.data_dir, episode_id, "c3").glob("*.mp4"):
        path.unlink()
    render.run(context(settings, episode_id, []))
    assert outputs(settings, episode_id, "c1") == first                   # untouched
    again = outputs(settings, episode_id, "c3")
    assert set(again) == set(VARIANTS) and all(again[v] > third[v] for v in VARIANTS)
    progress: list[float] = []
    render.run(context(settings, episode_id, progress))                     # nothing missing: nothing rendered
    assert progress == [1.0] and outputs(settings, episode_id, "c3") == again


def test_job_option_aspects_add_square_renders(episode):
    settings, episode_id, _ = episode
    render.run(context(settings, episode_id, [], {"aspects": ["1x1"], "reframe": "fit"}))
    renders = {c["clip_id"]: c["renders"] for c in episodes.summary(settings, episode_id)["clips"]}
    assert set(renders["c1"]) == {"clean_1x1", "subtitled_1x1"}
    probed = media.probe(renders["c1"]["subtitled_1x1"])
    assert (probed.width, probed.height) == (1080, 1080)


@pytest.mark.parametrize("scratch", ["in the data dir", "on another filesystem"])
def test_episode_render_stage_writes_and_records_the_full_subtitled_episode(episode, scratch, request):
    settings, episode_id, info = episode
    if scratch == "on another filesystem":   # a local scratch disk beside a shared media mount
        local = str(request.getfixturevalue("other_filesystem"))
        settings = dataclasses.replace(settings, paths=dataclasses.replace(settings.paths, scratch_dir=local))
    assert episodes.summary(settings, episode_id)["full_episode_render"] is None
    progress: list[float] = []
    episode_render.run(context(settings, episode_id, progress, {"full_episode": True}))
    full = episodes.summary(settings, episode_id)["full_episode_render"]
    assert full["path"].endswith("full_16x9.mp4") and (full["width"], full["height"]) == (1920, 1080)
    probed = media.probe(full["path"])
    assert abs(probed.duration - info.duration) <= 0.1 and probed.has_audio
    assert progress[-1] == 1.0
    assert not list(storage.episode_dir(settings.data_dir, episode_id).glob("*.partial*"))
    assert not [p for p in storage.episode_dir(settings.data_dir, episode_id).iterdir() if p.name.startswith(".")]
    assert not [p for p in settings.scratch_dir.rglob("*") if p.is_file()], "scratch is left empty"
