-- Modules are looked up by id or name (`WHERE id = ? OR name = ?`) on every upload, route
-- and call that names one; without an index on the name alone (the unique one leads with
-- the owner) that lookup read every module, so it grew with the number deployed.
CREATE INDEX modules_name ON modules (name);
