-- The followup service's view of episodes: what prompts need (initials, never names).
CREATE TABLE episodes (
    episode_id     uuid  PRIMARY KEY,
    county_code    text  NOT NULL,
    child_initials text  NOT NULL,
    caseworker     jsonb NOT NULL,
    supervisor     jsonb NOT NULL,
    completeness   jsonb NOT NULL,
    status         text  NOT NULL DEFAULT 'missing'
);

-- A series: one prompt rule running for one episode (a one-off is a series of one).
CREATE TABLE series (
    id            uuid        PRIMARY KEY,
    episode_id    uuid        NOT NULL REFERENCES episodes (episode_id),
    rule_id       text        NOT NULL,
    starts_on     text        NOT NULL,
    rule          jsonb       NOT NULL,     -- the rule as it applied (frozen)
    policy_digest text        NOT NULL,
    trigger_id    text        NOT NULL,     -- the event that started it
    started_at    timestamptz NOT NULL,
    status        text        NOT NULL DEFAULT 'active',   -- active | ended
    ended_at      timestamptz,
    ended_reason  text,
    UNIQUE (episode_id, rule_id, trigger_id)
);
CREATE INDEX series_active ON series (episode_id) WHERE status = 'active';

CREATE TABLE prompts (
    id           uuid        PRIMARY KEY,
    series_id    uuid        NOT NULL REFERENCES series (id),
    episode_id   uuid        NOT NULL,
    rule_id      text        NOT NULL,
    title        text        NOT NULL,
    assignee     text        NOT NULL,
    occurrence   integer     NOT NULL,
    issued_at    timestamptz NOT NULL,
    due_at       timestamptz NOT NULL,
    status       text        NOT NULL DEFAULT 'open',  -- open | completed | ended
    overdue_at   timestamptz,
    completed_at timestamptz,
    completed_by text,
    note         text,
    ended_reason text,
    UNIQUE (series_id, occurrence)
);
CREATE INDEX prompts_by_episode ON prompts (episode_id, issued_at);
