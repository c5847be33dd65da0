-- The database refuses a job or render-unit status that pipeline/jobs/states.py does not list
-- (PostgreSQL twin of sqlite/009_status_checks.sql). PostgreSQL adds a CHECK to an existing table
-- in place (validating the rows already there), so no rebuild is needed; the constraint names are
-- the ones PostgreSQL gives a column CHECK written inline.

ALTER TABLE jobs ADD CONSTRAINT jobs_status_check
    CHECK (status IN ('queued', 'running', 'retrying', 'succeeded', 'failed', 'cancelled'));
ALTER TABLE jobs ADD CONSTRAINT jobs_cancel_requested_check CHECK (cancel_requested IN (0, 1));

ALTER TABLE render_units ADD CONSTRAINT render_units_status_check
    CHECK (status IN ('queued', 'running', 'done', 'failed', 'cancelled'));
