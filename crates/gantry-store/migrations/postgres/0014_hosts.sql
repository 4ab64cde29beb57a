-- Fleet hosts from `hosts:` (kept in step with ../sqlite/0014_hosts.sql). `spec` is the
-- host as the file gives it (JSON: address, port, user, key secret, pinned host key, labels);
-- `drained_at` is set by `gantry host drain` and kept across applies, so a drained host stays
-- unschedulable until `gantry host undrain`.
CREATE TABLE hosts (
    name        TEXT    NOT NULL PRIMARY KEY,
    spec        TEXT    NOT NULL,
    drained_at  BIGINT,
    version     BIGINT  NOT NULL,
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL
);
