-- 0012_drop_lease_idx: one index entry fewer per claimed item (issue 4).
--
-- Every claim added an entry to sync_queue_lease_idx for each item (its new
-- row version, 'processing'), there for the janitor's search of expired
-- leases.  sync_queue_status_idx, which every claim writes anyway, finds
-- the processing rows (the batches in hand, and those of engines that died
-- holding them): the search, the stop's release and the alert on long
-- processing read it instead.  Measured: a no-op drain ~5% faster.
DROP INDEX IF EXISTS tds.sync_queue_lease_idx;
