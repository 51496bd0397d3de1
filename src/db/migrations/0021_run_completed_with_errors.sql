-- 0021: a run that did its work but dead-lettered records does not report
-- plain success (issue 17 point 4): its status is completed_with_errors.
ALTER TABLE tds.sync_runs DROP CONSTRAINT sync_runs_status_check;
ALTER TABLE tds.sync_runs ADD CONSTRAINT sync_runs_status_check CHECK (status IN
    ('pending', 'running', 'completed', 'completed_with_errors', 'failed', 'cancelled',
     'interrupted'));
