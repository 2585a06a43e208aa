-- What the notifier and the followup service report about each episode, kept so
-- that GET /v1/episodes/{id} shows its obligations and prompts. A projection of
-- mfc.obligations.v1 and mfc.prompts.v1: those services own the state.
CREATE TABLE episode_obligations (
    obligation_id  uuid        PRIMARY KEY,
    episode_id     uuid        NOT NULL,
    kind           text        NOT NULL,
    title          text        NOT NULL,
    status         text        NOT NULL,   -- open | satisfied | moot
    clock_start    timestamptz NOT NULL,
    due_at         timestamptz NOT NULL,
    breached       boolean     NOT NULL DEFAULT false,
    waiting_reason text,
    satisfied_at   timestamptz,
    closed_reason  text,
    updated_at     timestamptz NOT NULL
);
CREATE INDEX episode_obligations_by_episode ON episode_obligations (episode_id, due_at);

CREATE TABLE episode_prompts (
    prompt_id    uuid        PRIMARY KEY,
    episode_id   uuid        NOT NULL,
    kind         text        NOT NULL,
    title        text        NOT NULL,
    occurrence   integer     NOT NULL,
    status       text        NOT NULL,   -- open | completed | ended
    overdue      boolean     NOT NULL DEFAULT false,
    issued_at    timestamptz NOT NULL,
    due_at       timestamptz NOT NULL,
    completed_at timestamptz,
    updated_at   timestamptz NOT NULL
);
CREATE INDEX episode_prompts_by_episode ON episode_prompts (episode_id, issued_at);
