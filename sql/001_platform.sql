-- The platform's own tables. Group tables live in the "features" schema, one per FeatureGroup.
CREATE SCHEMA IF NOT EXISTS featurestore;
CREATE SCHEMA IF NOT EXISTS features;

-- What can be served and consumed: one row per FeatureGroup, written by the operator.
CREATE TABLE IF NOT EXISTS featurestore.feature_groups (
  namespace   text        NOT NULL,
  name        text        NOT NULL,
  spec        jsonb       NOT NULL,
  table_name  text        NOT NULL UNIQUE,
  generation  bigint      NOT NULL DEFAULT 0,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (namespace, name)
);

-- Where each consumer resumes: written in the same transaction as the feature values it covers.
CREATE TABLE IF NOT EXISTS featurestore.consumer_offsets (
  consumer_group text        NOT NULL,
  topic          text        NOT NULL,
  partition      integer     NOT NULL,
  next_offset    bigint      NOT NULL,
  updated_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (consumer_group, topic, partition)
);
