"""Job progress and ETA, learned per machine.

Overall progress is the weighted sum of stage progress. Weights are the expected seconds of
each stage: seconds of work per second of media, learned from the stages recorded on this
machine (``db.stage_rates``), with defaults measured on a 2-core CPU until history exists.
Render is learned per clip (seconds per second of clip) and its clips render in parallel on
the live workers. The ETA of the running stage comes from its own observed pace once it has
made some progress. Queued jobs get a forecast too: when a worker should pick them up, and
when they should be done (``forecast``).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

from pipeline.jobs.states import DONE, STAGES, UNIT_ACTIVE, stages_for

# Seconds of processing per second of media (render: per second of clip) on a 2-core CPU,
# before any history exists.
DEFAULT_RATES = {"ingest": 0.002, "extract_audio": 0.005, "transcribe": 0.08, "enrich": 0.002, "render": 1.0,
                 "episode_render": 1.0}
DEFAULT_MEDIA_SECONDS = 600.0   # a queued job whose media is not probed yet, before any history


def expected_clip_seconds(media_seconds: float, max_clips: int, min_clip: float, max_clip: float) -> float:
    """Total clip length to expect before enrichment has picked the clips."""
    return min(media_seconds, max_clips * (min_clip + max_clip) / 2)


@dataclass(frozen=True)
class Plan:
    """Expected seconds of each stage for one job (wall time: render clips share the workers)."""
    expected: dict[str, float]   # stage -> seconds, in run order

    @classmethod
    def for_job(cls, media_seconds: float | None, rates: dict[str, float], stages: tuple[str, ...] = STAGES,
                clip_seconds: float | None = None, parallel: int = 1, cpu_share: float = 1.0) -> Plan:
        """``rates`` are whole-machine rates; a task has ``cpu_share`` of the machine, and up to
        ``parallel`` clips render at once (never more than the whole machine)."""
        media = max(media_seconds or 0.0, 1.0)
        expected = {}
        for stage in stages:
            rate = max(1e-6, rates.get(stage, DEFAULT_RATES[stage]))
            if stage == "render":
                clips = media if clip_seconds is None else clip_seconds
                expected[stage] = rate * max(clips, 1.0) / min(1.0, cpu_share * max(1, parallel))
            else:
                expected[stage] = rate * media / cpu_share
        return cls(expected)

    @property
    def stages(self) -> tuple[str, ...]:
        return tuple(self.expected)

    @property
    def total(self) -> float:
        return sum(self.expected.values())

    def weight(self, stage: str) -> float:
        return self.expected[stage] / self.total

    def overall(self, stage: str, stage_progress: float) -> float:
        index = self.stages.index(stage)
        done = sum(self.weight(s) for s in self.stages[:index])
        return min(1.0, done + self.weight(stage) * min(1.0, max(0.0, stage_progress)))

    def eta(self, stage: str, stage_progress: float, stage_elapsed: float) -> float:
        """Seconds until the job finishes, from the running stage's own pace when known."""
        if stage_progress >= 0.02 and stage_elapsed >= 1.0:
            remaining_here = stage_elapsed / stage_progress * (1.0 - stage_progress)
        else:
            remaining_here = max(0.0, self.expected[stage] - stage_elapsed)
        return remaining_here + self.after(stage)

    def after(self, stage: str) -> float:
        """Expected seconds of the stages after ``stage``."""
        return sum(self.expected[s] for s in self.stages[self.stages.index(stage) + 1:])

    def remaining(self, done: set[str]) -> float:
        """Expected seconds of the stages not in ``done``."""
        return sum(seconds for stage, seconds in self.expected.items() if stage not in done)


def plan_for(enrich, options: dict, rates: dict[str, float], media_seconds: float | None,
             clip_seconds: float | None, clip_count: int, slots: int, cpu_share: float = 1.0) -> Plan:
    """A job's plan with its clips rendering on up to ``slots`` workers. Before enrichment has
    chosen the clips, the job's clip options (else the config's ``enrich``) stand in."""
    if clip_seconds is None:
        clip_count = options.get("max_clips", enrich.max_clips)
        clip_seconds = expected_clip_seconds(media_seconds or 0.0, clip_count,
                                             options.get("min_clip_seconds", enrich.min_clip_seconds),
                                             options.get("max_clip_seconds", enrich.max_clip_seconds))
    return Plan.for_job(media_seconds, rates, stages_for(options), clip_seconds,
                        parallel=max(1, min(slots, clip_count)), cpu_share=cpu_share)


def render_eta(units: list[dict], learned_rate: float, slots: int) -> float:
    """Seconds until a render fan-out's clips are all done.

    What is left of each clip (by length and progress) at this job's own pace per second of
    clip once a clip has finished (else the learned rate), spread over the workers that can
    take the clips left. Time the clips spent waiting behind other jobs does not count as slowness.
    """
    done = [u for u in units if u["status"] == DONE and u["started_at"] and u["finished_at"]]
    pace = (sum(u["finished_at"] - u["started_at"] for u in done) / sum(u["clip_seconds"] for u in done)
            if done else learned_rate)
    left = [u for u in units if u["status"] in UNIT_ACTIVE]
    work = sum((1.0 - u["progress"]) * u["clip_seconds"] * pace for u in left)
    return work / max(1, min(slots, len(left))) if left else 0.0


@dataclass(frozen=True)
class QueuedJob:
    job_id: int
    ready_in: float      # seconds until it may start (a retry's backoff), 0 when it may start now
    seconds: float       # expected run time


def forecast(busy: list[float], queued: list[QueuedJob], slots: int) -> dict[int, tuple[float, float]]:
    """When each queued job should start and finish: {job_id: (starts_in, done_in)} in seconds.

    ``busy`` holds the remaining seconds of the jobs running now; ``queued`` is in queue order
    (priority, then age). Whenever one of the ``slots`` workers frees up it takes the first job
    that may start by then; a job waiting out a retry backoff does not hold a worker.
    """
    free = sorted(busy)[:slots] if len(busy) >= slots else sorted(busy) + [0.0] * (slots - len(busy))
    heapq.heapify(free)
    pending, result = list(queued), {}
    while pending:
        at = heapq.heappop(free)
        job = next((j for j in pending if j.ready_in <= at), None) or min(pending, key=lambda j: j.ready_in)
        pending.remove(job)
        start = max(at, job.ready_in)
        result[job.job_id] = (start, start + job.seconds)
        heapq.heappush(free, start + job.seconds)
    return result
