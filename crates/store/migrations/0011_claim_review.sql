-- Claims the host and path rules of issue 22 would refuse (an older install's user claim of
-- `127.0.0.1`, a host in another spelling, a path with `..`) stop serving until an admin keeps
-- or removes them; nothing is deleted.
-- Why the claim stopped serving; NULL while it serves.
ALTER TABLE route_claims ADD COLUMN held TEXT;
-- When an admin kept it as it is (or made it: a grant, a proven host), in ms; NULL when no
-- admin decided on it, so the rules apply.
ALTER TABLE route_claims ADD COLUMN kept_at BIGINT;
-- The claims nodes must not serve, read at every revision: few, found without a scan.
CREATE INDEX route_claims_held ON route_claims (id) WHERE held IS NOT NULL;
