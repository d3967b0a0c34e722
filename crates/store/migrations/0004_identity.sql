-- Identity and permissions (issue 4): disabled users and users known by an external
-- subject (JWT `sub`), tokens that expire or are revoked, projects with members, the
-- project of each module, and the hash-chained audit log.
ALTER TABLE users ADD COLUMN disabled BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE users ADD COLUMN external_id TEXT;
CREATE UNIQUE INDEX users_external_id ON users (external_id);

ALTER TABLE api_tokens ADD COLUMN expires_at BIGINT;
ALTER TABLE api_tokens ADD COLUMN revoked_at BIGINT;
CREATE INDEX api_tokens_user ON api_tokens (user_id);

CREATE TABLE projects (
    id           TEXT PRIMARY KEY,
    -- Personal projects are named `~<user name>`; shared names cannot start with `~`.
    name         TEXT NOT NULL UNIQUE,
    -- The user whose personal project this is; NULL for shared projects.
    personal_of  TEXT UNIQUE REFERENCES users (id) ON DELETE CASCADE,
    created_at   BIGINT NOT NULL
);

CREATE TABLE project_members (
    project_id  TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role        TEXT NOT NULL CHECK (role IN ('owner', 'developer', 'viewer')),
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (project_id, user_id)
);
CREATE INDEX project_members_user ON project_members (user_id);

-- Every existing user gets a personal project it owns; existing modules move into their
-- owner's.
INSERT INTO projects (id, name, personal_of, created_at)
    SELECT lower(hex(randomblob(16))), '~' || name, id, created_at FROM users;
INSERT INTO project_members (project_id, user_id, role, created_at)
    SELECT id, personal_of, 'owner', created_at FROM projects;

ALTER TABLE modules ADD COLUMN project_id TEXT REFERENCES projects (id);
UPDATE modules SET project_id = (SELECT p.id FROM projects p WHERE p.personal_of = modules.owner_id);
CREATE INDEX modules_project ON modules (project_id);

-- seq orders the chain; hash = SHA-256 over prev_hash and the entry's fields (see
-- edgefn-store's audit module). Nothing in edgefn updates or deletes a row.
CREATE TABLE audit_log (
    seq            BIGINT PRIMARY KEY,
    id             TEXT NOT NULL UNIQUE,
    actor_id       TEXT,
    actor_name     TEXT NOT NULL,
    resource_type  TEXT NOT NULL,
    resource_id    TEXT NOT NULL,
    operation      TEXT NOT NULL,
    old_value      TEXT,
    new_value      TEXT,
    created_at     BIGINT NOT NULL,
    prev_hash      TEXT NOT NULL,
    hash           TEXT NOT NULL
);
CREATE INDEX audit_log_resource ON audit_log (resource_type, resource_id);

-- The database itself refuses edits and deletions of audit entries; someone with the
-- file can drop these triggers, which `edgefn audit verify` then catches by the chain.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
