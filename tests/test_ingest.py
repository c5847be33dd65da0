"""Ingest and audio extraction for every container the dashboard accepts."""

import mediagen
import pytest

from pipeline import db, jobs
from pipeline.media import probe
from pipeline.stages import audio, ingest
from pipeline.stages.context import StageContext


def context(settings, episode_id) -> StageContext:
    return StageContext(settings, episode_id, {}, progress=lambda fraction: None)


@pytest.mark.parametrize("name", ["talk.mp4", "talk.mov", "talk.mkv", "talk.webm", "talk.mp3", "talk.wav",
                                  "talk.m4a", "Talk Ünïcode (1).MP4"])
def test_every_accepted_container_is_ingested_and_gives_16k_mono_audio(settings, tmp_path, name):
    source = tmp_path / name
    if name.lower().endswith((".mp3", ".wav", ".m4a")):
        mediagen.tone_audio(source, 2.5)
    else:
        mediagen.tone_video(source, 2.5)
    episode_id, _ = jobs.create(settings, str(source))
    ctx = context(settings, episode_id)
    ingest.run(ctx)
    ingested = ctx.source_path()
    assert ingested.name == "source." + name.rsplit(".", 1)[1].lower()
    assert source.exists(), "a local path is copied, never moved"
    audio.run(ctx)
    wav = probe(ctx.episode_dir / "audio.wav")
    assert (wav.sample_rate, wav.channels, wav.audio_codec) == (16000, 1, "pcm_s16le")
    assert wav.duration == pytest.approx(2.5, abs=0.1)
    assert not list(ctx.episode_dir.glob("*.partial*"))


def test_uploads_are_moved_out_of_the_uploads_folder(settings, tmp_path):
    made = mediagen.tone_video(tmp_path / "clip.mkv", 1.5)
    with open(made, "rb") as data:
        upload = jobs.save_upload(settings, "../../evil/clip.mkv", data)
    assert upload.parent.parent == settings.data_dir / "uploads" and upload.name == "clip.mkv"
    episode_id, _ = jobs.create(settings, str(upload), source_kind="upload")
    ctx = context(settings, episode_id)
    ingest.run(ctx)
    assert ctx.source_path().exists() and not upload.exists() and not upload.parent.exists()
    ingest.run(ctx)   # idempotent: a second attempt finds the moved file
    with db.session(settings.app_db) as conn:
        assert db.get_episode(conn, episode_id)["duration"] == pytest.approx(1.5, abs=0.1)


def test_file_without_extension_gets_one_from_its_container(settings, tmp_path):
    made = mediagen.tone_video(tmp_path / "noext.mp4", 1.0)
    bare = made.rename(tmp_path / "noext")
    episode_id, _ = jobs.create(settings, str(bare))
    ctx = context(settings, episode_id)
    ingest.run(ctx)
    assert ctx.source_path().name == "source.mp4"
