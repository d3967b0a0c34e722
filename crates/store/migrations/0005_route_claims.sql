-- Route ownership (issue 12): a named host, or a path prefix of the default host (routes
-- without a host), belongs to one project, or is reserved for admins (project_id NULL).
-- A route is created only inside a claim of its module's project; claims never overlap,
-- so no project's route can answer another project's traffic.
CREATE TABLE route_claims (
    id           TEXT PRIMARY KEY,
    -- '' is the default host; otherwise `example.com` or `*.example.com`, in lower case.
    host         TEXT NOT NULL,
    -- Whole path segments without a trailing `/`; '' is every path (always so on a named host).
    path_prefix  TEXT NOT NULL,
    project_id   TEXT REFERENCES projects (id) ON DELETE CASCADE,
    created_at   BIGINT NOT NULL,
    UNIQUE (host, path_prefix)
);
