-- The notifier's on-call overrides (covers), as mfc.schedules.v1 tells them: an
-- overdue task's escalation to a schedule pages whoever covers it, as the notifier's
-- steps do. A projection: the notifier owns them.
CREATE TABLE oncall_covers (
    id         uuid        PRIMARY KEY,
    schedule   text        NOT NULL,
    contact    text        NOT NULL,
    starts_at  timestamptz NOT NULL,
    ends_at    timestamptz NOT NULL,
    removed_at timestamptz
);
CREATE INDEX oncall_covers_in_force ON oncall_covers (ends_at) WHERE removed_at IS NULL;
