-- Enrichment details per clip and operator edits (issue 4; PostgreSQL twin of sqlite/004_enrichment.sql).

ALTER TABLE clips ADD COLUMN source TEXT NOT NULL DEFAULT 'heuristic';   -- llm | heuristic: who suggested it
ALTER TABLE clips ADD COLUMN hashtags_json TEXT NOT NULL DEFAULT '[]';   -- ["#Testing", ...]
ALTER TABLE clips ADD COLUMN score_detail_json TEXT;                     -- heuristic parts: hook, substance, shape, delivery
ALTER TABLE clips ADD COLUMN edited_at DOUBLE PRECISION;                 -- last operator trim or status change
