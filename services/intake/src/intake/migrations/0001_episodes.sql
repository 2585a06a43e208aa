CREATE TABLE episodes (
    id                uuid        PRIMARY KEY,
    county_code       text        NOT NULL,
    case_id           text        NOT NULL,
    status            text        NOT NULL,
    report            jsonb       NOT NULL,
    report_digest     text        NOT NULL,
    completeness      jsonb       NOT NULL,
    agency_learned_at timestamptz NOT NULL,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL
);

-- One open episode per county case: concurrent identical reports meet here.
CREATE UNIQUE INDEX episodes_one_open_per_case
    ON episodes (county_code, case_id) WHERE status <> 'closed';

CREATE TABLE timeline (
    seq         bigserial   PRIMARY KEY,
    episode_id  uuid        NOT NULL REFERENCES episodes (id),
    event_id    text        NOT NULL UNIQUE,
    type        text        NOT NULL,
    occurred_at timestamptz NOT NULL,
    data        jsonb       NOT NULL
);
CREATE INDEX timeline_by_episode ON timeline (episode_id, seq);
