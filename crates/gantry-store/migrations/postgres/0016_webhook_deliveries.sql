-- The recent webhook deliveries, accepted or refused, with why (kept in step with
-- ../sqlite/0016_webhook_deliveries.sql), as GitHub's and GitLab's delivery logs show them. A
-- bounded log: each insert drops what is past the newest `WEBHOOK_DELIVERIES_KEPT` rows, so a
-- flood of refused deliveries cannot grow it. No body and no secret is kept.
CREATE TABLE webhook_deliveries (
    id          BIGSERIAL PRIMARY KEY,
    received_at BIGINT  NOT NULL,
    provider    TEXT    NOT NULL,
    source      TEXT,
    outcome     TEXT    NOT NULL,
    reason      TEXT,
    started     TEXT    NOT NULL
);
