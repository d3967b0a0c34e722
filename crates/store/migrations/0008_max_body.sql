-- A function's own limit on HTTP body bytes (issue 14): NULL uses the default (100 MiB),
-- capped by its class's limit on every request.
ALTER TABLE modules ADD COLUMN max_body_bytes BIGINT;
