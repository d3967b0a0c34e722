-- A function's own HTTP timeout (issue 14): NULL uses the node's default (500 ms); a value
-- may go up to its class's execution limit, like `wasmtime serve -Wtimeout`.
ALTER TABLE modules ADD COLUMN http_timeout_ms BIGINT;
