"""The Feast peer of the serving benchmark: Feast's own SDK, unmodified, on the bench's Postgres.

  python peer.py setup <repo dir> --database-url URL --entities N
  python peer.py drop <repo dir> --database-url URL

setup writes a Feast repo into <repo dir> (feature_store.yaml with the Postgres online store in its
own schema, feast_bench; the `user` entity; the `bench_feast` feature view over a small parquet
FileSource and the `bench_push` PushSource), runs `feast apply`, and writes user_1..user_N through
FeatureStore.write_to_online_store in batches of 10,000, with the values bench/platform.ts gives
our own store (last_action 'click', last_page '/p/<i % 50>', last_amount i / 100). Progress goes to
stderr; the last stdout line is {"entities": N, "seconds": s, "rows_per_second": r} for the write
(one row is one entity, which Feast stores as three Postgres rows, one per feature).

drop removes the schema and everything in it, so the run leaves nothing in Postgres (the repo
directory itself is the caller's to remove). A schema left by a killed run is dropped by the next
setup before it applies: setup is safe to run again. Only one peer per database at a time: they
would share the schema.
"""
import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

SCHEMA = "feast_bench"
PROJECT = "bench_peer"
BATCH = 10_000

FEATURES_PY = '''\
# Written by bench/feast/peer.py: the Feast peer of the serving benchmark.
from datetime import timedelta

from feast import Entity, FeatureView, Field, FileSource, PushSource, ValueType
from feast.types import Float64, String

user = Entity(name="user", join_keys=["user"], value_type=ValueType.STRING)

bench_file = FileSource(name="bench_file", path={parquet!r}, timestamp_field="event_timestamp")

bench_push = PushSource(name="bench_push", batch_source=bench_file)

bench_feast = FeatureView(
    name="bench_feast",
    entities=[user],
    ttl=timedelta(0),  # no expiry, as our own group serves
    schema=[
        Field(name="user", dtype=String),
        Field(name="last_action", dtype=String),
        Field(name="last_page", dtype=String),
        Field(name="last_amount", dtype=Float64),
    ],
    source=bench_push,
    online=True,
)
'''


def log(message: str) -> None:
    print(f"[feast-peer] {message}", file=sys.stderr, flush=True)


def postgres(url: str) -> dict:
    """The online store's connection settings from a postgres:// URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql") or not parts.hostname or not parts.username:
        raise SystemExit(f"--database-url must be postgres://user:password@host:port/database, got {url!r}")
    query = parse_qs(parts.query)
    return {
        "host": parts.hostname,
        "port": parts.port or 5432,
        "database": unquote(parts.path.lstrip("/")) or unquote(parts.username),
        "user": unquote(parts.username),
        "password": unquote(parts.password or ""),
        # Feast's default is `require`; the bench's Postgres listens on 127.0.0.1 without TLS, as
        # our own services reach it. A URL that names an sslmode keeps it.
        "sslmode": query.get("sslmode", ["disable"])[0],
    }


def drop_schema(pg: dict) -> None:
    import psycopg
    from psycopg import sql

    if not re.fullmatch(r"[a-z_][a-z0-9_]*", SCHEMA):
        raise SystemExit(f"bad schema name {SCHEMA!r}")
    conninfo = psycopg.conninfo.make_conninfo(
        host=pg["host"], port=pg["port"], dbname=pg["database"], user=pg["user"], password=pg["password"],
        sslmode=pg["sslmode"],
    )
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(SCHEMA)))


def write_repo(repo: Path, pg: dict) -> None:
    import pandas as pd
    import yaml

    data = repo / "data"
    data.mkdir(parents=True, exist_ok=True)
    parquet = data / "bench.parquet"
    # The FileSource only has to exist (apply reads its schema); the online rows are written below.
    pd.DataFrame(
        {
            "user": ["user_1"],
            "last_action": ["click"],
            "last_page": ["/p/1"],
            "last_amount": [0.01],
            "event_timestamp": [pd.Timestamp.now(tz="UTC")],
        }
    ).to_parquet(parquet)
    config = {
        "project": PROJECT,
        "provider": "local",
        # cache_ttl_seconds 0: the registry is loaded once and never expires (Feast's "infinite");
        # it does not change while the bench runs, so no request pays for re-reading it.
        "registry": {"registry_type": "file", "path": str(repo / "registry.db"), "cache_ttl_seconds": 0},
        "online_store": {
            "type": "postgres",
            **pg,
            "db_schema": SCHEMA,
            # A pool per worker (Feast's default is one shared connection, on which concurrent
            # requests queue): the same footing as our serving's pg Pool.
            "conn_type": "pool",
            "min_conn": 1,
            "max_conn": 10,
        },
        "offline_store": {"type": "file"},
        # 3 is 0.67's default and the only version not deprecated.
        "entity_key_serialization_version": 3,
    }
    (repo / "feature_store.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    (repo / "features.py").write_text(FEATURES_PY.format(parquet=str(parquet)))


def setup(repo: Path, url: str, entities: int) -> None:
    pg = postgres(url)
    repo.mkdir(parents=True, exist_ok=True)
    write_repo(repo, pg)
    drop_schema(pg)  # a killed run's leftovers
    t0 = time.monotonic()
    feast = Path(sys.executable).parent / "feast"
    applied = subprocess.run([str(feast), "apply"], cwd=repo, capture_output=True, text=True)
    if applied.returncode != 0:
        raise SystemExit(f"feast apply failed:\n{applied.stdout}\n{applied.stderr}")
    apply_seconds = time.monotonic() - t0
    log(f"feast apply: {apply_seconds:.1f} s")

    import numpy as np
    import pandas as pd
    from feast import FeatureStore

    store = FeatureStore(repo_path=str(repo))
    start = time.monotonic()
    for first in range(1, entities + 1, BATCH):
        n = np.arange(first, min(first + BATCH, entities + 1))
        frame = pd.DataFrame(
            {
                "user": [f"user_{i}" for i in n],
                "last_action": "click",
                "last_page": [f"/p/{i % 50}" for i in n],
                "last_amount": n / 100.0,
                "event_timestamp": pd.Timestamp.now(tz="UTC"),
            }
        )
        store.write_to_online_store("bench_feast", frame)
        done = int(n[-1])
        log(f"wrote {done:,}/{entities:,} entities ({done / (time.monotonic() - start):,.0f} rows/s)")
    seconds = time.monotonic() - start
    print(
        json.dumps(
            {
                "entities": entities,
                "seconds": round(seconds, 3),
                "rows_per_second": round(entities / seconds) if seconds > 0 else None,
                "apply_seconds": round(apply_seconds, 3),
            }
        ),
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    set_up = commands.add_parser("setup", help="write the repo, feast apply, load the entities")
    set_up.add_argument("repo", type=Path)
    set_up.add_argument("--database-url", required=True)
    set_up.add_argument("--entities", type=int, required=True)
    drop = commands.add_parser("drop", help="drop the online store's schema")
    drop.add_argument("repo", type=Path)
    drop.add_argument("--database-url", required=True)
    args = parser.parse_args()
    if args.command == "setup":
        if args.entities < 1:
            raise SystemExit("--entities must be at least 1")
        setup(args.repo.resolve(), args.database_url, args.entities)
    else:
        drop_schema(postgres(args.database_url))
        log(f"dropped schema {SCHEMA}")


if __name__ == "__main__":
    main()
