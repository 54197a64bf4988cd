-- The sandbox's remote world, schema version 1.
-- Times are milliseconds since the Unix epoch. Never edit once shipped; add
-- a new file and bump the version instead.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

-- Coolify -----------------------------------------------------------------

CREATE TABLE project (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid        TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    description TEXT,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE environment (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid        TEXT NOT NULL UNIQUE,
    project_id  INTEGER NOT NULL REFERENCES project (id),
    name        TEXT NOT NULL,
    description TEXT,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    UNIQUE (project_id, name)
) STRICT;

CREATE TABLE server (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid        TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    description TEXT,
    ip          TEXT NOT NULL,
    user        TEXT NOT NULL,
    port        INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE destination (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid       TEXT NOT NULL UNIQUE,
    server_id  INTEGER NOT NULL REFERENCES server (id),
    name       TEXT NOT NULL,
    network    TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

-- Applications and services keep their attributes as one JSON object: the
-- API exposes some ninety fields, the sandbox interprets a handful.
-- gone_at: when an asynchronous delete completes (NULL: not deleted).
CREATE TABLE application (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid           TEXT NOT NULL UNIQUE,
    environment_id INTEGER NOT NULL REFERENCES environment (id),
    destination_id INTEGER NOT NULL REFERENCES destination (id),
    attrs          TEXT NOT NULL,
    stopped        INTEGER NOT NULL DEFAULT 0,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    gone_at        INTEGER
) STRICT;

-- running_from: when the last start finishes (NULL: never started).
CREATE TABLE service (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid           TEXT NOT NULL UNIQUE,
    environment_id INTEGER NOT NULL REFERENCES environment (id),
    destination_id INTEGER NOT NULL REFERENCES destination (id),
    attrs          TEXT NOT NULL,
    running_from   INTEGER,
    stopped        INTEGER NOT NULL DEFAULT 0,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    gone_at        INTEGER
) STRICT;

CREATE TABLE tag (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid       TEXT NOT NULL UNIQUE,
    name       TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

-- resource: 'application' or 'service'.
CREATE TABLE resource_tag (
    resource    TEXT NOT NULL,
    resource_id INTEGER NOT NULL,
    tag_id      INTEGER NOT NULL REFERENCES tag (id),
    PRIMARY KEY (resource, resource_id, tag_id)
) STRICT;

CREATE TABLE env_var (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid          TEXT NOT NULL UNIQUE,
    resource      TEXT NOT NULL,
    resource_id   INTEGER NOT NULL,
    key           TEXT NOT NULL,
    value         TEXT,
    is_preview    INTEGER NOT NULL,
    is_literal    INTEGER NOT NULL,
    is_multiline  INTEGER NOT NULL,
    is_shown_once INTEGER NOT NULL,
    is_runtime    INTEGER NOT NULL,
    is_buildtime  INTEGER NOT NULL,
    comment       TEXT,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    UNIQUE (resource, resource_id, key, is_preview)
) STRICT;

-- Progress is derived from the planned times on every read:
-- queued before start_at, in_progress until finish_at, then outcome
-- ('finished' or 'failed'), unless cancelled_at is set.
CREATE TABLE deployment (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid            TEXT NOT NULL UNIQUE,
    application_id  INTEGER NOT NULL,
    commit_sha      TEXT NOT NULL,
    pull_request_id INTEGER NOT NULL,
    force_rebuild   INTEGER NOT NULL,
    restart_only    INTEGER NOT NULL,
    artifact        TEXT NOT NULL,
    outcome         TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    start_at        INTEGER NOT NULL,
    finish_at       INTEGER NOT NULL,
    cancelled_at    INTEGER
) STRICT;

CREATE INDEX deployment_by_application ON deployment (application_id, id);

-- Cloudflare --------------------------------------------------------------

CREATE TABLE zone (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE dns_record (
    id                  TEXT PRIMARY KEY,
    zone_id             TEXT NOT NULL REFERENCES zone (id),
    type                TEXT NOT NULL,
    name                TEXT NOT NULL,
    content             TEXT NOT NULL,
    ttl                 INTEGER NOT NULL,
    proxied             INTEGER NOT NULL,
    priority            INTEGER,
    comment             TEXT,
    tags                TEXT NOT NULL,
    created_at          INTEGER NOT NULL,
    modified_at         INTEGER NOT NULL,
    comment_modified_at INTEGER,
    tags_modified_at    INTEGER
) STRICT;

CREATE INDEX dns_record_by_name ON dns_record (zone_id, name);

-- Uptime Kuma -------------------------------------------------------------

CREATE TABLE monitor (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    attrs      TEXT NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE kuma_tag (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT NOT NULL,
    color      TEXT NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE monitor_tag (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    monitor_id INTEGER NOT NULL,
    tag_id     INTEGER NOT NULL,
    value      TEXT NOT NULL
) STRICT;
