-- The sandbox's remote world, schema version 3: the requests that could
-- change something, as the simulated APIs received them (after Laravel's
-- input middleware), so that a test can see what a client sent. Env var
-- values appear only as keyed fingerprints. Never edit once shipped.

CREATE TABLE request_log (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at      INTEGER NOT NULL,
    service TEXT NOT NULL,
    method  TEXT NOT NULL,
    path    TEXT NOT NULL,
    query   TEXT NOT NULL,
    body    TEXT,
    status  INTEGER NOT NULL
) STRICT;
