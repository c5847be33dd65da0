"""Clipdesk's domain code: everything the dashboard, the CLI and the worker do, with no shell in it.

- ``jobs``: the job machinery (states, runner, reporter, progress/ETA, workers, recovery) and the
  job API the shells call (``jobs.create``, ``jobs.cancel`` ...).
- ``db``: the SQL layer, split by entity; the only place with SQL.
- ``stages``: ingest (+ download), audio, transcribe, enrich, render, episode render; ``registry`` maps names to them.
- ``enrichment``: sentences, keywords, loudness, the heuristic and LLM enrichers, clip rules.
- ``media``: the one place that runs ffmpeg (probe, render graph, reframe, captions).
- ``automation``: monitored feeds, the watch folder, webhooks.
- ``library``: episode summaries and exports, deletes, review edits, bundles.
- ``ops``: ``serve``, health checks, statistics.
- Top level: ``cli`` (``python -m pipeline``), ``config`` (settings), ``errors``, ``storage`` (the data
  dir's layout), ``transcript`` (the transcript format and its exports), ``backoff``.
"""
