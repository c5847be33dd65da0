"""Which function runs each stage, and what a sentence calls it.

A new stage: a module here with ``run(ctx: StageContext)``, an entry in ``RUN`` and ``LABELS``,
and its place in ``pipeline.jobs.progress.STAGES`` (run order) with a default rate.
"""

from pipeline.stages import audio, enrich, episode_render, ingest, render, transcribe

RUN = {"ingest": ingest.run, "extract_audio": audio.run, "transcribe": transcribe.run, "enrich": enrich.run,
       "render": render.run, "episode_render": episode_render.run}
LABELS = {"ingest": "ingest", "extract_audio": "audio extraction", "transcribe": "transcription",
          "enrich": "enrichment", "render": "rendering", "episode_render": "full-episode rendering"}
