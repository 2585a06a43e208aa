-- The county of each episode, as the first entry that names both told it. Alert and
-- prompt events name the episode but not its county; an auditor scoped to a county
-- sees them through this table. Entries stay as they were appended (immutable).
CREATE TABLE episode_counties (
    episode_id  uuid PRIMARY KEY,
    county_code text NOT NULL
);
CREATE INDEX episode_counties_by_county ON episode_counties (county_code);

INSERT INTO episode_counties (episode_id, county_code)
SELECT DISTINCT ON (episode_id) episode_id, county_code
FROM log_entries
WHERE episode_id IS NOT NULL AND county_code IS NOT NULL
ORDER BY episode_id, seq;

DO $$
BEGIN
    EXECUTE format(
        'GRANT SELECT, INSERT ON episode_counties TO %I', current_schema() || '_appender'
    );
END
$$;
