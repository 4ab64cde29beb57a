-- The runners whose container engine holds what a stage's docker builder steps built (kept in step
-- with the other database's 0017_stage_builders.sql): a build's `images` are pushed from there, and a
-- server restarted between the build step and the push reads them back (gantry-engine
-- `executor/remote`). Written when such a step is leased, removed when its runner is lost.
CREATE TABLE stage_builders (
    execution_id TEXT NOT NULL,
    stage_id     TEXT NOT NULL,
    runner       TEXT NOT NULL,
    PRIMARY KEY (execution_id, stage_id, runner),
    FOREIGN KEY (execution_id, stage_id) REFERENCES stages (execution_id, stage_id) ON DELETE CASCADE
);
