-- 0016: one leader, never two (issue 16 point 5).  epoch grows each time the
-- lease changes hands; a leader-only write checks that the lease is still
-- its own at the epoch it took (FOR SHARE, so it cannot change hands under
-- the write), which a stale leader cannot pass.
ALTER TABLE tds.leases ADD COLUMN epoch bigint NOT NULL DEFAULT 1;
