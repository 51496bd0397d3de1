-- 0017_retention: retention that prunes in small batches (issue 16 point
-- 10) and counters that never go down (point 12).
--
-- The janitor prunes tds.events, tds.inbox, tds.sync_runs and tds.api_usage
-- (retention.*) besides the queue, the resolved dead letters and
-- tds.stats_minute (engine.cleanup_after_days).  Several /metrics counters
-- are sums over rows of those tables; what a pruned row counted is folded,
-- in the statement that deletes it, into tds.metric_totals, which is never
-- pruned: a counter is its live rows plus its folded total.
--   metric 'items_synced': l1 entity ('all' for every entity), l2 result
--   metric 'api_calls':    l1 endpoint, l2 HTTP status
--   metric 'dlq_moves':    l1 = l2 = ''
CREATE TABLE tds.metric_totals (
    metric  text NOT NULL,
    l1      text NOT NULL DEFAULT '',
    l2      text NOT NULL DEFAULT '',
    value   bigint NOT NULL DEFAULT 0 CHECK (value >= 0),
    PRIMARY KEY (metric, l1, l2)
);

-- Deleting an inbox row sets sync_queue.inbox_id to NULL (its foreign key),
-- and deleting a run sets a later run's resumed_from to NULL: without an
-- index each deleted row would scan the whole referencing table.
CREATE INDEX sync_queue_inbox_idx ON tds.sync_queue (inbox_id) WHERE inbox_id IS NOT NULL;
CREATE INDEX sync_runs_resumed_from_idx ON tds.sync_runs (resumed_from)
    WHERE resumed_from IS NOT NULL;
-- A run an open dead letter names is kept.
CREATE INDEX dead_letter_open_run_idx ON tds.dead_letter (run_id)
    WHERE NOT resolved AND run_id IS NOT NULL;
