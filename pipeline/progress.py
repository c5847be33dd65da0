"""Job progress and ETA.

Overall progress is the weighted sum of stage progress. Weights are the expected share
of the job's time: seconds of work per second of media for each stage, learned from the
stage durations recorded on this machine (``db.stage_rates``), with defaults measured
on a 2-core CPU until history exists. The ETA of the running stage comes from its own
observed throughput once it has made some progress.
"""

from __future__ import annotations

from dataclasses import dataclass

STAGES = ("ingest", "extract_audio", "transcribe", "enrich", "render")
ALL_STAGES = STAGES + ("episode_render",)   # the full-episode render runs only when a job asks for it

# Seconds of processing per second of media on a 2-core CPU, before any history exists.
DEFAULT_RATES = {"ingest": 0.002, "extract_audio": 0.005, "transcribe": 0.08, "enrich": 0.002, "render": 0.6,
                 "episode_render": 1.0}


def stages_for(options: dict) -> tuple[str, ...]:
    """The stages a job with these options runs, in order."""
    return ALL_STAGES if options.get("full_episode") else STAGES


@dataclass(frozen=True)
class Plan:
    """Expected seconds of each stage for one job, fixed when the job starts."""
    expected: dict[str, float]   # stage -> seconds, in run order

    @classmethod
    def for_media(cls, media_seconds: float | None, rates: dict[str, float],
                  stages: tuple[str, ...] = STAGES) -> Plan:
        seconds = media_seconds or 0.0
        return cls({stage: max(1e-6, rates.get(stage, DEFAULT_RATES[stage])) * max(seconds, 1.0)
                    for stage in stages})

    @property
    def stages(self) -> tuple[str, ...]:
        return tuple(self.expected)

    def weight(self, stage: str) -> float:
        return self.expected[stage] / sum(self.expected.values())

    def overall(self, stage: str, stage_progress: float) -> float:
        index = self.stages.index(stage)
        done = sum(self.weight(s) for s in self.stages[:index])
        return min(1.0, done + self.weight(stage) * min(1.0, max(0.0, stage_progress)))

    def eta(self, stage: str, stage_progress: float, stage_elapsed: float) -> float:
        """Seconds until the job finishes, from the running stage's own pace when known."""
        index = self.stages.index(stage)
        if stage_progress >= 0.02 and stage_elapsed >= 1.0:
            remaining_here = stage_elapsed / stage_progress * (1.0 - stage_progress)
        else:
            remaining_here = max(0.0, self.expected[stage] - stage_elapsed)
        return remaining_here + sum(self.expected[s] for s in self.stages[index + 1:])
