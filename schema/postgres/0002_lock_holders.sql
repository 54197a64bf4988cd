-- Who holds each deployment's run lock. The lock itself is a session-scoped
-- advisory lock (pg_try_advisory_lock on lock_key), which the server
-- releases when the holder's connection ends, however it ends; this table
-- only describes the holder so that a refused run can name it. A row whose
-- backend no longer holds the advisory lock (see pg_locks) is stale and
-- ignored; the next holder overwrites it.
-- Never edit a migration once released; add a new numbered file.

CREATE TABLE lock_holder (
    deployment  text    PRIMARY KEY,
    -- The advisory lock key (derived from the schema and the deployment).
    lock_key    bigint  NOT NULL,
    -- pg_backend_pid() of the session holding the advisory lock.
    backend_pid integer NOT NULL,
    -- The holder, as in the lock_acquired event.
    run         text    NOT NULL,
    pid         bigint  NOT NULL,
    host        text    NOT NULL,
    user_name   text    NOT NULL,
    command     text    NOT NULL,
    since       text    NOT NULL
);
