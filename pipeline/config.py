"""Typed settings from ``config/pipeline.yaml``.

``CLIPDESK_CONFIG`` points at another YAML file; ``CLIPDESK_DATA_DIR`` overrides
``paths.data_dir``. Unknown keys, wrong types and out-of-range values are rejected
with the dotted key and the reason, so a typo never silently falls back to a default.
Relative paths resolve against the project root (the folder holding ``config/``).
"""

from __future__ import annotations

import dataclasses
import os
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from pipeline.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = PROJECT_ROOT / "config" / "pipeline.yaml"


@dataclass(frozen=True)
class PathSettings:
    data_dir: Path = Path("data")
    fonts_dir: Path = Path("assets/fonts")


@dataclass(frozen=True)
class WorkerSettings:
    workers: int = 1
    poll_max_seconds: float = 1.0
    heartbeat_seconds: float = 5.0


@dataclass(frozen=True)
class TranscribeSettings:
    engine: str = "faster-whisper"
    model: str = "tiny.en"
    device: str = "cpu"
    compute_type: str = "int8"
    threads: int = 0
    language: str = ""
    beam_size: int = 5
    vad_filter: bool = True
    condition_on_previous_text: bool = False


@dataclass(frozen=True)
class EnrichSettings:
    max_clips: int = 5
    min_clip_seconds: float = 15.0
    max_clip_seconds: float = 60.0


@dataclass(frozen=True)
class RenderSettings:
    preset: str = "veryfast"
    crf: int = 23
    audio_bitrate: str = "128k"
    threads: int = 0
    background_color: str = "#111827"
    caption_font: str = "Noto Sans"
    caption_words_per_line: int = 4
    caption_highlight_color: str = "#FACC15"


@dataclass(frozen=True)
class DashboardSettings:
    address: str = "127.0.0.1"
    port: int = 8501
    poll_seconds: float = 2.0
    max_upload_mb: int = 4096


@dataclass(frozen=True)
class Settings:
    paths: PathSettings = field(default_factory=PathSettings)
    worker: WorkerSettings = field(default_factory=WorkerSettings)
    transcribe: TranscribeSettings = field(default_factory=TranscribeSettings)
    enrich: EnrichSettings = field(default_factory=EnrichSettings)
    render: RenderSettings = field(default_factory=RenderSettings)
    dashboard: DashboardSettings = field(default_factory=DashboardSettings)
    source: Path | None = None

    @property
    def data_dir(self) -> Path:
        return self.paths.data_dir

    @property
    def app_db_path(self) -> Path:
        return self.data_dir / "clipdesk.db"

    @property
    def queue_db_path(self) -> Path:
        return self.data_dir / "queue.db"


# Rules a value must satisfy beyond its type: dotted key -> (check, reason).
_RULES: dict[str, tuple[typing.Callable[[typing.Any], bool], str]] = {
    "worker.workers": (lambda v: 1 <= v <= 64, "must be between 1 and 64"),
    "worker.poll_max_seconds": (lambda v: 0.1 <= v <= 60, "must be between 0.1 and 60"),
    "worker.heartbeat_seconds": (lambda v: 0.5 <= v <= 300, "must be between 0.5 and 300"),
    "transcribe.engine": (lambda v: v in ("faster-whisper", "openai-whisper"),
                          "must be 'faster-whisper' or 'openai-whisper'"),
    "transcribe.device": (lambda v: v in ("cpu", "cuda", "auto"), "must be 'cpu', 'cuda' or 'auto'"),
    "transcribe.threads": (lambda v: 0 <= v <= 256, "must be 0 (automatic) or a thread count"),
    "transcribe.beam_size": (lambda v: 1 <= v <= 20, "must be between 1 and 20"),
    "enrich.max_clips": (lambda v: 1 <= v <= 50, "must be between 1 and 50"),
    "enrich.min_clip_seconds": (lambda v: 1 <= v <= 600, "must be between 1 and 600"),
    "enrich.max_clip_seconds": (lambda v: 1 <= v <= 1800, "must be between 1 and 1800"),
    "render.crf": (lambda v: 0 <= v <= 51, "must be between 0 and 51"),
    "render.preset": (lambda v: v in ("ultrafast", "superfast", "veryfast", "faster", "fast",
                                      "medium", "slow", "slower", "veryslow"),
                      "must be an x264 preset such as 'veryfast' or 'medium'"),
    "render.threads": (lambda v: 0 <= v <= 256, "must be 0 (automatic) or a thread count"),
    "render.background_color": (lambda v: _is_hex_color(v), "must be a colour like '#112233'"),
    "render.caption_highlight_color": (lambda v: _is_hex_color(v), "must be a colour like '#112233'"),
    "render.caption_words_per_line": (lambda v: 1 <= v <= 12, "must be between 1 and 12"),
    "dashboard.port": (lambda v: 1 <= v <= 65535, "must be a TCP port"),
    "dashboard.poll_seconds": (lambda v: 0.5 <= v <= 60, "must be between 0.5 and 60"),
    "dashboard.max_upload_mb": (lambda v: 1 <= v <= 102400, "must be between 1 and 102400"),
}


def _is_hex_color(value: str) -> bool:
    return len(value) == 7 and value[0] == "#" and all(c in "0123456789abcdefABCDEF" for c in value[1:])


def load_settings(path: str | os.PathLike | None = None) -> Settings:
    """Read, validate and resolve the settings; raise ConfigError naming the bad key."""
    config_path = Path(path or os.environ.get("CLIPDESK_CONFIG") or DEFAULT_CONFIG)
    try:
        raw = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError(f"Config file not found: {config_path}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"Config file {config_path} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"Config file {config_path} must hold a mapping of sections")
    settings = _build(Settings, raw, prefix="")
    paths = settings.paths
    data_dir = Path(os.environ.get("CLIPDESK_DATA_DIR") or paths.data_dir)
    paths = PathSettings(data_dir=_resolve(data_dir), fonts_dir=_resolve(paths.fonts_dir))
    if settings.enrich.min_clip_seconds > settings.enrich.max_clip_seconds:
        raise ConfigError("enrich.min_clip_seconds: must not be larger than enrich.max_clip_seconds")
    return dataclasses.replace(settings, paths=paths, source=config_path.resolve())


def _resolve(path: Path) -> Path:
    path = path.expanduser()
    return path if path.is_absolute() else (PROJECT_ROOT / path).resolve()


def _build(cls, raw: dict, prefix: str):
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls) if f.name != "source"}
    for key in raw:
        if key not in known:
            raise ConfigError(f"{prefix}{key}: unknown setting (known: {', '.join(sorted(known))})")
    values = {}
    for name in known:
        if name not in raw:
            continue
        key, value, kind = f"{prefix}{name}", raw[name], hints[name]
        if dataclasses.is_dataclass(kind):
            if not isinstance(value, dict):
                raise ConfigError(f"{key}: must be a section (a mapping), got {type(value).__name__}")
            values[name] = _build(kind, value, prefix=f"{key}.")
            continue
        values[name] = _coerce(key, value, kind)
        rule = _RULES.get(key)
        if rule and not rule[0](values[name]):
            raise ConfigError(f"{key}: {rule[1]} (got {value!r})")
    return cls(**values)


def _coerce(key: str, value, kind):
    if kind is bool:
        if isinstance(value, bool):
            return value
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif kind is str:
        if isinstance(value, str):
            return value
    elif kind is Path:
        if isinstance(value, str) and value:
            return Path(value)
    names = {bool: "true or false", int: "a whole number", float: "a number", str: "a string", Path: "a path"}
    raise ConfigError(f"{key}: must be {names.get(kind, kind)}, got {value!r}")
