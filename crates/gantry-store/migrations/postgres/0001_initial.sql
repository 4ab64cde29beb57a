-- Gantry's schema on PostgreSQL. Kept in step with ../sqlite/0001_initial.sql:
-- same tables, columns and index names; only the types differ.
-- Timestamps are milliseconds since the epoch; JSON columns hold text.

CREATE TABLE pipelines (
    name        TEXT    NOT NULL PRIMARY KEY,
    application TEXT,
    spec        TEXT    NOT NULL,
    version     BIGINT  NOT NULL,
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL
);

CREATE TABLE executions (
    id               TEXT   NOT NULL PRIMARY KEY,
    pipeline         TEXT   NOT NULL,
    spec             TEXT   NOT NULL,
    status           TEXT   NOT NULL,
    parameters       TEXT   NOT NULL,
    trigger          TEXT   NOT NULL,
    -- A copy of trigger.type, so that listing by trigger can use an index.
    trigger_type     TEXT,
    parent_execution TEXT,
    parent_stage     TEXT,
    parent_attempt   BIGINT,
    created_at       BIGINT NOT NULL,
    started_at       BIGINT,
    ended_at         BIGINT,
    error            TEXT,
    canceled_by      TEXT
);
CREATE INDEX executions_created ON executions (created_at, id);
CREATE INDEX executions_status ON executions (status, created_at, id);
CREATE INDEX executions_pipeline ON executions (pipeline, created_at, id);
CREATE INDEX executions_trigger_type ON executions (trigger_type, created_at, id);
-- NULLs are distinct, so only child executions take part.
CREATE UNIQUE INDEX executions_parent ON executions (parent_execution, parent_stage, parent_attempt);

CREATE TABLE stages (
    execution_id TEXT   NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    stage_id     TEXT   NOT NULL,
    -- Order of the stage in the pipeline file.
    position     BIGINT NOT NULL,
    status       TEXT   NOT NULL,
    attempt      BIGINT NOT NULL,
    started_at   BIGINT,
    ended_at     BIGINT,
    outputs      TEXT   NOT NULL,
    error        TEXT,
    state        TEXT   NOT NULL,
    PRIMARY KEY (execution_id, stage_id)
);

CREATE TABLE steps (
    execution_id  TEXT   NOT NULL,
    stage_id      TEXT   NOT NULL,
    step          BIGINT NOT NULL,
    status        TEXT   NOT NULL,
    started_at    BIGINT,
    ended_at      BIGINT,
    exit_code     BIGINT,
    pgid          BIGINT,
    proc_start    BIGINT,
    interruptions BIGINT NOT NULL,
    error         TEXT,
    PRIMARY KEY (execution_id, stage_id, step),
    FOREIGN KEY (execution_id, stage_id) REFERENCES stages (execution_id, stage_id) ON DELETE CASCADE
);

-- No foreign key to executions: a step may print millions of lines, and the
-- check would cost a lookup per line. An identity column never reuses a
-- value, so seq increases forever.
CREATE TABLE logs (
    seq          BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    execution_id TEXT    NOT NULL,
    stage_id     TEXT    NOT NULL,
    step         BIGINT  NOT NULL,
    ts           BIGINT  NOT NULL,
    stream       TEXT    NOT NULL,
    line         TEXT    NOT NULL
);
CREATE INDEX logs_execution ON logs (execution_id, seq);
CREATE INDEX logs_execution_stage ON logs (execution_id, stage_id, seq);

CREATE TABLE tokens (
    id           TEXT   NOT NULL PRIMARY KEY,
    name         TEXT   NOT NULL,
    hash         TEXT   NOT NULL,
    created_at   BIGINT NOT NULL,
    revoked_at   BIGINT,
    last_used_at BIGINT
);
CREATE UNIQUE INDEX tokens_hash ON tokens (hash);
-- A name is reusable once its token is revoked.
CREATE UNIQUE INDEX tokens_active_name ON tokens (name) WHERE revoked_at IS NULL;
