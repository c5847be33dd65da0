from pathlib import Path

import pytest

from pipeline.config import PROJECT_ROOT, load_settings
from pipeline.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_default_config_loads_with_documented_defaults(monkeypatch):
    monkeypatch.delenv("CLIPDESK_DATA_DIR", raising=False)
    monkeypatch.delenv("CLIPDESK_CONFIG", raising=False)
    s = load_settings()
    assert s.data_dir == PROJECT_ROOT / "data"
    assert s.transcribe.engine == "faster-whisper" and s.transcribe.model == "tiny.en"
    assert (s.paths.fonts_dir / "NotoSans-Bold.ttf").exists()
    assert s.app_db_path.parent == s.queue_db_path.parent == s.data_dir
    assert s.app_db_path != s.queue_db_path


def test_data_dir_env_overrides_config(tmp_path, monkeypatch):
    monkeypatch.setenv("CLIPDESK_DATA_DIR", str(tmp_path / "elsewhere"))
    assert load_settings().data_dir == tmp_path / "elsewhere"


def test_config_env_points_at_another_file(tmp_path, monkeypatch):
    monkeypatch.delenv("CLIPDESK_DATA_DIR", raising=False)
    monkeypatch.setenv("CLIPDESK_CONFIG", str(write(tmp_path, "enrich:\n  max_clips: 3\npaths:\n  data_dir: /tmp/x\n")))
    s = load_settings()
    assert s.enrich.max_clips == 3
    assert s.data_dir == Path("/tmp/x")
    assert s.render.preset == "veryfast"   # untouched keys keep defaults


@pytest.mark.parametrize("text, message", [
    ("render:\n  presett: fast\n", "render.presett: unknown setting"),
    ("render:\n  crf: high\n", "render.crf: must be a whole number"),
    ("render:\n  crf: 99\n", "render.crf: must be between 0 and 51"),
    ("render:\n  x264_params: \"bframes 0; rm -rf /\"\n", "render.x264_params: must be '' or x264 options"),
    ("transcribe:\n  engine: whisperx\n", "transcribe.engine: must be"),
    ("enrich:\n  min_clip_seconds: 90\n  max_clip_seconds: 30\n", "enrich.min_clip_seconds"),
    ("render: 5\n", "render: must be a section"),
    ("colour: blue\n", "colour: unknown setting"),
    ("render:\n  background_color: red\n", "render.background_color: must be a colour"),
    ("worker:\n  workers: true\n", "worker.workers: must be a whole number"),
    ("worker:\n  heartbeat_seconds: 60\n  stale_after_seconds: 30\n", "worker.heartbeat_seconds: must be at most"),
    ("worker:\n  heartbeat_seconds: 15\n  stale_after_seconds: 30\n", "runs twice"),
])
def test_invalid_config_is_rejected_naming_the_key(tmp_path, text, message):
    with pytest.raises(ConfigError) as err:
        load_settings(write(tmp_path, text))
    assert message in str(err.value)


def test_broken_yaml_and_missing_file_are_clear(tmp_path):
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(write(tmp_path, "render: [unclosed\n"))
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.yaml")
