-- The deploy running on each cluster (kept in step with ../sqlite/0011_cluster_claims.sql).
-- A deploy stage inserts its row before it reads the cluster and deletes it when it ends; the
-- first inserter wins, so two executions, on one server or on servers sharing a database,
-- never roll out on one cluster at once. Rows of executions that have ended are freed by the
-- next claim, so a deploy interrupted by a crash holds the cluster only until it ends.
CREATE TABLE cluster_claims (
    cluster      TEXT    NOT NULL PRIMARY KEY,
    execution_id TEXT    NOT NULL,
    stage_id     TEXT    NOT NULL,
    claimed_at   BIGINT  NOT NULL
);
