-- The node stream (issue 13).
--
-- Every change to what nodes serve (modules, versions, routes) appends a row here in the
-- same transaction as the change: its `revision` is the control plane's one global,
-- increasing revision. Old rows are trimmed; a node resuming from a revision older than
-- the oldest row left gets a full snapshot.
CREATE TABLE changes (
    revision       INTEGER PRIMARY KEY AUTOINCREMENT,
    resource_type  TEXT NOT NULL,
    resource_id    TEXT NOT NULL,
    created_at     BIGINT NOT NULL
);

-- The node registry: one row per node name (its certificate's name), kept up to date
-- from the node's reports. `removed_at` set: the node is refused when it connects.
CREATE TABLE nodes (
    name            TEXT PRIMARY KEY,
    pop             TEXT,
    agent_version   TEXT NOT NULL DEFAULT '',
    address         TEXT,
    revision        BIGINT NOT NULL DEFAULT 0,
    cpu_percent     DOUBLE PRECISION NOT NULL DEFAULT 0,
    memory_bytes    BIGINT NOT NULL DEFAULT 0,
    connected       BOOLEAN NOT NULL DEFAULT FALSE,
    -- How often it reports (ms): its status comes from the age of its last report.
    report_every_ms BIGINT NOT NULL DEFAULT 10000,
    -- Resources it could not apply, as JSON `[{"resource": …, "reason": …}]`.
    rejected        TEXT NOT NULL DEFAULT '[]',
    first_seen_at   BIGINT NOT NULL,
    last_seen_at    BIGINT NOT NULL,
    removed_at      BIGINT
);

-- HTTP traffic nodes report, per function version and report window.
CREATE TABLE node_traffic (
    node          TEXT NOT NULL,
    module_id     TEXT NOT NULL,
    version       TEXT NOT NULL,
    window_end    BIGINT NOT NULL,
    window_ms     BIGINT NOT NULL,
    requests      BIGINT NOT NULL,
    trap          BIGINT NOT NULL,
    timeout       BIGINT NOT NULL,
    server_error  BIGINT NOT NULL,
    overload      BIGINT NOT NULL,
    p50_ms        DOUBLE PRECISION NOT NULL,
    p99_ms        DOUBLE PRECISION NOT NULL
);
CREATE INDEX node_traffic_module ON node_traffic (module_id, window_end);
CREATE INDEX node_traffic_window ON node_traffic (window_end);
