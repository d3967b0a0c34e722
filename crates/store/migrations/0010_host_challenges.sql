-- Proofs of control of a host (issue 22): a project asks for a challenge, publishes its
-- token in a DNS TXT record, and the host becomes the project's claim once the record is
-- seen. One open challenge per host and project; it is removed when it succeeds.
CREATE TABLE host_challenges (
    id          TEXT PRIMARY KEY,
    -- Canonical host name (no wildcard, never an address).
    host        TEXT NOT NULL,
    project_id  TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    -- Random; the TXT record's value is `edgefn-verify=<token>`.
    token       TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    UNIQUE (host, project_id)
);
