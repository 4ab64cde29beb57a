-- The delivery log holds every trigger kind (kept in step with
-- ../postgres/0018_trigger_deliveries.sql): besides webhook deliveries, pushes to hosted
-- repositories and polled ones (`git`), cron firings (`cron`) and landed packages
-- (`artifact`), each with what became of it for one pipeline (started, ignored and why,
-- failed). Still one bounded log: each insert drops what is past the newest
-- `WEBHOOK_DELIVERIES_KEPT` rows, whatever their kind.
ALTER TABLE webhook_deliveries ADD COLUMN kind TEXT NOT NULL DEFAULT 'webhook';
ALTER TABLE webhook_deliveries ADD COLUMN pipeline TEXT;
