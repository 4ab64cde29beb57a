-- Packages that landed in an APT repository, kept until a server fires the
-- `artifact` triggers they start (kept in step with ../postgres/0007_apt_landed.sql).
-- Whichever process adds packages writes the rows: a server, or
-- `gantry apt --local` working on the data directory. A server claims a row
-- by setting fired_at, so two servers on one database fire a landing once.
CREATE TABLE apt_landed (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    repo         TEXT   NOT NULL,
    name         TEXT   NOT NULL,
    version      TEXT   NOT NULL,
    architecture TEXT   NOT NULL,
    landed_at    BIGINT NOT NULL,
    fired_at     BIGINT
);
CREATE INDEX apt_landed_unfired ON apt_landed (id) WHERE fired_at IS NULL;
