"""Which function runs each stage, and what a sentence calls it.

A new stage: a module here with ``run(ctx: StageContext)``, an entry in ``RUN`` and ``LABELS``,
its place in ``pipeline.jobs.states.STAGES`` (run order) and a default rate in
``pipeline.jobs.progress.DEFAULT_RATES``.
"""

from pipeline.stages import audio, enrich, episode_render, ingest, render, transcribe

RUN = {"ingest": ingest.run, "extract_audio": audio.run, "transcribe": transcribe.run, "enrich": enrich.run,
       "render": render.run, "episode_render": episode_render.run}
LABELS = {"ingest": "ingest", "extract_audio": "audio extraction", "transcribe": "transcription",
          "enrich": "enrichment", "render": "rendering", "episode_render": "full-episode rendering"}
