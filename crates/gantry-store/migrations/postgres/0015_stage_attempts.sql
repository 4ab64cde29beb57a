-- Every attempt of a stage (a retry, a restart by a person), kept when the next one begins, so an
-- execution's page shows each attempt with its status, times and error, not only the last
-- (kept in step with the other database's 0015_stage_attempts.sql). Written with the stage row, in
-- the same statement sequence (gantry-store `stages.rs`); the stage row stays the current attempt.
CREATE TABLE stage_attempts (
    execution_id TEXT   NOT NULL,
    stage_id     TEXT   NOT NULL,
    attempt      BIGINT NOT NULL,
    status       TEXT   NOT NULL,
    started_at   BIGINT,
    ended_at     BIGINT,
    error        TEXT,
    PRIMARY KEY (execution_id, stage_id, attempt),
    FOREIGN KEY (execution_id, stage_id) REFERENCES stages (execution_id, stage_id) ON DELETE CASCADE
);
