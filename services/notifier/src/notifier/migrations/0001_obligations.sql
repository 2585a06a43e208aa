-- The notifier's own view of episodes: only what its rules and alerts need
-- (the child's initials, never the name).
CREATE TABLE episodes (
    episode_id             uuid        PRIMARY KEY,
    county_code            text        NOT NULL,
    child_initials         text        NOT NULL,
    caseworker             jsonb       NOT NULL,
    supervisor             jsonb       NOT NULL,
    facts                  jsonb       NOT NULL,
    times                  jsonb       NOT NULL,   -- clock name -> time
    status                 text        NOT NULL DEFAULT 'missing'
);

CREATE TABLE obligations (
    id              uuid        PRIMARY KEY,
    episode_id      uuid        NOT NULL REFERENCES episodes (episode_id),
    county_code     text        NOT NULL,
    jurisdiction    text        NOT NULL,
    kind            text        NOT NULL,
    title           text        NOT NULL,
    status          text        NOT NULL DEFAULT 'open',   -- open | satisfied | moot
    opened_at       timestamptz NOT NULL,
    clock_start     timestamptz NOT NULL,
    due_at          timestamptz NOT NULL,
    policy_digest   text        NOT NULL,   -- the policy file in force when it opened
    rule            jsonb       NOT NULL,   -- the rule as it applied (frozen)
    chain           jsonb       NOT NULL,   -- the escalation chain as it applied (frozen)
    waiting_reason  text,
    snoozed_until   timestamptz,
    breached_at     timestamptz,
    satisfied_at    timestamptz,
    satisfied_by    text,                   -- the notification event id
    reference_number text,
    closed_reason   text,
    closed_at       timestamptz,
    UNIQUE (episode_id, kind)
);
CREATE INDEX obligations_open ON obligations (status, due_at);
CREATE INDEX obligations_by_episode ON obligations (episode_id);

CREATE TABLE alerts (
    id            uuid        PRIMARY KEY,
    dedupe_key    text        NOT NULL UNIQUE,    -- obligation + step: never paged twice
    obligation_id uuid        NOT NULL REFERENCES obligations (id),
    episode_id    uuid        NOT NULL,
    step_key      text        NOT NULL,
    level         integer     NOT NULL,
    level_name    text        NOT NULL,
    reason        text        NOT NULL,           -- opened | escalated | reminded | breached
    scheduled_at  timestamptz NOT NULL,
    created_at    timestamptz NOT NULL,
    recipients    jsonb       NOT NULL
);
CREATE INDEX alerts_by_episode ON alerts (episode_id, created_at);

-- Every responder's acknowledgement is kept.
CREATE TABLE acks (
    id        bigserial   PRIMARY KEY,
    alert_id  uuid        NOT NULL REFERENCES alerts (id),
    acked_by  text        NOT NULL,
    acked_at  timestamptz NOT NULL,
    note      text
);
