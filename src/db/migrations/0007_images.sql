-- 0007_images: product images are fetched by their own run ("images"),
-- requested by a sync that saw image_document_id change, so a first sync
-- of an organization with thousands of pictures (one API call each) never
-- holds a stock run open.  image_fetched_document_id records which
-- document the stored file (or the decision that there is none) belongs to.
ALTER TABLE zoho.items ADD COLUMN image_fetched_document_id text;
UPDATE zoho.items SET image_fetched_document_id = image_document_id WHERE image_path IS NOT NULL;
CREATE INDEX items_image_todo_idx ON zoho.items (item_id)
    WHERE image_document_id IS DISTINCT FROM image_fetched_document_id AND deleted_at IS NULL;

ALTER TABLE tds.sync_runs DROP CONSTRAINT sync_runs_run_type_check;
ALTER TABLE tds.sync_runs ADD CONSTRAINT sync_runs_run_type_check CHECK (run_type IN
    ('full', 'incremental', 'stock', 'items', 'webhook', 'reconcile', 'images'));
