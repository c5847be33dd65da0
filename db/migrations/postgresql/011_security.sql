-- Safe to put on a network (issue 17): whether each webhook attempt was signed, so the dashboard
-- can mark deliveries sent without a secret (receivers cannot tell them from forgeries)
-- (PostgreSQL twin of sqlite/011_security.sql).
ALTER TABLE webhook_deliveries ADD COLUMN signed INTEGER CHECK (signed IN (0, 1));
