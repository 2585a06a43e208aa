-- Alert deliveries: one row per (alert, channel, address), claimed with SKIP LOCKED,
-- retried with backoff, every attempt logged.
CREATE TABLE deliveries (
    id              bigserial   PRIMARY KEY,
    alert_id        uuid        NOT NULL,
    episode_id      uuid,
    channel         text        NOT NULL,      -- webhook | email
    address         text        NOT NULL,
    payload         jsonb       NOT NULL,
    status          text        NOT NULL DEFAULT 'pending',  -- pending | sent | failed
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    scheduled_at    timestamptz NOT NULL,
    sent_at         timestamptz,
    last_error      text,
    UNIQUE (alert_id, channel, address)
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';

CREATE TABLE delivery_attempts (
    id           bigserial   PRIMARY KEY,
    delivery_id  bigint      NOT NULL REFERENCES deliveries (id),
    attempted_at timestamptz NOT NULL,
    ok           boolean     NOT NULL,
    detail       text
);
