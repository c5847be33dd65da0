"""Scratch folders and publishing (issue 16): files are written in a worker's own scratch folder
(``paths.scratch_dir``, a local disk when the data dir is a shared mount) and published whole, so
the data dir never shows half a file, and a killed worker's leftovers are removed at the next start."""

import dataclasses
import io
import os
import subprocess
import sys
from pathlib import Path

import mediagen
import pytest
from workers import Consumer, ffmpeg_pids, use_config, wait_for_end, wait_until

from pipeline import db, jobs, media, storage, transcript
from pipeline.config import load_settings
from pipeline.errors import ConfigError, TooLarge
from pipeline.jobs import runner, workers
from pipeline.library import episodes
from pipeline.media.render_graph import VARIANTS


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


# --- publish -----------------------------------------------------------------------------------

def test_publish_on_one_filesystem_renames_and_replaces(tmp_path):
    src, final = tmp_path / "scratch" / "a.mp4", tmp_path / "data" / "clips" / "a.mp4"
    src.parent.mkdir()
    src.write_bytes(b"new" * 1000)
    final.parent.mkdir(parents=True)
    final.write_bytes(b"old")
    inode = src.stat().st_ino
    assert storage.publish(src, final) == final
    assert final.read_bytes() == b"new" * 1000 and not src.exists()
    assert final.stat().st_ino == inode, "same filesystem: a rename, not a copy"


def test_publish_across_filesystems_copies_then_replaces_leaving_nothing_behind(tmp_path, other_filesystem):
    payload = os.urandom(3 << 20)
    src = other_filesystem / "work" / "clean_9x16.mp4"
    src.parent.mkdir()
    src.write_bytes(payload)
    final = tmp_path / "data" / "episodes" / "e1" / "clean_9x16.mp4"   # its folder does not exist yet
    assert storage.publish(src, final) == final
    assert final.read_bytes() == payload
    assert not src.exists(), "the scratch copy is removed once the file is in place"
    assert [p.name for p in final.parent.iterdir()] == ["clean_9x16.mp4"], "no hidden temp file is left"

    src.write_bytes(b"second version")   # publishing again replaces the file
    storage.publish(src, final)
    assert final.read_bytes() == b"second version" and [p.name for p in final.parent.iterdir()] == [final.name]

    killed = final.with_name(f".{final.name}.0dc5a884.publishing")   # a worker killed mid-copy left this
    killed.write_bytes(payload[:1000])
    other = final.with_name(".thumb.jpg.1234abcd.publishing")       # another file's: not this publish's business
    other.write_bytes(b"x")
    src.write_bytes(b"third version")
    storage.publish(src, final)
    assert sorted(p.name for p in final.parent.iterdir()) == sorted([final.name, other.name])


def test_an_upload_is_written_in_scratch_and_published_whole(settings, other_filesystem):
    local = dataclasses.replace(settings, paths=dataclasses.replace(settings.paths, scratch_dir=str(other_filesystem)))
    saved = jobs.save_upload(local, "talk.mp4", io.BytesIO(b"\0" * (3 << 20)))
    assert saved.parent.parent == storage.uploads_dir(local.data_dir) and saved.stat().st_size == 3 << 20
    assert not [p for p in other_filesystem.rglob("*") if p.is_file()], "scratch holds nothing afterwards"

    small = dataclasses.replace(local, dashboard=dataclasses.replace(local.dashboard, max_upload_mb=1))
    with pytest.raises(TooLarge):
        jobs.save_upload(small, "big.mp4", io.BytesIO(b"\0" * (2 << 20)))
    assert [p for p in storage.uploads_dir(local.data_dir).rglob("*") if p.is_file()] == [saved]
    assert not [p for p in other_filesystem.rglob("*") if p.is_file()]


def test_transcripts_written_through_scratch_replace_the_old_ones_only_at_the_end(tmp_path, other_filesystem):
    doc = {"language": "en", "duration": 2.0, "segments": [
        {"start": 0.0, "end": 1.5, "text": "Hello there.",
         "words": [{"word": "Hello", "start": 0.0, "end": 0.6}, {"word": "there.", "start": 0.7, "end": 1.5}]}]}
    paths = {fmt: tmp_path / "e1" / f"transcript.{fmt}" for fmt in transcript.FORMATS}
    with storage.scratch_space(other_filesystem) as work:
        transcript.write_all(doc, paths, work)
        assert not list(work.iterdir()), "every format was moved out of scratch"
    assert transcript.load(paths["json"])["segments"][0]["text"] == "Hello there."
    assert "Hello" in paths["srt"].read_text() and paths["vtt"].read_text().startswith("WEBVTT")
    assert sorted(p.name for p in paths["json"].parent.iterdir()) == sorted(p.name for p in paths.values())
    assert not list(other_filesystem.iterdir()), "the work space is removed"


# --- scratch folders of processes --------------------------------------------------------------

def test_a_starting_consumer_removes_only_the_scratch_of_dead_processes_of_its_own_host(settings):
    root = settings.scratch_dir
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        dead, live = _dead_pid(), sleeper.pid
        folders = {
            "dead here": storage.process_scratch(root, settings.worker.host_id, dead),
            "this pid's leftover": storage.process_scratch(root, settings.worker.host_id, os.getpid()),
            "live here": storage.process_scratch(root, settings.worker.host_id, live),
            "dead pid of another host": storage.process_scratch(root, "other-host", dead),
            "not a worker's": root / "notes",
        }
        for folder in folders.values():
            (folder / "work-x").mkdir(parents=True)
            (folder / "work-x" / "clean_9x16.mp4").write_bytes(b"half")
        removed = workers.sweep_scratch(settings)
    finally:
        sleeper.kill()
        sleeper.wait()
    assert sorted(removed) == sorted([folders["dead here"], folders["this pid's leftover"]])
    assert {name for name, folder in folders.items() if folder.exists()} == {
        "live here", "dead pid of another host", "not a worker's"}
    assert workers.scratch_dir(settings) == folders["this pid's leftover"]
    assert storage.scratch_owner(folders["dead pid of another host"]) == ("other-host", dead)


def test_scratch_dir_defaults_to_the_data_dir_and_is_validated(tmp_path, monkeypatch):
    monkeypatch.setenv("CLIPDESK_DATA_DIR", str(tmp_path / "data"))
    config = tmp_path / "pipeline.yaml"
    config.write_text("paths:\n  scratch_dir: ''\n")
    assert load_settings(config).scratch_dir == tmp_path / "data" / ".scratch"
    config.write_text(f"paths:\n  scratch_dir: {tmp_path / 'local'}\n")
    assert load_settings(config).scratch_dir == tmp_path / "local"
    monkeypatch.setenv("CLIPDESK_SCRATCH_DIR", str(tmp_path / "from-env"))
    assert load_settings(config).scratch_dir == tmp_path / "from-env"
    monkeypatch.setenv("CLIPDESK_SCRATCH_DIR", str(tmp_path / "data"))
    with pytest.raises(ConfigError, match="paths.scratch_dir: must be a folder of its own"):
        load_settings(config)
    monkeypatch.delenv("CLIPDESK_SCRATCH_DIR")
    (tmp_path / "a-file").write_text("x")
    config.write_text(f"paths:\n  scratch_dir: {tmp_path / 'a-file'}\n")
    with pytest.raises(ConfigError, match="paths.scratch_dir: .* is not a folder"):
        load_settings(config)


# --- a real consumer killed mid-render -----------------------------------------------------------

def _media_files(data_dir: Path) -> list[Path]:
    return [p for p in (data_dir / "episodes").rglob("*") if p.is_file()]


def _assert_only_complete_files(data_dir: Path, killed_mid_publish: bool = False) -> None:
    """Every media file under its own name opens and plays; no temp name is left, except (right after a
    kill) the hidden copy of a publish across filesystems that was cut short, which the next publish
    of that file removes."""
    files = _media_files(data_dir)
    hidden_copies = [p for p in files if p.name.startswith(".") and p.name.endswith(".publishing")]
    temp_names = [p for p in files if (p.name.startswith(".") or ".partial" in p.name or ".publishing" in p.name)
                  and not (killed_mid_publish and p in hidden_copies)]
    assert temp_names == [], f"temp files visible in the data dir: {temp_names}"
    for path in (p for p in files if p not in hidden_copies):
        if path.suffix in (".mp4", ".wav", ".jpg"):
            assert media.probe(path).duration >= 0, path   # raises BadInput on a half-written file


@pytest.mark.slow
@pytest.mark.model
def test_a_killed_consumer_leaves_no_partial_file_in_the_data_dir_and_its_scratch_is_removed(
        tmp_path, monkeypatch, speech_video, request):
    """scratch_dir on another filesystem than the data dir (a local disk beside a shared mount) when this
    machine has one; SIGKILL mid-render; the next consumer removes the dead one's scratch and finishes."""
    try:
        scratch = request.getfixturevalue("other_filesystem")
    except pytest.skip.Exception:
        scratch = tmp_path / "scratch"   # same filesystem: the kill and clean-up still hold
    fast = use_config(tmp_path, monkeypatch, paths={"scratch_dir": str(scratch)})
    assert fast.scratch_dir == scratch
    consumer = Consumer(fast).start()
    try:
        job_id = consumer.cli("enqueue", str(speech_video), "--max-clips", "1", "--min-seconds", "6",
                              "--max-seconds", "8")["job_id"]
        dead_scratch = storage.process_scratch(scratch, fast.worker.host_id, consumer.pid)
        outputs = {f"{variant}.mp4" for variant in VARIANTS}
        wait_until(lambda: any(p.name in outputs and p.stat().st_size > 0
                               for p in dead_scratch.rglob("*") if p.is_file()),
                   240, 0.02, "the render to be writing its outputs in the consumer's scratch")
        consumer.kill()
        wait_until(lambda: not ffmpeg_pids(str(scratch)), 10, 0.2, "orphaned ffmpeg to exit")
        assert any(p.is_file() for p in dead_scratch.rglob("*")), "the dead consumer left its partial files"
        _assert_only_complete_files(fast.data_dir, killed_mid_publish=True)
        with db.session(fast.app_db) as conn:
            assert conn.execute("SELECT COUNT(*) FROM renders").fetchone()[0] == 0

        consumer.start()
        wait_until(lambda: not dead_scratch.exists(), 30, 0.1, "the dead consumer's scratch to be removed")
        job = wait_for_end(fast, job_id, 300)
        assert job["status"] == "succeeded", job
        assert not [p for p in scratch.rglob("*") if p.is_file()], "scratch is left empty"
    finally:
        consumer.stop()

    _assert_only_complete_files(fast.data_dir)
    summary = episodes.summary(fast, job["episode_id"])
    [clip] = summary["clips"]
    assert set(clip["renders"]) == set(VARIANTS)
    for variant, path in clip["renders"].items():
        info = media.probe(path)
        assert (info.width, info.height) == ((1080, 1920) if variant.endswith("9x16") else (1920, 1080))
        assert abs(info.duration - (clip["end"] - clip["start"])) < 0.5
    clip_dir = Path(next(iter(clip["renders"].values()))).parent
    assert media.probe(clip_dir / "thumb.jpg").width > 0 and "-->" in (clip_dir / "captions.srt").read_text()
    episode_dir = storage.episode_dir(fast.data_dir, job["episode_id"])
    assert media.probe(episode_dir / "audio.wav").duration > 30
    assert transcript.load(episode_dir / "transcript.json")["segments"]


def test_a_nearly_full_scratch_disk_makes_the_job_wait_like_a_full_data_dir(settings, other_filesystem, tmp_path):
    """The free-disk floor holds on the scratch disk too: a job waits (retrying) naming the scratch dir."""


    data_free, scratch_free = storage.free_bytes(settings.data_dir), storage.free_bytes(other_filesystem)
    if data_free - scratch_free < 1 << 30:
        pytest.skip("the scratch filesystem (/dev/shm) does not have clearly less free space than the data dir's")
    floor_mb = (scratch_free + data_free) // 2 // (1 << 20)   # the data dir has room, the scratch disk not
    local = dataclasses.replace(settings, paths=dataclasses.replace(settings.paths, scratch_dir=str(other_filesystem)),
                                worker=dataclasses.replace(settings.worker, min_free_mb=floor_mb))
    _, job_id = jobs.create(local, str(mediagen.tone_video(tmp_path / "short.mp4", 1)))
    assert runner.run_job(local, job_id) == "retrying"
    job = jobs.get(local, job_id)
    assert job["error_kind"] == "transient"
    assert f"Not enough free disk space in {other_filesystem} (paths.scratch_dir)" in job["error"]
