"""Typed settings from ``config/pipeline.yaml``.

``CLIPDESK_CONFIG`` points at another YAML file; ``CLIPDESK_DATA_DIR`` overrides
``paths.data_dir``. Unknown keys, wrong types and out-of-range values are rejected
with the dotted key and the reason, so a typo never silently falls back to a default.
Relative paths resolve against the project root (the folder holding ``config/``).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import socket
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from pipeline import vocabulary
from pipeline.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = PROJECT_ROOT / "config" / "pipeline.yaml"


@dataclass(frozen=True)
class PathSettings:
    data_dir: Path = Path("data")
    # Where a worker writes files before they are complete: a local disk when data_dir is a shared mount.
    # "" = <data_dir>/.scratch (one filesystem: publishing is a rename). Env CLIPDESK_SCRATCH_DIR wins.
    scratch_dir: str = ""
    fonts_dir: Path = Path("assets/fonts")
    # Paths given through the dashboard or the HTTP API must lie under these folders; empty = the data
    # dir and the inbox only; ["*"] = anywhere the worker can read. The CLI is not limited.
    allowed_source_dirs: tuple[str, ...] = ()


# A worker is judged gone only after this many heartbeats could have arrived and none did.
HEARTBEATS_BEFORE_STALE = 3

# Worker ids are ``<host_id>:<pid>``: a host id holds no colon, so the pid is always what follows the last one.
HOST_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
HOST_ID_RULE = ("must be 1 to 63 letters, digits, dots, dashes or underscores, starting with a letter or digit"
                " (no colon: worker ids are <host_id>:<pid>)")


@dataclass(frozen=True)
class WorkerSettings:
    workers: int = 1
    poll_max_seconds: float = 0.5
    heartbeat_seconds: float = 5.0
    max_attempts: int = 4                 # first try + retries of transient errors
    retry_base_seconds: float = 10.0      # first retry delay; each next one is retry_factor times longer
    retry_factor: float = 4.0
    stale_after_seconds: float = 30.0     # a running job whose heartbeat is older is resumed elsewhere
    reap_seconds: float = 15.0            # how often a consumer looks for orphaned jobs
    min_free_mb: int = 500                # refuse to ingest or render below this much free disk
    max_queued_jobs: int = 0              # back-pressure: feeds wait while this many jobs wait (0 = unlimited)
    db_outage_seconds: float = 600.0      # a running stage waits this long for a lost database before failing
    host_id: str = ""                     # this machine's name in worker ids and events; "" = the hostname


@dataclass(frozen=True)
class TranscribeSettings:
    engine: str = "faster-whisper"
    model: str = "tiny.en"
    device: str = "auto"           # auto = CUDA when present, else CPU
    compute_type: str = "auto"     # auto = float16 on CUDA, int8 on CPU (faster-whisper only)
    threads: int = 0
    language: str = ""
    beam_size: int = 5
    vad_filter: bool = True
    condition_on_previous_text: bool = False
    allow_downloads: bool = False  # hub repository ids ("org/model") may be downloaded
    vocabulary: tuple[str, ...] = ()   # names, brands, jargon for every job (see pipeline.vocabulary)


@dataclass(frozen=True)
class EnrichSettings:
    max_clips: int = 5
    min_clips: int = 3                   # fewer only when the episode cannot hold more; capped at max_clips
    min_clip_seconds: float = 15.0
    max_clip_seconds: float = 60.0
    keyword_count: int = 10
    chapter_seconds: float = 300.0       # preferred chapter length: only a topic over twice this is split


@dataclass(frozen=True)
class LLMSettings:
    """An OpenAI-compatible chat endpoint; an empty base_url means the offline heuristic enricher."""
    base_url: str = ""
    model: str = ""
    api_key_env: str = "CLIPDESK_LLM_API_KEY"
    timeout_seconds: float = 120.0
    max_tokens: int = 2048
    context_tokens: int = 8192
    temperature: float = 0.2
    response_format: str = "auto"
    max_retries: int = 4
    backoff_seconds: float = 2.0
    backoff_max_seconds: float = 60.0
    window_overlap_seconds: float = 60.0


@dataclass(frozen=True)
class CaptionPreset:
    """One caption look. Sizes and margins are fractions of the frame, so one preset fits every aspect."""
    font: str = "Noto Sans"             # family name of a font in paths.fonts_dir
    size: float = 0.045                 # font size / frame height
    words_per_line: int = 4
    uppercase: bool = False
    text_color: str = "#FFFFFF"
    highlight_color: str = "#FACC15"    # the word being spoken
    pop: float = 1.0                    # scale of the spoken word (1.0 = no pop)
    outline_color: str = "#000000"
    outline: float = 0.08               # outline width / font size (box padding when box is on)
    shadow: float = 0.03                # shadow offset / font size
    box: bool = False                   # opaque box behind the text instead of an outline
    box_color: str = "#000000"
    box_opacity: float = 0.6
    margin_portrait: float = 0.23       # bottom margin / height in portrait frames (above the apps' UI band)
    margin_landscape: float = 0.07      # bottom margin / height in landscape and square frames
    margin_side: float = 0.06           # left/right margin / width


def default_caption_presets() -> dict[str, CaptionPreset]:
    return {
        "bold-pop": CaptionPreset(size=0.05, words_per_line=3, uppercase=True, pop=1.15, outline=0.1,
                                  shadow=0.04, margin_portrait=0.28),
        "clean-lower-third": CaptionPreset(size=0.038, words_per_line=6, highlight_color="#7DD3FC", outline=0.05,
                                           shadow=0.02, margin_portrait=0.2, margin_landscape=0.06),
        "boxed": CaptionPreset(size=0.042, words_per_line=4, box=True, box_opacity=0.65, outline=0.25, shadow=0.0),
    }


@dataclass(frozen=True)
class RenderSettings:
    preset: str = "veryfast"
    crf: int = 23
    audio_bitrate: str = "128k"
    threads: int = 0
    # Four 1080p encoders run at once: no B-frames and a short lookahead keep the render under
    # ~500 MB and ~30% faster, for files ~0-5% larger at the same CRF. "" = x264's own defaults.
    x264_params: str = "bframes=0:rc-lookahead=5"
    encoder: str = "libx264"
    reframe: str = "auto"   # tests/test_reframe.py: auto chooses right on every case of the framing set
    remove_silences: bool = False     # jump cuts: pauses longer than max_pause_seconds are cut
    max_pause_seconds: float = 0.5
    cut_filler_words: bool = False    # with remove_silences, also cut "um", "uh"...
    title_overlay_seconds: float = 0.0   # the clip's title as a banner over its first seconds; 0 = off
    enable_1x1: bool = False
    loudness_lufs: float = -14.0
    true_peak_db: float = -1.0
    background_color: str = "#111827"
    background_image: str = ""
    audio_visual: str = "waveform"
    caption_preset: str = "bold-pop"
    caption_presets: dict[str, CaptionPreset] = field(default_factory=default_caption_presets)


@dataclass(frozen=True)
class DashboardSettings:
    address: str = "127.0.0.1"
    port: int = 8501
    poll_seconds: float = 2.0
    max_upload_mb: int = 4096
    password_env: str = ""   # env var holding the dashboard password; "" = no password gate


@dataclass(frozen=True)
class DownloadSettings:
    """URL ingest through yt-dlp (issue 8)."""
    max_height: int = 1080
    audio_only: bool = False
    cookies_file: str = ""
    rate_limit: str = ""
    socket_timeout: float = 30.0
    retries: int = 5
    max_filesize_mb: int = 10240   # a download stops (and the job fails) past this size


@dataclass(frozen=True)
class NetworkSettings:
    """Outbound fetches (issue 17): hosts or networks exempt from the private-address refusal."""
    allowed_hosts: tuple[str, ...] = ()


@dataclass(frozen=True)
class InboxSettings:
    """Watch folder (issue 8); an empty dir means ``<data_dir>/inbox``."""
    enabled: bool = True
    dir: str = ""
    stable_seconds: float = 10.0


@dataclass(frozen=True)
class WebhookSettings:
    """POSTs to ``urls`` when a job succeeds or fails (issue 8), signed with the secret in ``secret_env``."""
    urls: tuple[str, ...] = ()
    secret_env: str = "CLIPDESK_WEBHOOK_SECRET"
    timeout_seconds: float = 10.0
    max_attempts: int = 5
    retry_delay_seconds: float = 5.0


@dataclass(frozen=True)
class RetentionSettings:
    """What cleanup deletes and when (issue 21), in days (fractions allowed); 0 keeps forever.

    Approved clips and anything pinned are never deleted automatically.
    """
    source_days: float = 0.0              # source + audio.wav, counted from the episode's last finished job
    rejected_renders_days: float = 0.0    # renders of rejected clips, counted from the rejection
    deleted_episodes_days: float = 0.0    # soft-deleted episodes are deleted for good
    events_days: float = 0.0              # job events of finished jobs are compacted into per-job summaries


@dataclass(frozen=True)
class ApiSettings:
    """The HTTP API (issue 15): where it listens, the upload limit and the event stream's pace."""
    address: str = "127.0.0.1"
    port: int = 8000
    max_upload_mb: int = 4096
    event_poll_seconds: float = 0.25
    keepalive_seconds: float = 15.0
    progress_interval_seconds: float = 1.0


@dataclass(frozen=True)
class DatabaseSettings:
    """Where the app tables and the queue live (issue 16): empty = SQLite files under the data dir;
    a ``postgresql://`` URL = one PostgreSQL server for every machine (env ``CLIPDESK_DATABASE_URL`` wins)."""
    url: str = ""


@dataclass(frozen=True)
class Settings:
    paths: PathSettings = field(default_factory=PathSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    worker: WorkerSettings = field(default_factory=WorkerSettings)
    transcribe: TranscribeSettings = field(default_factory=TranscribeSettings)
    enrich: EnrichSettings = field(default_factory=EnrichSettings)
    llm: LLMSettings = field(default_factory=LLMSettings)
    render: RenderSettings = field(default_factory=RenderSettings)
    dashboard: DashboardSettings = field(default_factory=DashboardSettings)
    download: DownloadSettings = field(default_factory=DownloadSettings)
    network: NetworkSettings = field(default_factory=NetworkSettings)
    inbox: InboxSettings = field(default_factory=InboxSettings)
    webhooks: WebhookSettings = field(default_factory=WebhookSettings)
    retention: RetentionSettings = field(default_factory=RetentionSettings)
    api: ApiSettings = field(default_factory=ApiSettings)
    source: Path | None = None

    @property
    def data_dir(self) -> Path:
        return self.paths.data_dir

    @property
    def scratch_dir(self) -> Path:
        """The root of the workers' scratch folders (each process writes in its own sub-folder)."""
        return Path(self.paths.scratch_dir) if self.paths.scratch_dir else self.data_dir / ".scratch"

    @property
    def app_db_path(self) -> Path:
        """The SQLite file (used when ``database.url`` is empty)."""
        return self.data_dir / "clipdesk.db"

    @property
    def queue_db_path(self) -> Path:
        return self.data_dir / "queue.db"

    @property
    def app_db(self) -> Path | str:
        """The app database for ``pipeline.db.connect``: the SQLite file, or the PostgreSQL URL."""
        return self.database.url or self.app_db_path

    @property
    def uses_postgres(self) -> bool:
        return bool(self.database.url)


# Rules a value must satisfy beyond its type: dotted key -> (check, reason).
_RULES: dict[str, tuple[typing.Callable[[typing.Any], bool], str]] = {
    "worker.workers": (lambda v: 1 <= v <= 64, "must be between 1 and 64"),
    "worker.poll_max_seconds": (lambda v: 0.1 <= v <= 60, "must be between 0.1 and 60"),
    "worker.heartbeat_seconds": (lambda v: 0.1 <= v <= 300, "must be between 0.1 and 300"),
    "worker.max_attempts": (lambda v: 1 <= v <= 20, "must be between 1 and 20"),
    "worker.retry_base_seconds": (lambda v: 0 <= v <= 3600, "must be between 0 and 3600"),
    "worker.retry_factor": (lambda v: 1 <= v <= 10, "must be between 1 and 10"),
    "worker.stale_after_seconds": (lambda v: 1 <= v <= 3600, "must be between 1 and 3600"),
    "worker.reap_seconds": (lambda v: 0.5 <= v <= 3600, "must be between 0.5 and 3600"),
    "worker.db_outage_seconds": (lambda v: 1 <= v <= 86400, "must be between 1 and 86400"),
    "worker.max_queued_jobs": (lambda v: 0 <= v <= 100_000, "must be between 0 (unlimited) and 100000"),
    "worker.host_id": (lambda v: v == "" or HOST_ID_PATTERN.fullmatch(v) is not None, HOST_ID_RULE),
    **{f"retention.{key}": (lambda v: 0 <= v <= 36_500, "must be a number of days from 0 (keep forever) to 36500")
       for key in ("source_days", "rejected_renders_days", "deleted_episodes_days", "events_days")},
    "worker.min_free_mb": (lambda v: 0 <= v <= 10_000_000, "must be a number of megabytes (0 disables the check)"),
    "transcribe.engine": (lambda v: v in ("faster-whisper", "openai-whisper"),
                          "must be 'faster-whisper' or 'openai-whisper'"),
    "transcribe.device": (lambda v: v in ("cpu", "cuda", "auto"), "must be 'cpu', 'cuda' or 'auto'"),
    "transcribe.threads": (lambda v: 0 <= v <= 256, "must be 0 (automatic) or a thread count"),
    "transcribe.compute_type": (lambda v: v in ("auto", "int8", "int8_float32", "int8_float16", "int8_bfloat16",
                                                "int16", "float16", "bfloat16", "float32", "default"),
                                "must be 'auto' or a CTranslate2 compute type such as 'int8' or 'float16'"),
    "transcribe.model": (lambda v: bool(v.strip()), "must name a model or a model path"),
    "transcribe.beam_size": (lambda v: 1 <= v <= 20, "must be between 1 and 20"),
    "transcribe.vocabulary": (lambda v: _is_vocabulary(v),
                              f"must list at most {vocabulary.MAX_TERMS} words or phrases of at most"
                              f" {vocabulary.MAX_TERM_CHARS} characters each"),
    "enrich.max_clips": (lambda v: 1 <= v <= 10, "must be between 1 and 10"),
    "enrich.min_clips": (lambda v: 0 <= v <= 10, "must be between 0 and 10"),
    "enrich.keyword_count": (lambda v: 1 <= v <= 30, "must be between 1 and 30"),
    "enrich.chapter_seconds": (lambda v: 30 <= v <= 3600, "must be between 30 and 3600"),
    "llm.base_url": (lambda v: v == "" or v.startswith(("http://", "https://")),
                     "must be empty (offline enricher) or an http:// or https:// URL"),
    "llm.timeout_seconds": (lambda v: 0.1 <= v <= 3600, "must be between 0.1 and 3600"),
    "llm.max_tokens": (lambda v: 64 <= v <= 200_000, "must be between 64 and 200000"),
    "llm.context_tokens": (lambda v: 1024 <= v <= 10_000_000, "must be between 1024 and 10000000"),
    "llm.temperature": (lambda v: 0 <= v <= 2, "must be between 0 and 2"),
    "llm.response_format": (lambda v: v in ("auto", "json_schema", "json_object", "none"),
                            "must be 'auto', 'json_schema', 'json_object' or 'none'"),
    "llm.max_retries": (lambda v: 0 <= v <= 10, "must be between 0 and 10"),
    "llm.backoff_seconds": (lambda v: 0 <= v <= 60, "must be between 0 and 60"),
    "llm.backoff_max_seconds": (lambda v: 0 <= v <= 3600, "must be between 0 and 3600"),
    "llm.window_overlap_seconds": (lambda v: 0 <= v <= 600, "must be between 0 and 600"),
    "enrich.min_clip_seconds": (lambda v: 1 <= v <= 600, "must be between 1 and 600"),
    "enrich.max_clip_seconds": (lambda v: 1 <= v <= 1800, "must be between 1 and 1800"),
    "render.crf": (lambda v: 0 <= v <= 51, "must be between 0 and 51"),
    "render.preset": (lambda v: v in ("ultrafast", "superfast", "veryfast", "faster", "fast",
                                      "medium", "slow", "slower", "veryslow"),
                      "must be an x264 preset such as 'veryfast' or 'medium'"),
    "render.threads": (lambda v: 0 <= v <= 256, "must be 0 (automatic) or a thread count"),
    "render.x264_params": (lambda v: v == "" or re.fullmatch(r"[a-z0-9-]+=[^:=\s]+(:[a-z0-9-]+=[^:=\s]+)*", v),
                           "must be '' or x264 options like 'bframes=0:rc-lookahead=5'"),
    "render.background_color": (lambda v: _is_hex_color(v), "must be a colour like '#112233'"),
    "render.encoder": (lambda v: v in ("libx264", "h264_nvenc"), "must be 'libx264' or 'h264_nvenc'"),
    "render.reframe": (lambda v: v in ("center", "face", "fit", "split", "auto"),
                       "must be 'center', 'face', 'fit', 'split' or 'auto'"),
    "render.title_overlay_seconds": (lambda v: 0 <= v <= 30, "must be between 0 (off) and 30 seconds"),
    "render.max_pause_seconds": (lambda v: 0.1 <= v <= 5, "must be between 0.1 and 5 seconds"),
    "render.loudness_lufs": (lambda v: -40 <= v <= -5, "must be between -40 and -5 LUFS"),
    "render.true_peak_db": (lambda v: -9 <= v <= 0, "must be between -9 and 0 dBTP"),
    "render.audio_visual": (lambda v: v in ("waveform", "spectrum", "none"),
                            "must be 'waveform', 'spectrum' or 'none'"),
    "render.caption_presets.*.size": (lambda v: 0.01 <= v <= 0.2, "must be between 0.01 and 0.2 (of the frame height)"),
    "render.caption_presets.*.words_per_line": (lambda v: 1 <= v <= 12, "must be between 1 and 12"),
    "render.caption_presets.*.text_color": (lambda v: _is_hex_color(v), "must be a colour like '#112233'"),
    "render.caption_presets.*.highlight_color": (lambda v: _is_hex_color(v), "must be a colour like '#112233'"),
    "render.caption_presets.*.outline_color": (lambda v: _is_hex_color(v), "must be a colour like '#112233'"),
    "render.caption_presets.*.box_color": (lambda v: _is_hex_color(v), "must be a colour like '#112233'"),
    "render.caption_presets.*.pop": (lambda v: 1 <= v <= 2, "must be between 1 and 2"),
    "render.caption_presets.*.outline": (lambda v: 0 <= v <= 1, "must be between 0 and 1 (of the font size)"),
    "render.caption_presets.*.shadow": (lambda v: 0 <= v <= 1, "must be between 0 and 1 (of the font size)"),
    "render.caption_presets.*.box_opacity": (lambda v: 0 <= v <= 1, "must be between 0 and 1"),
    "render.caption_presets.*.margin_portrait": (lambda v: 0 <= v <= 0.6, "must be between 0 and 0.6"),
    "render.caption_presets.*.margin_landscape": (lambda v: 0 <= v <= 0.6, "must be between 0 and 0.6"),
    "render.caption_presets.*.margin_side": (lambda v: 0 <= v <= 0.3, "must be between 0 and 0.3"),
    "download.max_height": (lambda v: 144 <= v <= 4320, "must be between 144 and 4320"),
    "download.rate_limit": (lambda v: v == "" or _is_rate(v), "must be empty or a rate like '2M' or '500K'"),
    "download.socket_timeout": (lambda v: 1 <= v <= 600, "must be between 1 and 600"),
    "download.retries": (lambda v: 0 <= v <= 50, "must be between 0 and 50"),
    "download.max_filesize_mb": (lambda v: 1 <= v <= 10_000_000, "must be a number of megabytes, at least 1"),
    "network.allowed_hosts": (lambda v: all(_is_host_or_network(h) for h in v),
                              "must be host names, IP addresses or networks like '10.0.0.0/8'"),
    "paths.allowed_source_dirs": (lambda v: "*" not in v or v == ("*",),
                                  "must be folders, or [\"*\"] alone for anywhere"),
    "inbox.stable_seconds": (lambda v: 0 <= v <= 3600, "must be between 0 and 3600"),
    "webhooks.urls": (lambda v: all(u.startswith(("http://", "https://")) for u in v),
                      "must be http:// or https:// URLs"),
    "webhooks.timeout_seconds": (lambda v: 0.5 <= v <= 120, "must be between 0.5 and 120"),
    "webhooks.max_attempts": (lambda v: 1 <= v <= 20, "must be between 1 and 20"),
    "webhooks.retry_delay_seconds": (lambda v: 0.01 <= v <= 3600, "must be between 0.01 and 3600"),
    "database.url": (lambda v: v == "" or v.startswith(("postgresql://", "postgres://")),
                     "must be empty (SQLite under the data dir) or a postgresql:// URL"),
    "api.address": (lambda v: bool(v.strip()), "must be an address to listen on, like 127.0.0.1 or 0.0.0.0"),
    "api.port": (lambda v: 1 <= v <= 65535, "must be a TCP port"),
    "api.max_upload_mb": (lambda v: 1 <= v <= 102400, "must be between 1 and 102400"),
    "api.event_poll_seconds": (lambda v: 0.05 <= v <= 5, "must be between 0.05 and 5"),
    "api.keepalive_seconds": (lambda v: 1 <= v <= 300, "must be between 1 and 300"),
    "api.progress_interval_seconds": (lambda v: 0.1 <= v <= 60, "must be between 0.1 and 60"),
    "dashboard.port": (lambda v: 1 <= v <= 65535, "must be a TCP port"),
    "dashboard.poll_seconds": (lambda v: 0.5 <= v <= 60, "must be between 0.5 and 60"),
    "dashboard.max_upload_mb": (lambda v: 1 <= v <= 102400, "must be between 1 and 102400"),
    "dashboard.password_env": (lambda v: v == "" or v.replace("_", "").isalnum(),
                               "must be the name of an environment variable, like CLIPDESK_PASSWORD"),
}


def _is_rate(value: str) -> bool:
    """A yt-dlp rate limit: bytes per second with an optional K/M/G suffix."""
    number = value[:-1] if value[-1:].upper() in ("K", "M", "G") else value
    return number.replace(".", "", 1).isdigit()


def _is_host_or_network(value: str) -> bool:
    try:
        ipaddress.ip_network(value, strict=False)
        return True
    except ValueError:
        return bool(re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*\.?",
                                 value))


def _is_vocabulary(value: tuple[str, ...]) -> bool:
    try:
        vocabulary.parse(list(value))
    except vocabulary.VocabularyError:
        return False
    return True


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
    scratch_dir = os.environ.get("CLIPDESK_SCRATCH_DIR", paths.scratch_dir)
    paths = dataclasses.replace(paths, data_dir=_resolve(data_dir), fonts_dir=_resolve(paths.fonts_dir),
                                scratch_dir=str(_resolve(Path(scratch_dir))) if scratch_dir.strip() else "",
                                allowed_source_dirs=tuple(d if d == "*" else str(_resolve(Path(d)))
                                                          for d in paths.allowed_source_dirs))
    if url := os.environ.get("CLIPDESK_DATABASE_URL"):
        settings = dataclasses.replace(settings, database=_build(DatabaseSettings, {"url": url}, prefix="database."))
    _check_scratch_dir(paths)
    if settings.enrich.min_clip_seconds > settings.enrich.max_clip_seconds:
        raise ConfigError("enrich.min_clip_seconds: must not be larger than enrich.max_clip_seconds")
    if settings.render.caption_preset not in settings.render.caption_presets:
        raise ConfigError(f"render.caption_preset: '{settings.render.caption_preset}' is not one of"
                          f" {', '.join(settings.render.caption_presets)}")
    if settings.worker.heartbeat_seconds * HEARTBEATS_BEFORE_STALE > settings.worker.stale_after_seconds:
        raise ConfigError(f"worker.heartbeat_seconds: must be at most 1/{HEARTBEATS_BEFORE_STALE} of"
                          f" worker.stale_after_seconds ({settings.worker.heartbeat_seconds:g} s against"
                          f" {settings.worker.stale_after_seconds:g} s): otherwise a live job in a quiet stage is"
                          " taken for one whose worker died, and runs twice")
    if settings.llm.base_url and not settings.llm.model:
        raise ConfigError("llm.model: must name a model when llm.base_url is set")
    if settings.llm.context_tokens < settings.llm.max_tokens + 1024:
        raise ConfigError("llm.context_tokens: must leave room for the prompt (at least llm.max_tokens + 1024)")
    worker = dataclasses.replace(settings.worker, host_id=_host_id(settings.worker.host_id))
    return dataclasses.replace(settings, paths=paths, worker=worker, source=config_path.resolve())


def _host_id(configured: str) -> str:
    """``CLIPDESK_HOST_ID``, else ``worker.host_id``, else this machine's hostname; validated either way."""
    from_env = os.environ.get("CLIPDESK_HOST_ID", "")
    host_id, origin = ((from_env, "CLIPDESK_HOST_ID") if from_env else
                       (configured, "worker.host_id") if configured else
                       (socket.gethostname(), "worker.host_id (empty: the hostname)"))
    if not HOST_ID_PATTERN.fullmatch(host_id):
        raise ConfigError(f"{origin}: {HOST_ID_RULE} (got {host_id!r})")
    return host_id


def _check_scratch_dir(paths: PathSettings) -> None:
    """The scratch root holds only the workers' own folders (their leftovers are deleted at start)."""
    if not paths.scratch_dir:
        return
    scratch = Path(paths.scratch_dir)
    if scratch == paths.data_dir or paths.data_dir.is_relative_to(scratch):
        raise ConfigError(f"paths.scratch_dir: must be a folder of its own, not the data dir or a folder holding it"
                          f" (got {scratch}); \"\" means <data_dir>/.scratch")
    if scratch.exists() and not scratch.is_dir():
        raise ConfigError(f"paths.scratch_dir: {scratch} exists and is not a folder")


def _resolve(path: Path) -> Path:
    path = path.expanduser()
    return path if path.is_absolute() else (PROJECT_ROOT / path).resolve()


def _build(cls, raw: dict, prefix: str, rule_prefix: str | None = None, base=None):
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
        if typing.get_origin(kind) is dict:
            values[name] = _build_named(key, value, typing.get_args(kind)[1], _default(cls, name))
            continue
        values[name] = _coerce(key, value, kind)
        rule = _RULES.get(key) or _RULES.get(f"{rule_prefix or prefix}{name}")
        if rule and not rule[0](values[name]):
            raise ConfigError(f"{key}: {rule[1]} (got {value!r})")
    return dataclasses.replace(base, **values) if base is not None else cls(**values)


def _build_named(key: str, raw, kind, defaults: dict) -> dict:
    """A mapping of named sections (caption presets): an entry named like a built-in one
    changes only the fields it gives; a new name starts from the section's defaults."""
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(f"{key}: must be a mapping of named sections")
    named = dict(defaults)
    for item, section in raw.items():
        if not isinstance(section, dict):
            raise ConfigError(f"{key}.{item}: must be a section (a mapping), got {type(section).__name__}")
        named[str(item)] = _build(kind, section, prefix=f"{key}.{item}.", rule_prefix=f"{key}.*.",
                                  base=defaults.get(item, kind()))
    return named


def _default(cls, name: str):
    spec = next(f for f in dataclasses.fields(cls) if f.name == name)
    return spec.default_factory() if spec.default_factory is not dataclasses.MISSING else spec.default


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
    elif kind == tuple[str, ...]:
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            return tuple(value)
    names = {bool: "true or false", int: "a whole number", float: "a number", str: "a string", Path: "a path",
             tuple[str, ...]: "a list of strings"}
    raise ConfigError(f"{key}: must be {names.get(kind, kind)}, got {value!r}")
