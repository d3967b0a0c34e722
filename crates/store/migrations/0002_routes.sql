-- HTTP routes (DESIGN §5): host + path (exact, prefix, regex) + methods + priority +
-- optional POP selector, pointing at a module (newest version, or a pinned one).
CREATE TABLE routes (
    id            TEXT PRIMARY KEY,
    seq           BIGINT NOT NULL UNIQUE,
    host          TEXT,
    path          TEXT NOT NULL,
    match_kind    TEXT NOT NULL CHECK (match_kind IN ('exact', 'prefix', 'regex')),
    methods       TEXT NOT NULL DEFAULT '[]',
    priority      BIGINT NOT NULL DEFAULT 0,
    pop_selector  TEXT,
    module_id     TEXT NOT NULL REFERENCES modules (id) ON DELETE CASCADE,
    version       TEXT,
    created_at    BIGINT NOT NULL
);
CREATE INDEX routes_module ON routes (module_id);
