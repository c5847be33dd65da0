-- Safe to put on a network (issue 17): whether each webhook attempt was signed, so the dashboard
-- can mark deliveries sent without a secret (receivers cannot tell them from forgeries).
ALTER TABLE webhook_deliveries ADD COLUMN signed INTEGER CHECK (signed IN (0, 1));
