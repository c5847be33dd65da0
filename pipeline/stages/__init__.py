"""The stages of a job, in run order: ingest (and download), extract_audio, transcribe, enrich, render
(one clip at a time), and the optional full-episode render. ``registry`` maps each stage name to its ``run``."""
