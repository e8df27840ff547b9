-- The read-only role serving connects through (a login role that is a member of it). It can read
-- the registry from the start, so serving is ready before the first FeatureGroup exists; each
-- group's table is granted to it by the operator when the group is provisioned.
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'featurestore_serving') THEN
    CREATE ROLE featurestore_serving NOLOGIN;
  END IF;
END
$$;
GRANT USAGE ON SCHEMA featurestore, features TO featurestore_serving;
GRANT SELECT ON featurestore.feature_groups TO featurestore_serving;
