"""Feast definitions that mirror examples/user-activity.yaml.

- The entity's join key is the FeatureGroup's entity.name (`user`), not its keyField.
- The feature view and the push source are named like the group: `user-activity`, or
  `namespace/group` for a group outside the default namespace.
- The schema lists the group's value features. Window aggregates can be read, but not written.
"""
from datetime import timedelta

from feast import Entity, FeatureView, Field, FileSource, PushSource, ValueType
from feast.types import Float64, String, UnixTimestamp

user = Entity(name="user", join_keys=["user"], value_type=ValueType.STRING)

# Feast wants a batch source behind a push source; the feature store never reads it.
unused_batch_source = FileSource(name="user-activity-batch", path="data/unused.parquet", timestamp_field="event_timestamp")
user_activity_push = PushSource(name="user-activity", batch_source=unused_batch_source)

user_activity = FeatureView(
    name="user-activity",
    entities=[user],
    ttl=timedelta(hours=24),
    schema=[
        Field(name="last_action", dtype=String),
        Field(name="last_page", dtype=String),
        Field(name="last_amount", dtype=Float64),
        Field(name="last_seen_at", dtype=UnixTimestamp),
    ],
    source=user_activity_push,
    online=True,
)
