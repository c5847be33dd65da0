-- Issue 18: jump cuts per clip. 1 = cut pauses (and filler words if configured), 0 = keep them,
-- NULL = the job's option `remove_silences`, else render.remove_silences from the config
-- (PostgreSQL twin of sqlite/014_framing.sql).
ALTER TABLE clips ADD COLUMN remove_silences INTEGER CHECK (remove_silences IN (0, 1));
