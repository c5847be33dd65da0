"""Where media lives on disk: every path under the data dir is built here.

Keeping paths behind these functions is what lets a shared store replace the local
disk later without touching the stages.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def episode_dir(data_dir: Path, episode_id: str) -> Path:
    return Path(data_dir) / "episodes" / episode_id


def clip_dir(data_dir: Path, episode_id: str, clip_id: str) -> Path:
    return episode_dir(data_dir, episode_id) / "clips" / clip_id


def transcript_path(data_dir: Path, episode_id: str, fmt: str = "json") -> Path:
    return episode_dir(data_dir, episode_id) / f"transcript.{fmt}"


def previous_transcript_path(data_dir: Path, episode_id: str) -> Path:
    """The transcript a re-transcription replaced (JSON), kept to show what changed."""
    return episode_dir(data_dir, episode_id) / "transcript.previous.json"


def trash_path(data_dir: Path, episode_id: str) -> Path:
    """Where a hard-deleted episode's folder is moved before it is removed."""
    return Path(data_dir) / "episodes" / f".deleting-{episode_id}"


def sweep_trash(data_dir: Path) -> None:
    """Finish removing folders a hard delete moved aside (it may have been interrupted)."""
    for leftover in (Path(data_dir) / "episodes").glob(".deleting-*"):
        remove_tree(leftover)


def inbox_dir(data_dir: Path, configured: str = "") -> Path:
    """The watch folder: ``inbox.dir`` (relative = under the data dir), default ``<data_dir>/inbox``."""
    return Path(data_dir) / (configured or "inbox")


def uploads_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "uploads"


def temp_path(final: Path) -> Path:
    """A sibling temp name that keeps the extension, so ffmpeg still infers the format."""
    return final.with_name(f"{final.stem}.partial{final.suffix}")


def write_text_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def free_bytes(data_dir: Path) -> int:
    path = Path(data_dir)
    while not path.exists():   # the data dir may not exist yet on a fresh machine
        path = path.parent
    return shutil.disk_usage(path).free
