-- The compliance trail. Append-only: the database itself refuses changes.
CREATE TABLE log_entries (
    seq             bigint      PRIMARY KEY,  -- gapless, in commit order (see adapters)
    event_id        text        NOT NULL UNIQUE,
    topic           text        NOT NULL,
    kafka_partition integer,
    kafka_offset    bigint,
    type            text        NOT NULL,
    source          text        NOT NULL,
    subject         text,
    episode_id      uuid,
    county_code     text,
    event_time      timestamptz NOT NULL,
    appended_at     timestamptz NOT NULL DEFAULT now(),
    event           jsonb       NOT NULL
);
CREATE INDEX log_entries_by_episode ON log_entries (episode_id, seq);
CREATE INDEX log_entries_by_county ON log_entries (county_code, seq);
CREATE INDEX log_entries_by_type ON log_entries (type, seq);

CREATE FUNCTION refuse_log_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER log_entries_no_update_delete
    BEFORE UPDATE OR DELETE ON log_entries
    FOR EACH ROW EXECUTE FUNCTION refuse_log_change();
CREATE TRIGGER log_entries_no_truncate
    BEFORE TRUNCATE ON log_entries
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_log_change();
