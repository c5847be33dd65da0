"""Throughput (issue 9): stages as queued units, render fanned out per clip, thread budgets, learned ETAs."""

import os
import threading
import time
from pathlib import Path

import ffmpeg
import pytest
from workers import Consumer, ffmpeg_pids, use_config, wait_for_end, wait_until

from pipeline import db, jobs, storage
from pipeline.jobs import progress, runner, threads
from pipeline.jobs.progress import Plan, QueuedJob, forecast
from pipeline.media import ffmpeg_exe, probe
from pipeline.media.render_graph import VARIANTS

pytestmark = pytest.mark.timeout(400)
THREE_CLIPS = {"max_clips": 3, "min_clip_seconds": 5, "max_clip_seconds": 8}


@pytest.fixture
def fast(tmp_path, monkeypatch):
    return use_config(tmp_path, monkeypatch)


def _units(settings, job_id):
    with db.session(settings.app_db) as conn:
        return [dict(u) for u in db.list_units(conn, job_id)]


def _events(settings, job_id):
    with db.session(settings.app_db) as conn:
        return [dict(e) for e in db.list_events(conn, job_id)]


def _overlap(a: tuple[float, float], b: tuple[float, float]) -> float:
    return min(a[1], b[1]) - max(a[0], b[0])


def _cmdline(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")


@pytest.mark.slow
def test_clips_render_as_parallel_units_on_two_workers_with_their_share_of_threads(fast, speech_video):
    consumer = Consumer(fast, workers=2).start()
    seen_progress, seen_commands = [], []
    try:
        job_id = consumer.cli("enqueue", str(speech_video), "--max-clips", "3", "--min-seconds", "5",
                              "--max-seconds", "8")["job_id"]
        while (job := jobs.get(fast, job_id))["status"] not in jobs.FINAL_STATUSES:
            seen_progress.append(job["progress"])
            seen_commands += [_cmdline(pid) for pid in ffmpeg_pids(str(fast.data_dir)) if Path(f"/proc/{pid}").exists()]
            time.sleep(0.1)
    finally:
        consumer.stop()
    assert job["status"] == "succeeded", job
    units = _units(fast, job_id)
    assert len(units) == 3 and {u["status"] for u in units} == {"done"} and {u["attempts"] for u in units} == {1}
    spans = [(u["started_at"], u["finished_at"]) for u in units]
    assert max(_overlap(a, b) for i, a in enumerate(spans) for b in spans[i + 1:]) > 0.5, spans   # in parallel
    assert seen_progress == sorted(seen_progress), "aggregated progress never goes backwards"

    # Each unit's ffmpeg decodes with the task's share of the cores and splits it across its four encoders.
    share = threads.share(2)
    outputs = {f"{variant}.mp4" for variant in VARIANTS}   # written in the worker's scratch, then published
    renders = [cmd for cmd in seen_commands if any(Path(arg).name in outputs for arg in cmd)]
    assert renders, "saw the clip renders' ffmpeg"
    for cmd in renders:
        first_input, last_input = cmd.index("-i"), len(cmd) - 1 - cmd[::-1].index("-i")
        decode = [cmd[i + 1] for i in range(first_input) if cmd[i] == "-threads"]
        encode = [cmd[i + 1] for i in range(last_input, len(cmd) - 1) if cmd[i] == "-threads"]
        assert decode == [str(share)], " ".join(cmd)
        assert encode == [str(max(1, share // len(VARIANTS)))] * len(VARIANTS), cmd

    events = _events(fast, job_id)
    clip_events = [e for e in events if e["kind"] == "clip_finished"]
    assert len(clip_events) == 3 and {e["host"] for e in clip_events} == {fast.worker.host_id}
    assert sum(1 for e in events if e["kind"] == "finished" and e["stage"] == "render") == 1
    with db.session(fast.app_db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM renders").fetchone()[0] == 3 * len(VARIANTS)
        rates = db.stage_rates(conn, fast.worker.host_id)
    assert {e["cpu_share"] for e in clip_events} == {threads.machine_share(2)}   # each clip had its share
    learned = sum(e["seconds"] * e["cpu_share"] for e in clip_events) / sum(e["media_seconds"] for e in clip_events)
    assert rates["render"] == pytest.approx(learned)   # per second of clip, as if with the whole machine


def _looped(source: Path, out: Path, loops: int) -> Path:
    (ffmpeg.input(str(source), stream_loop=loops - 1).output(str(out), c="copy")
     .overwrite_output().run(cmd=ffmpeg_exe(), quiet=True))
    return out


@pytest.mark.slow
def test_one_episodes_transcription_overlaps_another_episodes_rendering(tmp_path, monkeypatch, speech_video):
    # Short clips keep the renders (of both episodes) cheap; only their timing matters here.
    fast = use_config(tmp_path, monkeypatch, enrich=THREE_CLIPS)
    long_video = _looped(speech_video, tmp_path / "long.mp4", 4)
    assert probe(long_video).duration > 150
    consumer = Consumer(fast, workers=2).start()
    try:
        short_job, long_job = consumer.enqueue_many([speech_video, long_video])
        ends = [wait_for_end(fast, job_id, 300) for job_id in (short_job, long_job)]
    finally:
        consumer.stop()
    assert [job["status"] for job in ends] == ["succeeded"] * 2, ends
    stage_spans = {}
    for event in _events(fast, long_job):
        if event["stage"] == "transcribe" and event["kind"] in ("started", "finished"):
            stage_spans[event["kind"]] = event["created_at"]
    transcribing = (stage_spans["started"], stage_spans["finished"])
    rendering = [(u["started_at"], u["finished_at"]) for u in _units(fast, short_job)]
    assert any(_overlap(transcribing, span) > 0 for span in rendering), (transcribing, rendering)


def _rework_here(settings, episode_id: str, from_stage: str) -> int:
    return jobs.rework(settings, episode_id, from_stage, lambda job_id, priority: "in-process")


@pytest.mark.slow
def test_a_failing_clip_fails_the_job_after_the_others_render_and_a_retry_renders_only_it(fast, speech_video):
    episode_id, job_id = jobs.create(fast, str(speech_video), options=THREE_CLIPS)
    assert runner.run_job(fast, job_id) == "succeeded", jobs.get(fast, job_id)["error"]
    with db.session(fast.app_db) as conn:
        clips = db.list_clips(conn, episode_id)
        broken, other = clips[0], clips[1]
        db.set_clip_bounds(conn, broken["id"], 500.0, 510.0, time.time())   # outside the 40 s media
        db.delete_clip_renders(conn, broken["id"])
        db.delete_clip_renders(conn, other["id"])
    redo = _rework_here(fast, episode_id, "render")
    assert runner.run_job(fast, redo) == "failed"
    job = jobs.get(fast, redo)
    assert job["error_kind"] == "bad_input" and broken["title"] in job["error"] and "outside" in job["error"], job
    units = {u["clip_id"]: u for u in _units(fast, redo)}
    assert set(units) == {broken["id"], other["id"]}   # only the clips missing renders
    assert units[broken["id"]]["status"] == "failed" and units[other["id"]]["status"] == "done"
    other_files = list(storage.clip_dir(fast.data_dir, episode_id, other["id"]).glob("*.mp4"))
    assert len(other_files) == len(VARIANTS) and all(probe(f).duration > 4 for f in other_files)

    with db.session(fast.app_db) as conn:
        db.set_clip_bounds(conn, broken["id"], 2.0, 9.0, time.time())
    before = len(_events(fast, redo))
    jobs.retry(fast, redo, lambda job_id, priority: "in-process")
    assert runner.run_job(fast, redo) == "succeeded", jobs.get(fast, redo)["error"]
    after_retry = _events(fast, redo)[before:]
    rendered = [e["message"] for e in after_retry if e["kind"] == "clip_finished"]
    assert len(rendered) == 1 and broken["id"] in rendered[0], after_retry
    assert [u["clip_id"] for u in _units(fast, redo)] == [broken["id"]]
    assert abs(probe(storage.clip_dir(fast.data_dir, episode_id, broken["id"]) / "clean_16x9.mp4").duration - 7) < 0.5


@pytest.mark.slow
def test_cancel_during_the_fan_out_stops_the_running_clip_and_drops_the_queued_ones(tmp_path, monkeypatch,
                                                                                   speech_video):
    slow = use_config(tmp_path, monkeypatch, render={"preset": "veryfast"})
    episode_id, job_id = jobs.create(slow, str(speech_video), options=THREE_CLIPS)
    assert runner.run_job(slow, job_id) == "succeeded"
    with db.session(slow.app_db) as conn:
        for clip in db.list_clips(conn, episode_id):
            db.delete_clip_renders(conn, clip["id"])
    redo = _rework_here(slow, episode_id, "render")
    worker = threading.Thread(target=runner.run_job, args=(slow, redo))
    worker.start()
    wait_until(lambda: any(u["status"] == "running" for u in _units(slow, redo)) and ffmpeg_pids(str(slow.data_dir)),
               60, 0.05, "a clip to render")
    jobs.cancel(slow, redo)
    worker.join(30)
    assert not worker.is_alive()
    assert jobs.get(slow, redo)["status"] == "cancelled"
    assert {u["status"] for u in _units(slow, redo)} == {"cancelled"}
    assert not [p for p in storage.episode_dir(slow.data_dir, episode_id).rglob("*") if ".partial" in p.name]
    assert not ffmpeg_pids(str(slow.data_dir))


def test_a_job_between_stages_is_cancelled_at_once(fast, speech_video):
    episode_id, job_id = jobs.create(fast, str(speech_video))
    queue = runner.LocalQueue(fast)
    assert runner.run_stage(fast, job_id, queue) == "running"   # ingest done; extract_audio waits in the queue
    assert [task[3:] for task in queue.tasks] == [("stage", job_id)]
    assert jobs.cancel(fast, job_id)["status"] == "cancelled"
    assert runner.run_stage(fast, job_id, queue) == "cancelled"   # the queued task finds nothing to do
    with db.session(fast.app_db) as conn:
        assert db.completed_stages(conn, episode_id) == {"ingest"}
        assert db.get_episode(conn, episode_id)["status"] == "new"


@pytest.mark.slow
def test_queued_jobs_get_a_start_and_done_forecast_from_learned_rates(fast, speech_video):
    _, first = jobs.create(fast, str(speech_video), options={"max_clips": 1})
    assert runner.run_job(fast, first) == "succeeded"
    waiting = [jobs.create(fast, str(speech_video), allow_duplicate=True, options={"max_clips": 1})[1]
               for _ in range(3)]
    listed = {job["job_id"]: job for job in jobs.list_jobs(fast)}
    forecasts = [(listed[j]["starts_in_seconds"], listed[j]["eta_seconds"]) for j in waiting]
    assert forecasts[0][0] == 0   # no worker busy: the first starts now
    for (start, done), (next_start, _) in zip(forecasts, forecasts[1:], strict=False):
        assert done > start and next_start == pytest.approx(done, abs=0.2)   # one worker slot: one after another
    with db.session(fast.app_db) as conn:
        rates = db.stage_rates(conn, fast.worker.host_id)
        assert db.get_episode(conn, db.get_job(conn, waiting[0])["episode_id"])["duration"] == pytest.approx(
            probe(speech_video).duration)   # the file's header length, known before ingest
    assert set(rates) == set(progress.STAGES)   # every stage learned from the first job
    plan = progress.plan_for(fast.enrich, {"max_clips": 1}, rates, probe(speech_video).duration, None, 0, 1)
    assert forecasts[0][1] == pytest.approx(plan.total, rel=0.01)
    took = sum(e["seconds"] for e in _events(fast, first) if e["kind"] == "finished")
    assert took / 2 < forecasts[0][1] < took * 2, (took, forecasts)   # in the range of what the same media took
    assert jobs.get(fast, waiting[1])["starts_in_seconds"] == forecasts[1][0]


def test_forecast_fills_every_worker_slot_and_waits_out_retry_backoffs():
    queued = [QueuedJob(1, 0.0, 100.0), QueuedJob(2, 0.0, 100.0), QueuedJob(3, 500.0, 10.0), QueuedJob(4, 0.0, 50)]
    result = forecast(busy=[30.0], queued=queued, slots=2)
    assert result[1] == (0.0, 100.0)      # the free slot takes it now
    assert result[2] == (30.0, 130.0)     # when the running job ends
    assert result[3] == (500.0, 510.0)    # not before its retry time
    assert result[4] == (100.0, 150.0)


def test_render_is_planned_per_clip_second_and_spread_over_the_workers():
    rates = {"transcribe": 0.1, "render": 2.0}
    one = Plan.for_job(600, rates, progress.STAGES, clip_seconds=100, parallel=1)
    two = Plan.for_job(600, rates, progress.STAGES, clip_seconds=100, parallel=2)
    assert one.expected["transcribe"] == pytest.approx(60)
    assert one.expected["render"] == pytest.approx(200)
    assert two.expected["render"] == pytest.approx(200)   # one task already had the whole machine
    # Two workers on the machine: each task has half of it; two clips side by side still use all of it.
    shared = Plan.for_job(600, rates, progress.STAGES, clip_seconds=100, parallel=2, cpu_share=0.5)
    assert shared.expected["transcribe"] == pytest.approx(120) and shared.expected["render"] == pytest.approx(200)


def test_render_eta_counts_the_clips_left_at_this_jobs_pace_not_the_time_spent_waiting():
    def unit(status, progress, seconds, took=None):
        return {"status": status, "progress": progress, "clip_seconds": seconds,
                "started_at": 1000.0 if took else None, "finished_at": 1000.0 + took if took else None}
    waiting = [unit("queued", 0.0, 30), unit("queued", 0.0, 30)]
    assert progress.render_eta(waiting, learned_rate=1.0, slots=2) == pytest.approx(30)   # learned, side by side
    assert progress.render_eta(waiting, learned_rate=1.0, slots=1) == pytest.approx(60)
    mixed = [unit("done", 1.0, 20, took=40), unit("running", 0.5, 30), unit("queued", 0.0, 10)]
    assert progress.render_eta(mixed, learned_rate=1.0, slots=4) == pytest.approx((15 + 10) * 2.0 / 2)   # own pace
    assert progress.render_eta([unit("done", 1.0, 20, took=40)], learned_rate=1.0, slots=2) == 0.0


def test_thread_budgets_split_the_cores_between_workers_unless_configured(tmp_path, monkeypatch):
    assert threads.share(1, cores=8) == 8 and threads.share(2, cores=8) == 4 and threads.share(16, cores=8) == 1
    settings = use_config(tmp_path, monkeypatch, transcribe={"threads": 3})
    task = threads.for_task(settings, 2)
    assert task.transcribe.threads == 3   # the config wins
    assert task.render.threads == threads.share(2) == max(1, len(os.sched_getaffinity(0)) // 2)
