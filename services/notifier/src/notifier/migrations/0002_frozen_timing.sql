-- The snooze and the breach repeat are part of the policy an obligation opened
-- under: editing the policy must not change them for obligations already open.
-- Rows from before this migration keep NULL and use the live policy.
ALTER TABLE obligations ADD COLUMN snooze interval;
ALTER TABLE obligations ADD COLUMN breach_repeat interval;
-- An ack quiets the level it was sent to (and those below it), not the levels an
-- escalation has yet to reach.
ALTER TABLE obligations ADD COLUMN snoozed_level integer;
