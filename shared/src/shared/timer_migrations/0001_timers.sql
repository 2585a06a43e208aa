-- Durable timers: one row per scheduled step; a row is claimed with FOR UPDATE
-- SKIP LOCKED and fired in the transaction that records its effects, so each step
-- fires once however many replicas run, and none is lost across restarts.
CREATE TABLE timers (
    id         bigserial   PRIMARY KEY,
    subject_id uuid        NOT NULL,          -- what the step belongs to (obligation, prompt)
    step_key   text        NOT NULL,          -- e.g. remind:0, escalate:1, breach:3
    kind       text        NOT NULL,
    fire_at    timestamptz NOT NULL,
    fired_at   timestamptz,
    payload    jsonb       NOT NULL DEFAULT '{}'::jsonb,
    UNIQUE (subject_id, step_key)
);
CREATE INDEX timers_due ON timers (fire_at) WHERE fired_at IS NULL;
