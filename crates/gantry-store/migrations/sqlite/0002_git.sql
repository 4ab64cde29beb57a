-- Source and triggers (kept in step with ../postgres/0002_git.sql).
-- A claim is taken once: the first inserter of a key wins. Keys say what they
-- guard: `commit:PIPELINE:SHA` (one commit triggers a pipeline once, whichever
-- of push, webhook and poll reports it first), `delivery:github:ID` (a
-- redelivered webhook is ignored), `poll:PIPELINE:REF` (last commit seen).
CREATE TABLE trigger_claims (
    key        TEXT   NOT NULL PRIMARY KEY,
    value      TEXT   NOT NULL,
    created_at BIGINT NOT NULL
);
