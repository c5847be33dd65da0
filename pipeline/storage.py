"""Where media lives on disk: every path under the data dir is built here.

Keeping paths behind these functions is what lets a shared store replace the local
disk later without touching the stages. The data dir may be a mount every machine shares
(NFS, SMB, CephFS...): files are written in a process's own scratch folder
(``paths.scratch_dir``, ideally a local disk) and ``publish``-ed into place when complete, so
nobody ever sees half a file there and a crashed worker leaves nothing behind in it.
"""

from __future__ import annotations

import errno
import glob
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
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


# --- scratch: where files are written before they are complete ------------------------------------

def process_scratch(root: Path, host: str, pid: int) -> Path:
    """One process's scratch folder, ``<root>/<host>-<pid>``: its owner can be told from its name."""
    return Path(root) / f"{host}-{pid}"


def scratch_owner(folder: Path) -> tuple[str, int] | None:
    """(host, pid) of a folder named by ``process_scratch``, or None for anything else."""
    host, _, pid = Path(folder).name.rpartition("-")
    return (host, int(pid)) if host and pid.isdigit() else None


@contextmanager
def scratch_space(folder: Path, prefix: str = "work-") -> Iterator[Path]:
    """A fresh folder inside ``folder`` (a process's scratch) for one piece of work, removed
    at the end whatever happens: the unit's temp files never outlive it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=folder))
    try:
        yield path
    finally:
        remove_tree(path)


def publish(src: Path, final: Path) -> Path:
    """Move a complete file from scratch to ``final``, atomically on ``final``'s filesystem.

    Same filesystem: one rename. Another one (a local scratch disk, a shared media mount): the
    bytes are copied to a hidden name beside ``final``, synced to disk, renamed onto ``final``,
    and only then is the scratch copy removed. Either way ``final`` is the old file or the whole
    new one, never a part, and an existing ``final`` is replaced. A hidden copy that a killed
    worker left half-written for the same ``final`` is removed first: one job or clip unit writes a
    given file at a time (its claim says so), so any such copy is a dead attempt's.
    """
    src, final = Path(src), Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    for stale in final.parent.glob(f".{glob.escape(final.name)}.*.publishing"):
        stale.unlink(missing_ok=True)
    try:
        os.replace(src, final)
        return final
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
    hidden = final.with_name(f".{final.name}.{uuid.uuid4().hex[:8]}.publishing")
    try:
        shutil.copyfile(src, hidden)
        with open(hidden, "rb") as copied:
            os.fsync(copied.fileno())
        os.replace(hidden, final)
    except BaseException:
        hidden.unlink(missing_ok=True)
        raise
    _sync_folder(final.parent)
    src.unlink()
    return final


def _sync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable; a filesystem that cannot sync a folder is left as it is."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
