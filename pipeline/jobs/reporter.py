"""Progress reporters: what a running stage or clip calls with its 0..1 progress.

They turn it into the job's progress and ETA rows (from the job's ``Plan``, learned per machine)
and check the job's cancel flag, raising ``Cancelled`` at the next check after a cancel.
"""

from __future__ import annotations

import time

from pipeline import db
from pipeline.config import Settings
from pipeline.errors import Cancelled
from pipeline.jobs import outage, workers
from pipeline.jobs.progress import DEFAULT_RATES, Plan, render_eta
from pipeline.jobs.states import STAGES

PROGRESS_WRITE_INTERVAL = 0.5
CANCEL_CHECK_INTERVAL = 1.0


class JobReporter:
    """Turns a stage's 0..1 progress into job progress + ETA rows, and checks for cancel.

    Writes are throttled so a chatty stage costs at most a couple of short transactions
    a second; the cancel flag is read at least every second while a stage reports.
    """

    def __init__(self, settings: Settings, job_id: int, plan: Plan):
        self.settings, self.job_id, self.plan = settings, job_id, plan
        self.stage = STAGES[0]
        self.stage_started = time.monotonic()
        self.last_write = self.last_cancel_check = 0.0

    def enter(self, stage: str) -> None:
        self.stage, self.stage_started = stage, time.monotonic()
        self.last_write = 0.0

        def write():
            with db.session(self.settings.app_db) as conn, db.transaction(conn):
                db.set_job_stage(conn, self.job_id, stage, self.plan.overall(stage, 0.0), time.time())
                db.add_event(conn, self.job_id, stage, "started", time.time(), host=self.settings.worker.host_id)
        self._retried("starting the stage", write)
        self.write(0.0)   # the new stage's ETA replaces the last one's at once

    def __call__(self, fraction: float) -> None:
        now = time.monotonic()
        if now - self.last_cancel_check >= CANCEL_CHECK_INTERVAL:
            self.last_cancel_check = now
            self.check_cancel()
        if fraction < 1.0 and now - self.last_write < PROGRESS_WRITE_INTERVAL:
            return
        self.last_write = now
        self.write(fraction)

    def write(self, fraction: float) -> None:
        eta = self.plan.eta(self.stage, fraction, self.elapsed())

        def write():
            with db.session(self.settings.app_db) as conn:
                db.set_job_progress(conn, self.job_id, fraction, self.plan.overall(self.stage, fraction),
                                    round(eta, 1), time.time())
        self._retried("saving progress", write)

    def check_cancel(self) -> None:
        def cancel_requested() -> bool:
            with db.session(self.settings.app_db) as conn:
                return db.is_cancel_requested(conn, self.job_id)
        if self._retried("checking for a cancel", cancel_requested):
            raise Cancelled("The job was cancelled.")

    def _retried(self, what: str, action):
        """A database outage pauses the stage here until the database is back (``outage``)."""
        return outage.retried(self.settings, what, action, self.job_id, self.stage)

    def elapsed(self) -> float:
        return time.monotonic() - self.stage_started


class UnitReporter(JobReporter):
    """One clip's progress: stored on its unit, and the job's render progress is the clips'
    progress weighted by length, its ETA from the whole fan-out's pace so far."""

    def __init__(self, settings: Settings, conn, job, plan: Plan, unit_id: int, cpu_share: float):
        """Reads the learned render rate and the worker slots once (``conn``): not on every write."""
        super().__init__(settings, job["id"], plan)
        self.unit_id, self.stage, self.cpu_share = unit_id, "render", cpu_share
        self.slots = workers.liveness(settings, conn, time.time())["threads_alive"]
        rates = db.stage_rates(conn, settings.worker.host_id)
        self.pace = rates.get("render", DEFAULT_RATES["render"]) / cpu_share   # at this share

    def write(self, fraction: float) -> None:
        now = time.time()

        def write():
            with db.session(self.settings.app_db) as conn, db.transaction(conn):
                db.set_unit_progress(conn, self.unit_id, fraction, now)
                self.update_job(conn, now)
        self._retried("saving the clip's progress", write)

    def update_job(self, conn, now: float) -> None:
        """The job's render progress from its units, and its ETA from what is left of its clips."""
        fraction = db.units_progress(conn, self.job_id)
        units = [dict(u) for u in db.list_units(conn, self.job_id)]
        eta = render_eta(units, self.pace, self.slots) + self.plan.after("render")
        db.set_job_progress(conn, self.job_id, fraction, self.plan.overall("render", fraction), round(eta, 1), now)
