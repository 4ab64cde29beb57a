-- Runners (kept in step with ../postgres/0010_runners.sql): machines that lease
-- jobs from the server and run them. Secrets are stored as their SHA-256 only.

-- Registration tokens an admin hands out; a runner exchanges one for its own
-- credential. `uses_left` NULL means unlimited, `expires_at` NULL never.
CREATE TABLE runner_tokens (
    id         TEXT   PRIMARY KEY,
    hash       TEXT   NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    uses_left  BIGINT
);

-- One row per registered runner. `labels` is a JSON array of strings,
-- `state` is `enabled` or `disabled`.
CREATE TABLE runners (
    id              TEXT   PRIMARY KEY,
    name            TEXT   NOT NULL UNIQUE,
    labels          TEXT   NOT NULL,
    capacity        BIGINT NOT NULL,
    state           TEXT   NOT NULL,
    credential_hash TEXT   NOT NULL,
    version         TEXT   NOT NULL,
    created_at      BIGINT NOT NULL,
    last_contact_at BIGINT
);

-- Work handed to runners. A job is `queued`, `leased` to one runner under
-- one lease id until `lease_expires_at`, then `finished`, `lost` or
-- `canceled`. Every change is a conditional UPDATE on (state, lease_id): a
-- job is never leased twice at once. `payload` and `result` are opaque JSON.
CREATE TABLE runner_jobs (
    id               TEXT   PRIMARY KEY,
    payload          TEXT   NOT NULL,
    labels           TEXT   NOT NULL,
    state            TEXT   NOT NULL,
    runner_id        TEXT,
    lease_id         TEXT   UNIQUE,
    lease_expires_at BIGINT,
    attempt          BIGINT NOT NULL,
    result           TEXT,
    log_acked        BIGINT NOT NULL,
    queued_at        BIGINT NOT NULL,
    ended_at         BIGINT,
    reason           TEXT
);
CREATE INDEX runner_jobs_state ON runner_jobs (state);
