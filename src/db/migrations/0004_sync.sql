-- 0004_sync: what the sync jobs record beyond 0001 (issue 5).
-- The statistics of a run (changed, created, api calls, duration, items/s...)
-- as one JSON object, and the content address of an item's stored image.
ALTER TABLE tds.sync_runs ADD COLUMN IF NOT EXISTS stats jsonb;
ALTER TABLE zoho.items ADD COLUMN IF NOT EXISTS image_sha256 text;
