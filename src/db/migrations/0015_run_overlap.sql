-- 0015: no overlapping runs (issue 16 point 6).  Two runs overlap when they
-- are of the same kind and their entities meet (NULL is every entity).  A
-- run starts (is claimed, or inserted running by `tds sync --wait`) only
-- when no overlapping run is running; the starters serialize on one
-- advisory lock, taken in a statement of its own so that the check that
-- follows sees every start committed before it.  A running run whose
-- heartbeat is older than dead_after seconds is dead (its process was
-- killed; the janitor interrupts it): it is in no one's way.
CREATE FUNCTION tds.run_in_the_way(kind text, entity text, dead_after integer DEFAULT 30)
RETURNS bigint LANGUAGE sql STABLE AS $$
    SELECT id FROM tds.sync_runs
     WHERE status = 'running' AND run_type = kind
       AND (entity_type IS NULL OR entity IS NULL OR entity_type = entity)
       AND coalesce(heartbeat_at, started_at) > now() - make_interval(secs => dead_after)
     ORDER BY id LIMIT 1
$$;
