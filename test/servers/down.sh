#!/usr/bin/env bash
# Stop the local kube-apiserver+etcd, Kafka, then Postgres (idempotent), and remove $STATE_DIR/servers.env.
# Data stays in $STATE_DIR; delete it (rm -rf .local) for a clean slate.
set -euo pipefail
LOG_TAG=down
# shellcheck source=lib.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

rc=0
"$SERVERS_DIR/kube.sh" stop || rc=1
"$SERVERS_DIR/kafka.sh" stop || rc=1
"$SERVERS_DIR/postgres.sh" stop || rc=1
rm -f "$STATE_DIR/servers.env"
((rc == 0)) || die "some server did not stop cleanly" "see the messages above; kill the pid it names"
log "all down"
