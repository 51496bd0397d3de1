-- 0011_queue_payloads: the payloads tds queues live in a table of their
-- own (issue 4's item upserts).
--
-- A queue row is written three times in its life: enqueued, claimed
-- ('processing', a lease) and completed.  PostgreSQL writes every UPDATE as
-- a whole new row version, so with the payload in the row (an item record
-- is ~1.7 KB, too small to be TOASTed out of line) the claim and the
-- completion each copied it again, with its WAL: a drain of 100k item
-- records grew tds.sync_queue from ~180 MB to ~590 MB.  Queue rows are now
-- ~150 bytes; a record is written once, beside its row.
--
-- Where a payload is: tds's enqueue keeps a record longer than 512 bytes
-- (QUEUE_INLINE_MAX) here, a shorter payload and any refetch request in the
-- row, where copying it costs less than a second table.
-- tds.sync_queue.payload keeps its meaning: the webhook intake and a DLQ
-- retry write it there, as does anything that writes rows by SQL, and a
-- payload found there is the item's.  One place holds an item's payload,
-- never both: a payload written into a row replaces the one kept here
-- (trigger sync_queue_payload_in_row), and tds's enqueue clears the row's
-- when it keeps one here.  Readers take coalesce(sync_queue.payload,
-- queue_payloads.payload).
--
-- There is no foreign key: its insert-time check would lock, and so
-- rewrite, the queue row it points to.  What the key's ON DELETE CASCADE
-- would do, two statement triggers do (as for zoho.item_locations in 0006).
CREATE TABLE tds.queue_payloads (
    queue_id bigint PRIMARY KEY,
    payload  jsonb NOT NULL
);

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression'
               AND 'lz4' = ANY (enumvals)) THEN
        ALTER TABLE tds.queue_payloads ALTER COLUMN payload SET COMPRESSION lz4;
    END IF;
END $$;

CREATE FUNCTION tds.sync_queue_delete_payloads() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        TRUNCATE tds.queue_payloads;
    ELSE
        DELETE FROM tds.queue_payloads p USING old_rows o WHERE p.queue_id = o.id;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER sync_queue_delete_payloads AFTER DELETE ON tds.sync_queue
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tds.sync_queue_delete_payloads();
CREATE TRIGGER sync_queue_truncate_payloads AFTER TRUNCATE ON tds.sync_queue
    FOR EACH STATEMENT EXECUTE FUNCTION tds.sync_queue_delete_payloads();

CREATE FUNCTION tds.sync_queue_payload_in_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM tds.queue_payloads WHERE queue_id = NEW.id;
    RETURN NEW;
END $$;
CREATE TRIGGER sync_queue_payload_in_row BEFORE UPDATE OF payload ON tds.sync_queue
    FOR EACH ROW WHEN (NEW.payload IS NOT NULL)
    EXECUTE FUNCTION tds.sync_queue_payload_in_row();
