-- The build worker (issue 16): builds from source, queued by `POST /api/v1/builds` and
-- taken by `edgefn build-worker` processes.
--
-- A build names the module version it will make (module name, version label, project,
-- and the user it is made for). `archive` (the source, gzipped tar) is kept until the
-- build ends. Its log is a list of chunks, read from a chunk number on.
CREATE TABLE builds (
    id           TEXT PRIMARY KEY,
    owner_id     TEXT NOT NULL REFERENCES users(id),
    project_id   TEXT NOT NULL,
    name         TEXT NOT NULL,
    version      TEXT NOT NULL,
    description  TEXT,
    -- class of a new module, when asked for
    owner_type   TEXT,
    toolchain    TEXT NOT NULL,
    -- queued | running | succeeded | failed
    status       TEXT NOT NULL,
    archive      BLOB,
    archive_sha256 TEXT NOT NULL,
    archive_bytes BIGINT NOT NULL,
    error        TEXT,
    module_id    TEXT,
    worker       TEXT,
    log_bytes    BIGINT NOT NULL DEFAULT 0,
    created_at   BIGINT NOT NULL,
    started_at   BIGINT,
    finished_at  BIGINT
);
CREATE INDEX builds_queue ON builds (status, created_at);
CREATE INDEX builds_owner ON builds (owner_id, created_at);

CREATE TABLE build_logs (
    build_id TEXT NOT NULL REFERENCES builds(id) ON DELETE CASCADE,
    seq      INTEGER NOT NULL,
    chunk    TEXT NOT NULL,
    PRIMARY KEY (build_id, seq)
);
