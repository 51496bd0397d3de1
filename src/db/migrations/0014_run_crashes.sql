-- 0014: a poison run never takes the fleet down (issue 16 point 2).
-- crashed: this run was interrupted because its engine stopped sending
-- heartbeats (it died, was killed or stalled), not by a clean stop.
-- crashes: how many runs before this one, in its chain of resumes, ended
-- that way.  The janitor counts a crash into the resumed run it creates
-- (before any engine can claim it) and, past engine.max_resumes, marks the
-- run failed with a critical alert instead of resuming it again.
ALTER TABLE tds.sync_runs ADD COLUMN crashed boolean NOT NULL DEFAULT false;
ALTER TABLE tds.sync_runs ADD COLUMN crashes integer NOT NULL DEFAULT 0
    CHECK (crashes >= 0);
