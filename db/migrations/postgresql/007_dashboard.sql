-- Dashboard (issue 6; PostgreSQL twin of sqlite/007_dashboard.sql). The Overview reads succeeded jobs
-- by finish time (throughput per day) and their episodes (media hours): this index covers both
-- without touching the job rows.
CREATE INDEX jobs_finished_idx ON jobs(status, finished_at, episode_id);

-- The Episodes and Review pages list the newest episodes: walk this index instead of sorting them all.
CREATE INDEX episodes_created_idx ON episodes(created_at);
