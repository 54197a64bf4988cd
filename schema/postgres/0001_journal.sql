-- The journal in PostgreSQL: the same tables and rules as the SQLite
-- journal (schema/sqlite/0001_journal.sql), so that a journal copied from
-- one backend to the other is byte for byte the same.
-- Never edit a migration once released; add a new numbered file.

CREATE TABLE events (
    -- Global position, 1-based, without gaps (assigned by Fabrik under an
    -- advisory transaction lock, not by a sequence, which would leave gaps).
    seq            bigint  PRIMARY KEY CHECK (seq > 0),
    -- The deployment (stream) the event belongs to.
    deployment     text    NOT NULL,
    -- Position within the stream, 1-based, without gaps.
    stream_version bigint  NOT NULL CHECK (stream_version > 0),
    -- The run, if any.
    run            text,
    -- RFC 3339 UTC with microseconds, as text: it is hashed as written.
    at             text    NOT NULL,
    -- Stable event type name and its version.
    type           text    NOT NULL,
    version        integer NOT NULL,
    -- Canonical JSON (compact, keys sorted), as text: it is hashed as
    -- written, so it is not jsonb (which would reorder and respace it).
    payload        text    NOT NULL,
    -- blake3(prev_hash || canonical bytes), 32 raw bytes each.
    prev_hash      bytea   NOT NULL,
    hash           bytea   NOT NULL,
    UNIQUE (deployment, stream_version)
);

CREATE INDEX events_by_run ON events (run, seq);

-- The events table is append-only: no UPDATE, DELETE or TRUNCATE.
CREATE FUNCTION fabrik_events_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the events table is append-only'
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER events_no_update BEFORE UPDATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION fabrik_events_append_only();

CREATE TRIGGER events_no_delete BEFORE DELETE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION fabrik_events_append_only();

CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION fabrik_events_append_only();

-- Cached fold of each deployment's stream (resources, lock, latest run).
CREATE TABLE deployment_projection (
    deployment text   PRIMARY KEY,
    version    bigint NOT NULL,
    last_seq   bigint NOT NULL,
    body       text   NOT NULL
);

-- Cached fold of each run.
CREATE TABLE run_projection (
    run        text   PRIMARY KEY,
    deployment text   NOT NULL,
    first_seq  bigint NOT NULL,
    body       text   NOT NULL
);

CREATE INDEX run_projection_by_deployment ON run_projection (deployment, first_seq);
