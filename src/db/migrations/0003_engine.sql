-- 0003_engine: what the engine core adds to the data model of 0001.

-- Items processed per minute and engine (flushed with each heartbeat): the
-- failure-rate alert and the console's sparkline read it.
CREATE TABLE tds.stats_minute (
    minute          timestamptz NOT NULL,
    instance        text NOT NULL,
    ok              bigint NOT NULL DEFAULT 0,
    failed          bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (minute, instance)
);

-- An item queued again by the janitor's automatic DLQ retry: if it dies
-- again, its dead-letter row is not retried automatically a second time.
ALTER TABLE tds.sync_queue ADD COLUMN auto_retry boolean NOT NULL DEFAULT false;

-- An interrupted run is resumed once: resumed_at marks it taken.
ALTER TABLE tds.sync_runs ADD COLUMN resumed_at timestamptz;

-- Notification retries with backoff.
ALTER TABLE tds.alerts ADD COLUMN notify_next_at timestamptz;
