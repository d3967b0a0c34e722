-- HTTP function settings (issue 3): instance pool size and reuse, configuration values
-- for `env_get`, the hosts `http_fetch` may reach; and the per-module key-value store of
-- `kv_get` / `kv_put` (expires_at in ms since the epoch, NULL = never).
ALTER TABLE modules ADD COLUMN max_instances BIGINT NOT NULL DEFAULT 10;
ALTER TABLE modules ADD COLUMN reuse_instances BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE modules ADD COLUMN env TEXT NOT NULL DEFAULT '{}';
ALTER TABLE modules ADD COLUMN allow_hosts TEXT NOT NULL DEFAULT '[]';

CREATE TABLE kv (
    module_id   TEXT NOT NULL REFERENCES modules (id) ON DELETE CASCADE,
    key         TEXT NOT NULL,
    value       BLOB NOT NULL,
    expires_at  BIGINT,
    PRIMARY KEY (module_id, key)
);
