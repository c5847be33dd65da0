"""The job machinery, and (re-exported here) the job API the shells call.

- ``api``: what the dashboard, the CLI and automation do with jobs: create, enqueue, retry,
  rework, cancel, and read them back as the job JSON.
- ``states``: job and render-unit statuses, stage order, and the transitions allowed between them.
- ``runner``: claims a job, runs its next stage (or one clip of its render), reports, retries.
- ``reporter`` and ``progress``: progress, ETA and queue forecasts learned per machine.
- ``workers``: worker identity, heartbeats and the one liveness rule.
- ``recovery``: the reaper that puts jobs of dead workers back on the queue.
- ``options`` (per-job options) and ``threads`` (thread budgets per task).
"""

from typing import TYPE_CHECKING

from pipeline.jobs.states import FINAL as FINAL_STATUSES
from pipeline.jobs.states import JOB_STATUSES

API = ("PRIORITY_FEED", "PRIORITY_INTERACTIVE", "PRIORITY_RETRY", "Dispatch", "cancel", "create", "display_title",
       "enqueue", "events", "get", "iso", "list_jobs", "new_episode_id", "outcomes", "page",
       "queue_forecast", "queue_overview", "retry", "rework", "safe_filename", "save_upload", "stats", "submit",
       "to_json", "units")
__all__ = ["FINAL_STATUSES", "JOB_STATUSES", *API]

if TYPE_CHECKING:   # what editors and type checkers see; at run time ``api`` loads on first use
    from pipeline.jobs.api import *  # noqa: F403


def __getattr__(name: str):
    """``jobs.create`` and the rest of the job API, imported on first use (PEP 562): the SQL layer
    imports ``jobs.states`` and must not pull in the API, which imports stages, yt-dlp and PyAV."""
    if name in API:
        from pipeline.jobs import api
        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
