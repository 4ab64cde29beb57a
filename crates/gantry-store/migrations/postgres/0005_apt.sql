-- APT repositories (gantry-apt): packages stored once by SHA-256, the
-- repositories and snapshots that list them, and publications. The files
-- themselves live in DATA_DIR/apt.

CREATE TABLE apt_packages (
    sha256       TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    version      TEXT NOT NULL,
    architecture TEXT NOT NULL,
    size         BIGINT NOT NULL,
    -- The Packages paragraph without Filename (which depends on where it is published).
    control      TEXT NOT NULL,
    created_at   BIGINT NOT NULL
);

CREATE TABLE apt_repos (
    name         TEXT PRIMARY KEY,
    distribution TEXT NOT NULL,
    component    TEXT NOT NULL,
    comment      TEXT NOT NULL,
    created_at   BIGINT NOT NULL
);

CREATE TABLE apt_repo_packages (
    repo   TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    PRIMARY KEY (repo, sha256)
);

CREATE TABLE apt_snapshots (
    name        TEXT PRIMARY KEY,
    description TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE apt_snapshot_packages (
    snapshot TEXT NOT NULL,
    sha256   TEXT NOT NULL,
    PRIMARY KEY (snapshot, sha256)
);

CREATE TABLE apt_publications (
    prefix       TEXT NOT NULL,
    distribution TEXT NOT NULL,
    -- JSON: sources, architectures, signing, options; opaque to the store.
    spec         TEXT NOT NULL,
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (prefix, distribution)
);
