-- The lifecycle after the report, and dedupe of repeated requests.
ALTER TABLE episodes
    ADD COLUMN located_at  timestamptz,
    ADD COLUMN screened_at timestamptz,
    ADD COLUMN closed_at   timestamptz;

CREATE INDEX episodes_by_county_status ON episodes (county_code, status, created_at, id);

-- The same fact sent twice (same type and data) is recorded once.
ALTER TABLE timeline ADD COLUMN digest text;
CREATE UNIQUE INDEX timeline_same_fact_once ON timeline (episode_id, type, digest)
    WHERE digest IS NOT NULL;

-- Idempotency-Key header: a retried request gets the first answer's episode.
CREATE TABLE idempotency_keys (
    key            text        PRIMARY KEY,
    request_digest text        NOT NULL,
    episode_id     uuid        NOT NULL REFERENCES episodes (id),
    created_at     timestamptz NOT NULL
);
