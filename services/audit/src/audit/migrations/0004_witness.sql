-- Witnessed checkpoints. Each checkpoint also gets the log key's C2SP note
-- signature over its checkpoint text (origin, size, root), so a witness and any
-- third party can check it; older checkpoints have none and are not submitted.
ALTER TABLE checkpoints ADD COLUMN note_signature text;

-- The witnesses' cosignatures (C2SP signature lines), as they answered: appended,
-- never changed. A checkpoint without one is not (yet) witnessed.
CREATE TABLE cosignatures (
    checkpoint_id bigint      NOT NULL REFERENCES checkpoints (id),
    witness       text        NOT NULL,
    line          text        NOT NULL,
    received_at   timestamptz NOT NULL,
    PRIMARY KEY (checkpoint_id, witness)
);

CREATE TRIGGER cosignatures_no_update_delete
    BEFORE UPDATE OR DELETE ON cosignatures
    FOR EACH ROW EXECUTE FUNCTION refuse_log_change();
CREATE TRIGGER cosignatures_no_truncate
    BEFORE TRUNCATE ON cosignatures
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_log_change();

DO $$
BEGIN
    EXECUTE format(
        'GRANT SELECT, INSERT ON cosignatures TO %I', current_schema() || '_appender'
    );
END
$$;
