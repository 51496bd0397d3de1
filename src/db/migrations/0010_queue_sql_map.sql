-- 0010_queue_sql_map: the queue's bulk apply maps payloads in SQL (apply.c):
-- a claim no longer ships payloads out (jsonb_out cost ~18 us of server CPU
-- per item) and tds no longer parses them (~20 us more).  The
-- statement takes only the values whose meaning is plain (a string for a
-- text column, a number or a numeric string for a numeric one, ...); for
-- anything else it calls this function, which fails the statement, and the
-- batch is replayed item by item with tds's own mapping (zoho/map.c), the
-- one that names what is wrong and dead-letters what cannot succeed.
CREATE FUNCTION tds.map_reject(entity text, zoho_id text, field text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'queue bulk apply: % % field %: not plain; mapped item by item', entity,
        zoho_id, field USING ERRCODE = 'data_exception';
END $$;
