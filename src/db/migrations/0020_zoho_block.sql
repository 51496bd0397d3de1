-- 0020: Zoho's blocks and outages, as the whole fleet sees them (issue 17
-- points 2 and 8).  One row per organization: until when Zoho told us to
-- stop calling (Retry-After, X-Rate-Limit-Reset, code 45), however long, so
-- that every engine waits for the same end; and since when Zoho has been
-- unreachable (NULL: it answers).
CREATE TABLE tds.zoho_block (
    org                 text PRIMARY KEY,
    blocked_until       timestamptz,
    reason              text,
    http_status         integer,
    zoho_code           integer,
    set_by              text,
    set_at              timestamptz,
    unreachable_since   timestamptz,
    unreachable_error   text
);
