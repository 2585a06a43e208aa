-- An obligation keeps one pending timer: its next step. Firing a step moves that row
-- on to the following one (the escalation plan is recomputed from the timing frozen
-- on the obligation), so the table holds one row per obligation, not one per future
-- step. Rows scheduled before: keep each obligation's earliest pending step.
DELETE FROM timers t
WHERE t.fired_at IS NULL
  AND EXISTS (
    SELECT 1 FROM timers e
    WHERE e.subject_id = t.subject_id AND e.fired_at IS NULL
      AND (e.fire_at, e.id) < (t.fire_at, t.id)
  );
-- The reminders are frozen with the rest of the timing (NULL on older rows: the
-- policy's defaults at firing time, as before).
ALTER TABLE obligations ADD COLUMN reminders interval[];
