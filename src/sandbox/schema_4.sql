-- The sandbox's remote world, schema version 4: the container registry.
-- Every tag of every image exists; a row here says how many times a tag
-- was pushed (1 without a row), which decides the manifest it names. A
-- repository row switches it private or unreachable. Repositories are
-- named by the registry's API host and path (`ghcr.io/acme/web`,
-- `registry-1.docker.io/library/nginx`). Never edit once shipped.

CREATE TABLE registry_tags (
    repository TEXT NOT NULL,
    tag        TEXT NOT NULL,
    pushes     INTEGER NOT NULL,
    PRIMARY KEY (repository, tag)
) STRICT;

CREATE TABLE registry_repositories (
    name      TEXT PRIMARY KEY,
    private   INTEGER NOT NULL DEFAULT 0,
    reachable INTEGER NOT NULL DEFAULT 1
) STRICT;
