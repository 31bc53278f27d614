-- Deadlines: the sweeper only ever looks at processes that have one.
CREATE INDEX processes_exec_deadline ON processes (exec_deadline)
    WHERE state = 1 AND exec_deadline IS NOT NULL;
CREATE INDEX processes_wait_deadline ON processes (wait_deadline)
    WHERE state = 0 AND wait_deadline IS NOT NULL;
