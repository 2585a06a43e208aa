-- A published row is deleted in the transaction that saw the broker take it, instead
-- of being marked: the mark rewrote the whole row (its payload too, as much WAL as
-- the insert) and the table grew for ever. The broker's topic is the record of what
-- was published; every consumer dedupes on the event id.
DELETE FROM outbox WHERE published_at IS NOT NULL;
DROP INDEX outbox_unpublished;
ALTER TABLE outbox DROP COLUMN published_at;
