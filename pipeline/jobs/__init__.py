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

from pipeline.jobs.api import (
    PRIORITY_FEED,
    PRIORITY_INTERACTIVE,
    PRIORITY_RETRY,
    Dispatch,
    cancel,
    create,
    display_title,
    enqueue,
    episode_status_after,
    events,
    get,
    iso,
    list_jobs,
    new_episode_id,
    outcomes,
    queue_forecast,
    queue_overview,
    retry,
    rework,
    safe_filename,
    save_upload,
    stats,
    submit,
    to_json,
    units,
)
from pipeline.jobs.states import FINAL as FINAL_STATUSES
from pipeline.jobs.states import JOB_STATUSES

__all__ = ["FINAL_STATUSES", "JOB_STATUSES", "PRIORITY_FEED", "PRIORITY_INTERACTIVE", "PRIORITY_RETRY", "Dispatch",
           "cancel", "create", "display_title", "enqueue", "episode_status_after", "events", "get", "iso", "list_jobs",
           "new_episode_id", "outcomes", "queue_forecast", "queue_overview", "retry", "rework",
           "safe_filename", "save_upload", "stats", "submit", "to_json", "units"]
