#!/bin/bash
# Restart only the kube-apiserver of the cluster start.sh started, with the same arguments: stop it (TERM, then KILL
# after 10 s) if it is running, start it, wait for /readyz. etcd and the other components keep running, so the
# cluster's state survives; clients see the API server go away and come back (tests of reconnection use this).
# `restart-apiserver.sh stop` only stops it; `restart-apiserver.sh start` only starts it (no-op when running).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
LOG_TAG=apiserver
. "$HERE/common.sh"
[ -s "$R/kube-apiserver.args" ] || { echo "no cluster started by .ci/k8s/start.sh ($R/kube-apiserver.args missing)" >&2; exit 1; }
mode=${1:-restart}
if [ "$mode" != start ] && alive kube-apiserver; then
  pid=$(cat "$R/kube-apiserver.pid")
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do alive kube-apiserver || break; sleep 0.1; done
  alive kube-apiserver && kill -KILL "$pid" 2>/dev/null && sleep 0.2
  log "kube-apiserver (pid $pid) stopped"
fi
[ "$mode" = stop ] && exit 0
# Never half a cluster: without etcd (the cluster was stopped meanwhile) there is nothing to serve.
alive etcd || { echo "etcd is not running: the cluster is stopped; start it with .ci/k8s/start.sh" >&2; exit 1; }
if alive kube-apiserver && api /readyz >/dev/null; then log "kube-apiserver already running"; exit 0; fi
start_apiserver
log "kube-apiserver ready (pid $(cat "$R/kube-apiserver.pid"))"
