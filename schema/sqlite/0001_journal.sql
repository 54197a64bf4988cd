-- The journal: one append-only table of hash-chained events, and cached
-- projections that can always be rebuilt from it.
-- Never edit a migration once released; add a new numbered file.

CREATE TABLE events (
    -- Global position, 1-based, without gaps.
    seq            INTEGER PRIMARY KEY,
    -- The deployment (stream) the event belongs to.
    deployment     TEXT    NOT NULL,
    -- Position within the stream, 1-based, without gaps.
    stream_version INTEGER NOT NULL,
    -- The run, if any.
    run            TEXT,
    -- RFC 3339 UTC with microseconds.
    at             TEXT    NOT NULL,
    -- Stable event type name and its version.
    type           TEXT    NOT NULL,
    version        INTEGER NOT NULL,
    -- Canonical JSON (compact, keys sorted).
    payload        TEXT    NOT NULL,
    -- blake3(prev_hash || canonical bytes), 32 raw bytes each.
    prev_hash      BLOB    NOT NULL,
    hash           BLOB    NOT NULL,
    UNIQUE (deployment, stream_version)
);

CREATE INDEX events_by_run ON events (run, seq);

CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'the events table is append-only');
END;

CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN
    SELECT RAISE(ABORT, 'the events table is append-only');
END;

-- Cached fold of each deployment's stream (resources, lock, latest run).
CREATE TABLE deployment_projection (
    deployment TEXT    PRIMARY KEY,
    version    INTEGER NOT NULL,
    last_seq   INTEGER NOT NULL,
    body       TEXT    NOT NULL
);

-- Cached fold of each run.
CREATE TABLE run_projection (
    run        TEXT    PRIMARY KEY,
    deployment TEXT    NOT NULL,
    first_seq  INTEGER NOT NULL,
    body       TEXT    NOT NULL
);

CREATE INDEX run_projection_by_deployment ON run_projection (deployment, first_seq);
