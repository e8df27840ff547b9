-- Progress a stalled partition can be told by: the newest event time stored (freshness), and the
-- last error a batch of the partition failed with (cleared by the next batch that commits).
ALTER TABLE featurestore.consumer_offsets
  ADD COLUMN IF NOT EXISTS newest_event_ms bigint,
  ADD COLUMN IF NOT EXISTS last_error text,
  ADD COLUMN IF NOT EXISTS last_error_at timestamptz;

-- Change detection for readers of the registry: every insert or update of a row takes a new value
-- from a sequence. A reader compares a digest of all (group, version) pairs, so a change is seen
-- whatever order the transactions that made it commit in (a max() of versions or of updated_at
-- would miss one that took its value first and committed last).
CREATE SEQUENCE IF NOT EXISTS featurestore.feature_groups_version;
ALTER TABLE featurestore.feature_groups
  ADD COLUMN IF NOT EXISTS version bigint NOT NULL DEFAULT nextval('featurestore.feature_groups_version');
CREATE OR REPLACE FUNCTION featurestore.bump_feature_group_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.version := nextval('featurestore.feature_groups_version');
  RETURN NEW;
END
$$;
DROP TRIGGER IF EXISTS feature_groups_version ON featurestore.feature_groups;
CREATE TRIGGER feature_groups_version BEFORE INSERT OR UPDATE ON featurestore.feature_groups
  FOR EACH ROW EXECUTE FUNCTION featurestore.bump_feature_group_version();

-- Serving reports each group's freshness (GET /v1/feature-groups/{namespace}/{name}).
GRANT SELECT ON featurestore.consumer_offsets TO featurestore_serving;
