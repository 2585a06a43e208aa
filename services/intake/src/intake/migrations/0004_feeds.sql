-- When each county's system was last heard from (any accepted event or heartbeat,
-- over HTTP or Kafka), so that a feed that goes quiet is noticed. Written by every
-- replica at an interval, never moved back.
CREATE TABLE feeds (
    county_code   text        PRIMARY KEY,
    last_event_at timestamptz NOT NULL,
    via           text        NOT NULL   -- http | kafka | watch (watching began)
);
