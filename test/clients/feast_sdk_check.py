"""Drives Feast's own SDK, unmodified, against the feature store, and prints what it saw as JSON.

  python feast_sdk_check.py <repo dir> <feature view> <entity id>...

The repo is examples/feast with its online_store.path set to serving. In order:
- `feast apply`;
- get_online_features for the ids, without and with full feature names;
- store.push and store.write_to_online_store of one new user each, then
  get_online_features until both are served (Kafka, the consumer, Postgres), at most 120 s.
The caller compares the output with what it sent.
"""
import json
import subprocess
import sys
import time
from datetime import datetime, timezone

import pandas as pd
from feast import FeatureStore
from feast.data_source import PushMode

NAMES = ["last_action", "last_page", "last_amount", "last_seen_at"]


def main() -> None:
    repo, view, ids = sys.argv[1], sys.argv[2], sys.argv[3:]
    applied = subprocess.run(["feast", "apply"], cwd=repo, capture_output=True, text=True)
    if applied.returncode != 0:
        raise SystemExit(f"feast apply failed:\n{applied.stdout}\n{applied.stderr}")
    store = FeatureStore(repo_path=repo)
    features = [f"{view}:{name}" for name in NAMES]
    rows = [{"user": i} for i in ids]
    out = {
        "read": store.get_online_features(features=features, entity_rows=rows).to_dict(),
        "read_full": store.get_online_features(features=features, entity_rows=rows, full_feature_names=True).to_dict(),
    }
    seen_at = datetime(2026, 2, 3, 4, 5, 6, tzinfo=timezone.utc)
    frame = lambda user, action: pd.DataFrame(
        {
            "user": [user],
            "last_action": [action],
            "last_page": ["/feast"],
            "last_amount": [12.5],
            "last_seen_at": [seen_at],
            "event_timestamp": [seen_at],
        }
    )
    store.push(view, frame("feast_pushed", "pushed"), to=PushMode.ONLINE)
    store.write_to_online_store(view, frame("feast_written", "written"))
    deadline = time.monotonic() + 120
    while True:
        written = store.get_online_features(
            features=features, entity_rows=[{"user": "feast_pushed"}, {"user": "feast_written"}]
        ).to_dict()
        if all(v is not None for v in written["last_action"]) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    out["written"] = written
    print(json.dumps(out, default=str))


if __name__ == "__main__":
    main()
