-- 0013: queue items made from webhooks take their attempts from the
-- configuration (engine.retry.max_attempts, TDS_RETRY_MAX_ATTEMPTS), as every
-- other item does; they kept the column default (5) before.  The intake
-- passes the figure in each request's meta ("max_attempts"); a meta without
-- it (an older tds during a rolling start) keeps 5.  Otherwise as in 0009.
CREATE OR REPLACE FUNCTION tds.webhook_intake(meta jsonb, bodies bytea[])
RETURNS TABLE (out_inbox bigint, out_queue bigint, out_dup bigint)
LANGUAGE plpgsql AS $$
BEGIN
    -- Deliveries of one record are serialized across concurrent batches and
    -- engines; locks are taken in one sorted order so batches cannot deadlock.
    PERFORM pg_advisory_xact_lock(s.k) FROM (
        SELECT DISTINCT hashtextextended('tds.inbox:' || (e->>'entity') || ':' || (e->>'zoho_id'), 0) AS k
          FROM jsonb_array_elements(meta) AS e
         WHERE e->>'status' = 'queued'
         ORDER BY 1) AS s;
    IF EXISTS (SELECT 1 FROM jsonb_array_elements(meta) AS e WHERE e->>'status' = 'queued') THEN
        PERFORM pg_notify('tds_queue', '');
    END IF;
    RETURN QUERY
    WITH m AS MATERIALIZED (
        SELECT t.ord::integer AS ord, t.e,
               nextval(pg_get_serial_sequence('tds.inbox', 'id')) AS iid,
               t.e->>'status' = 'queued' AS queued,
               t.e->>'entity' AS ent, t.e->>'zoho_id' AS zid, t.e->>'lmt' AS lmt
          FROM jsonb_array_elements(meta) WITH ORDINALITY AS t(e, ord)
    ),
    d AS MATERIALIZED (
        SELECT m.*, p.id AS prior_id, p.queue_id AS prior_qid,
               CASE WHEN m.queued AND m.lmt IS NOT NULL
                    THEN first_value(m.iid) OVER (PARTITION BY m.queued, m.ent, m.zid, m.lmt
                                                  ORDER BY m.ord) END AS first_iid
          FROM m
          LEFT JOIN LATERAL (
              SELECT b.id, b.queue_id FROM tds.inbox AS b
               WHERE m.queued AND m.lmt IS NOT NULL AND b.status = 'queued'
                 AND b.duplicate_of IS NULL
                 AND b.entity = m.ent AND b.zoho_id = m.zid AND b.last_modified_time = m.lmt
               ORDER BY b.id LIMIT 1) AS p ON true
    ),
    q AS (
        INSERT INTO tds.sync_queue (entity_type, zoho_id, operation, payload, priority, inbox_id,
                                    max_attempts)
        SELECT DISTINCT ON (d.ent, d.zid) d.ent, d.zid, 'upsert',
               jsonb_build_object('refetch', true, 'hint', coalesce(d.e->'hint', 'null'::jsonb)),
               9, d.iid, coalesce((d.e->>'max_attempts')::integer, 5)
          FROM d
         WHERE d.queued AND d.prior_id IS NULL AND (d.first_iid IS NULL OR d.first_iid = d.iid)
         ORDER BY d.ent, d.zid, d.ord DESC
        ON CONFLICT (entity_type, zoho_id) WHERE status = 'pending' DO UPDATE SET
            payload = EXCLUDED.payload, operation = EXCLUDED.operation,
            priority = greatest(tds.sync_queue.priority, EXCLUDED.priority),
            inbox_id = EXCLUDED.inbox_id, max_attempts = EXCLUDED.max_attempts,
            updated_at = now()
        RETURNING id, entity_type, zoho_id
    ),
    ins AS (
        INSERT INTO tds.inbox (id, entity, zoho_id, last_modified_time, remote_addr, method, path,
                               content_type, headers, body, body_size, status, reject_reason,
                               http_status, duplicate_of, queue_id)
        SELECT d.iid, d.ent, d.zid, d.lmt, d.e->>'remote_addr', d.e->>'method', d.e->>'path',
               d.e->>'content_type', coalesce(d.e->'headers', '{}'::jsonb), bodies[d.ord],
               (d.e->>'body_size')::bigint, d.e->>'status', d.e->>'reject_reason',
               (d.e->>'http_status')::smallint,
               coalesce(d.prior_id, CASE WHEN d.first_iid <> d.iid THEN d.first_iid END),
               CASE WHEN d.queued THEN coalesce(d.prior_qid, q.id) END
          FROM d
          LEFT JOIN q ON d.queued AND d.prior_id IS NULL
                     AND q.entity_type = d.ent AND q.zoho_id = d.zid
        RETURNING id, queue_id, duplicate_of
    )
    SELECT ins.id, ins.queue_id, ins.duplicate_of FROM ins JOIN m ON m.iid = ins.id ORDER BY m.ord;
END $$;
