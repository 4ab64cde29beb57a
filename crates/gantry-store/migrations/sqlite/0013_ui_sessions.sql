-- Browser sessions of the web UI (kept in step with ../postgres/0013_ui_sessions.sql). The
-- cookie holds a random session id; only its SHA-256 is stored, with the token it signed in
-- with (so revoking the token ends the session) and the CSRF token its pages send back.
CREATE TABLE ui_sessions (
    hash        TEXT    NOT NULL PRIMARY KEY,
    token_id    TEXT    NOT NULL,
    csrf        TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    expires_at  BIGINT  NOT NULL
);
CREATE INDEX ui_sessions_expires ON ui_sessions (expires_at);
-- The executions page filters by pipeline and status at once, newest first.
CREATE INDEX executions_pipeline_status ON executions (pipeline, status, created_at, id);
