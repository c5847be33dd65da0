"""CPU thread budgets: N tasks running at once share the cores instead of each taking all of them.

A consumer started with ``-w N`` runs N tasks at once; each task's transcription threads and
ffmpeg threads default to ``cores // N`` (at least one). ``transcribe.threads`` and
``render.threads`` in the config override the share when set (non-zero).
"""

from __future__ import annotations

import dataclasses
import os

from pipeline.config import Settings


def share(workers: int, cores: int | None = None) -> int:
    """Threads one task may use when ``workers`` tasks run at once on ``cores`` cores."""
    cores = cores or _usable_cores()
    return max(1, cores // max(1, workers))


def machine_share(workers: int) -> float:
    """The fraction of the machine's cores one of ``workers`` concurrent tasks gets."""
    return min(1.0, share(workers) / _usable_cores())


def for_task(settings: Settings, workers: int) -> Settings:
    """``settings`` with the automatic (0) thread counts replaced by this task's share."""
    threads = share(workers)
    transcribe = settings.transcribe.threads or threads
    render = settings.render.threads or threads
    return dataclasses.replace(settings, transcribe=dataclasses.replace(settings.transcribe, threads=transcribe),
                               render=dataclasses.replace(settings.render, threads=render))


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))   # honours taskset / container CPU sets
    except AttributeError:
        return os.cpu_count() or 1
