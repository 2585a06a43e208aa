-- What the console's inbox asks of every obligation (its newest alert, the highest
-- level alerted, whether the newest was acked) and the newest alerts of all
-- episodes, without reading every alert.
CREATE INDEX alerts_by_obligation ON alerts (obligation_id, created_at);
CREATE INDEX alerts_by_time ON alerts (created_at);
CREATE INDEX acks_by_alert ON acks (alert_id);
