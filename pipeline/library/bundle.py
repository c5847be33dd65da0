"""The publish bundle: one zip with every approved clip's renders and captions.

Layout inside the zip: ``<NN>-<clip title>/<variant>.mp4`` plus ``captions.srt`` per clip,
and the episode's transcript files at the top. Videos are stored, not deflated (H.264 does
not compress further). The zip is written under ``<data_dir>/exports/`` with a temp name
and renamed into place, so a download never sees half a file.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

from pipeline import storage
from pipeline.config import Settings
from pipeline.errors import BadInput
from pipeline.jobs import workers
from pipeline.library import episodes


def exports_dir(settings: Settings) -> Path:
    return settings.data_dir / "exports"


def approved_zip(settings: Settings, episode_id: str) -> Path:
    """Build the zip of the approved clips of an episode; returns its path.

    BadInput when no clip is approved or an approved clip has no render on disk yet.
    """
    summary = episodes.summary(settings, episode_id)
    approved = [clip for clip in summary["clips"] if clip["status"] == "approved"]
    if not approved:
        raise BadInput("No clip is approved yet: approve the clips you want, then download the zip.")
    entries: list[tuple[Path, str]] = []
    for number, clip in enumerate(approved, start=1):
        folder = f"{number:02d}-{_slug(clip['title']) or clip['clip_id']}"
        renders = {variant: Path(path) for variant, path in clip["renders"].items() if Path(path).is_file()}
        if not renders:
            raise BadInput(f"Clip “{clip['title']}” has no renders yet; wait for its render job to finish.")
        entries += [(path, f"{folder}/{variant}.mp4") for variant, path in sorted(renders.items())]
        captions = storage.clip_dir(settings.data_dir, episode_id, clip["clip_id"]) / "captions.srt"
        if captions.is_file():
            entries.append((captions, f"{folder}/captions.srt"))
    for fmt, path in sorted(summary["transcript"].items()):
        if fmt != "json":
            entries.append((Path(path), f"transcript.{fmt}"))

    out = exports_dir(settings) / f"{episode_id}-approved.zip"
    with storage.scratch_space(workers.scratch_dir(settings)) as work:   # built in scratch, published whole
        with zipfile.ZipFile(work / out.name, "w") as archive:
            for path, name in entries:
                compression = zipfile.ZIP_STORED if path.suffix == ".mp4" else zipfile.ZIP_DEFLATED
                archive.write(path, name, compress_type=compression)
        return storage.publish(work / out.name, out)


def _slug(title: str) -> str:
    """A folder name from a clip title: letters, digits and dashes, at most 60 characters."""
    return re.sub(r"[^\w]+", "-", title, flags=re.UNICODE).strip("-_")[:60].strip("-_")
