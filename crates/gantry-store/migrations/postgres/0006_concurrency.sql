-- Per-pipeline concurrency across servers (kept in step with ../sqlite/0006_concurrency.sql).
-- A row per running execution of a pipeline with `concurrency: {onConflict: queue}`, in one
-- of its `limit` slots: the first inserter of (pipeline, slot) wins, so servers sharing a
-- database never run more than `limit` at once. Rows of executions that have ended are
-- freed by the next claim.
CREATE TABLE concurrency_slots (
    pipeline     TEXT    NOT NULL,
    slot         INTEGER NOT NULL,
    execution_id TEXT    NOT NULL UNIQUE,
    claimed_at   BIGINT  NOT NULL,
    PRIMARY KEY (pipeline, slot)
);
