-- Replays (spec: the featurestore.dev/replay-from annotation): the operator rebuilds a group's
-- state from Kafka. replay_epoch fences consumers that still run with the state before it: every
-- batch checks it in its transaction. replay_token records which request was carried out.
ALTER TABLE featurestore.feature_groups
  ADD COLUMN IF NOT EXISTS replay_epoch bigint NOT NULL DEFAULT 0,
  ADD COLUMN IF NOT EXISTS replay_token text;
