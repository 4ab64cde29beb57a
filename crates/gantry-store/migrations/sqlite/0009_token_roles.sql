-- A token's role (kept in step with ../postgres/0009_token_roles.sql): admin,
-- operator or viewer. Tokens made before roles existed could do everything,
-- so they stay administrators.
ALTER TABLE tokens ADD COLUMN role TEXT NOT NULL DEFAULT 'admin';
