-- The silence announced on mfc.feeds.v1 and not yet over (its last_event_at), so
-- that a silence pages once whichever replica sees it first, and a restart does
-- not page again.
ALTER TABLE feeds ADD COLUMN silent_since timestamptz;
