-- Issue 16: periodic work (feed checks, inbox scan, reaper, webhook sweep, retention) runs on every
-- consumer but is taken by one at a time. A lease is held by one worker (<host_id>:<pid>) until
-- expires_at (epoch seconds); its holder renews it while the work runs and deletes it at the end, and
-- a killed holder's lease simply expires.
CREATE TABLE leases (
    name        TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    expires_at  DOUBLE PRECISION NOT NULL
);
