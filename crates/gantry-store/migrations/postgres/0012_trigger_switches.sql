-- Triggers switched off by a person (`gantry trigger disable`), kept in step with
-- ../sqlite/0012_trigger_switches.sql. A pipeline's file
-- says what its triggers are; whether one fires is operational state, so it lives beside the
-- spec and survives a re-apply: a JSON array of the 1-based positions of its disabled
-- triggers. `switches` counts changes, so that the pipelines' fingerprint moves with them.
ALTER TABLE pipelines ADD COLUMN disabled_triggers TEXT NOT NULL DEFAULT '[]';
ALTER TABLE pipelines ADD COLUMN switches BIGINT NOT NULL DEFAULT 0;
