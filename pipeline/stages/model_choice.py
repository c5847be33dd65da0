"""Which transcription model a job may name (issue 17).

A model name is read by the worker as a path on its disk or as a repository to download, so a
name typed in the dashboard or the HTTP API is held to: the bundled model, a model name the
engines know (those download once into ``<data_dir>/models/``), or a folder under that models
dir. A Hugging Face repository id ("org/model") downloads arbitrary code-adjacent weights and is
allowed only with ``transcribe.allow_downloads: true``. The config file and the CLI (people with
a shell on the machine) may also name a model folder anywhere.
"""

from __future__ import annotations

import os
from pathlib import Path

from pipeline.errors import BadInput
from pipeline.stages import bundled_models

BUNDLED_MODELS = set(bundled_models.NAMES)


def models_dir(data_dir: Path) -> Path:
    """Where converted checkpoints, opted-in downloads and operator-provided model folders live."""
    return Path(data_dir) / "models"


def is_path(name: str) -> bool:
    return name.startswith(("/", "./", "../", "~")) or Path(name).is_absolute()


def known_names() -> list[str]:
    """Model names faster-whisper downloads by name (a superset of openai-whisper's)."""
    from faster_whisper import available_models
    return list(available_models())


def check(name: str, data_dir: Path, allow_downloads: bool, trusted: bool = False) -> None:
    """Raise BadInput unless ``name`` may be used; ``trusted`` (config, CLI) lifts the folder rule."""
    if name in BUNDLED_MODELS:
        return
    if is_path(name) or os.sep in name and Path(name).expanduser().exists():
        if trusted:
            return
        real = os.path.realpath(Path(name).expanduser())
        if not Path(real).is_relative_to(os.path.realpath(models_dir(data_dir))) or not Path(real).is_dir():
            raise BadInput(f"Model '{name}' is not a model folder under the models dir (<data_dir>/models); "
                           f"put the model folder there, or name a known model such as 'tiny.en' or 'base'.")
        return
    if "/" in name:
        if not allow_downloads:
            raise BadInput(f"Model '{name}' would be downloaded from the Hugging Face hub, which is off; set "
                           f"transcribe.allow_downloads: true in the config to allow it, or name a known model "
                           f"such as 'tiny.en' or 'base'.")
        return
    if name not in known_names():
        raise BadInput(f"Unknown model '{name}'; choose one of {', '.join(known_names())}, or a model folder "
                       f"under the models dir (<data_dir>/models).")
