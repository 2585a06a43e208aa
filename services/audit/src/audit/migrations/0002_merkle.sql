-- The Merkle tree over the log (RFC 6962) and the signed checkpoints of it.

-- The leaf hash of each entry: SHA-256(0x00 || RFC 8785 JSON of {seq, topic, event}).
-- Entries appended before this migration get theirs once, at start-up (see the
-- trigger below, which allows exactly that and nothing else).
ALTER TABLE log_entries ADD COLUMN leaf_hash bytea;

-- Hashes of the perfect subtrees of level >= 1 (level 0 is log_entries.leaf_hash):
-- node (level, idx) covers leaves [idx * 2^level, (idx + 1) * 2^level).
CREATE TABLE merkle_nodes (
    level smallint NOT NULL,
    idx   bigint   NOT NULL,
    hash  bytea    NOT NULL,
    PRIMARY KEY (level, idx)
);

CREATE TABLE checkpoints (
    id         bigserial   PRIMARY KEY,
    tree_size  bigint      NOT NULL,
    root_hash  bytea       NOT NULL,
    issued_at  timestamptz NOT NULL,
    key_id     text        NOT NULL,
    signature  bytea       NOT NULL
);
CREATE INDEX checkpoints_by_size ON checkpoints (tree_size, id);

CREATE OR REPLACE FUNCTION refuse_log_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- The one change ever allowed: giving a pre-0002 entry its leaf hash, once.
    -- (Nested: OLD.leaf_hash exists only on log_entries.)
    IF TG_OP = 'UPDATE' AND TG_TABLE_NAME = 'log_entries' THEN
        IF OLD.leaf_hash IS NULL AND NEW.leaf_hash IS NOT NULL
           AND (to_jsonb(NEW) - 'leaf_hash') = (to_jsonb(OLD) - 'leaf_hash') THEN
            RETURN NEW;
        END IF;
    END IF;
    RAISE EXCEPTION 'the audit log is append-only: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER merkle_nodes_no_update_delete
    BEFORE UPDATE OR DELETE ON merkle_nodes
    FOR EACH ROW EXECUTE FUNCTION refuse_log_change();
CREATE TRIGGER merkle_nodes_no_truncate
    BEFORE TRUNCATE ON merkle_nodes
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_log_change();
CREATE TRIGGER checkpoints_no_update_delete
    BEFORE UPDATE OR DELETE ON checkpoints
    FOR EACH ROW EXECUTE FUNCTION refuse_log_change();
CREATE TRIGGER checkpoints_no_truncate
    BEFORE TRUNCATE ON checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_log_change();

-- Beside the triggers, privileges: the service works as a role that may only
-- read and append to the trail (it keeps full use of its plumbing tables: the
-- outbox relay marks rows sent, the consumer records processed ids). The role
-- is per schema, so several audit deployments can share one cluster.
DO $$
DECLARE
    appender text := current_schema() || '_appender';
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = appender) THEN
        EXECUTE format('CREATE ROLE %I NOLOGIN', appender);
    END IF;
    EXECUTE format('GRANT %I TO CURRENT_USER', appender);
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', current_schema(), appender);
    EXECUTE format('GRANT SELECT, INSERT ON log_entries, merkle_nodes, checkpoints TO %I', appender);
    EXECUTE format('GRANT USAGE ON SEQUENCE checkpoints_id_seq, outbox_id_seq TO %I', appender);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON outbox, processed_events TO %I', appender);
END
$$;
