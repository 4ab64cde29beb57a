-- Package files in packs (kept in step with ../sqlite/0008_apt_packs.sql):
-- an add appends its new packages to one file, DATA_DIR/apt/packs/PACK.pack,
-- instead of writing a file per package. A package's bytes are at
-- pack_offset in that pack, size bytes long. Packages recorded before packs
-- (pack IS NULL) keep their file in the content pool, apt/pool/.
ALTER TABLE apt_packages ADD COLUMN pack TEXT;
ALTER TABLE apt_packages ADD COLUMN pack_offset BIGINT;
