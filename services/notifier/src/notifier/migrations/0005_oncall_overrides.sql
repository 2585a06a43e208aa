-- On-call overrides added while the system runs (a sick day, a shift swap), on top
-- of the policy file's rotation. Read by every replica when it pages, so a change is
-- in force at once everywhere. A removed override stays, marked, for the record.
CREATE TABLE oncall_overrides (
    id             uuid        PRIMARY KEY,
    schedule       text        NOT NULL,
    contact        text        NOT NULL,
    starts_at      timestamptz NOT NULL,
    ends_at        timestamptz NOT NULL CHECK (ends_at > starts_at),
    reason         text        NOT NULL,
    created_by     text        NOT NULL,
    created_at     timestamptz NOT NULL,
    removed_at     timestamptz,
    removed_by     text,
    removal_reason text
);
CREATE INDEX oncall_overrides_in_force ON oncall_overrides (ends_at)
    WHERE removed_at IS NULL;
