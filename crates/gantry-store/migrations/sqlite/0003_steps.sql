-- Server-side secrets (issue 3). Values are sealed by gantry-secrets before
-- they get here: `sealed` is hex of nonce || ciphertext || tag; the store
-- never sees a value in the clear.
CREATE TABLE secrets (
    name       TEXT PRIMARY KEY,
    sealed     TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- What `bake` stages built: the key is a hash over the build context, the
-- Containerfile, the build arguments and the target image, so that a bake
-- of the same inputs is skipped (Spinnaker's rule) and returns these.
CREATE TABLE bakes (
    key        TEXT PRIMARY KEY,
    image      TEXT NOT NULL,
    digest     TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
