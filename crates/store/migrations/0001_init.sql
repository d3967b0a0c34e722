-- edgefn schema v1 (DESIGN §5). Portable SQL: TEXT ids (UUIDs), BIGINT millisecond
-- timestamps, JSON as TEXT, so the same file serves SQLite and PostgreSQL.

CREATE TABLE users (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    role        TEXT NOT NULL CHECK (role IN ('admin', 'user')),
    created_at  BIGINT NOT NULL
);

CREATE TABLE api_tokens (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL
);

CREATE TABLE modules (
    id                TEXT PRIMARY KEY,
    owner_id          TEXT NOT NULL REFERENCES users (id),
    owner_type        TEXT NOT NULL DEFAULT 'user' CHECK (owner_type IN ('system', 'admin', 'user')),
    name              TEXT NOT NULL,
    description       TEXT NOT NULL DEFAULT '',
    status            TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('uploading', 'active', 'disabled', 'error')),
    is_public         BOOLEAN NOT NULL DEFAULT FALSE,
    allowed_users     TEXT NOT NULL DEFAULT '[]',
    metadata          TEXT NOT NULL DEFAULT '{}',
    timeout_ms        BIGINT NOT NULL,
    max_memory_pages  BIGINT NOT NULL,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    UNIQUE (owner_id, name)
);

CREATE TABLE module_versions (
    id                TEXT PRIMARY KEY,
    module_id         TEXT NOT NULL REFERENCES modules (id) ON DELETE CASCADE,
    version           TEXT NOT NULL,
    sha256            TEXT NOT NULL,
    size_bytes        BIGINT NOT NULL,
    kind              TEXT NOT NULL CHECK (kind IN ('core', 'component')),
    world             TEXT,
    exports           TEXT NOT NULL,
    memory_pages      BIGINT,
    max_memory_pages  BIGINT,
    created_at        BIGINT NOT NULL,
    UNIQUE (module_id, version)
);
CREATE INDEX module_versions_sha256 ON module_versions (sha256);

CREATE TABLE executions (
    id                 TEXT PRIMARY KEY,
    seq                BIGINT NOT NULL UNIQUE,
    module_id          TEXT NOT NULL REFERENCES modules (id) ON DELETE CASCADE,
    version            TEXT NOT NULL,
    executor_id        TEXT,
    function_name      TEXT NOT NULL,
    input              TEXT NOT NULL,
    output             TEXT,
    execution_time_us  BIGINT NOT NULL,
    memory_used_bytes  BIGINT NOT NULL,
    cache_hit          BOOLEAN NOT NULL,
    status             TEXT NOT NULL CHECK (status IN ('success', 'error', 'timeout')),
    error              TEXT,
    node               TEXT,
    created_at         BIGINT NOT NULL
);
-- seq: order of recording, assigned by the history writer; newest first = seq DESC.
CREATE INDEX executions_module_seq ON executions (module_id, seq DESC);
