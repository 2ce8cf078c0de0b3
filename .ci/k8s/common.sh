# Shared by start.sh and restart-apiserver.sh (sourced, never run): where the cluster lives and how its
# components are launched. Every path can be overridden from the environment, as in start.sh.
BIN=${BIN:-/var/cache/berth-k8s/bin}
STATE=${STATE:-/var/lib/berth-k8s}
NODE=${NODE_NAME:-berth-node}
PORT=${APISERVER_PORT:-16443}
P=$STATE/pki R=$STATE/run L=$STATE/logs
t0=${t0:-$(date +%s.%N)}
el() { awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}'; }
log() { echo "[${LOG_TAG:-start} +$(el)s] $*" >&2; }
# alive COMPONENT: its pid file names a live process running our binary (never some other process that reused the pid).
alive() { local f=$R/$1.pid; [ -s "$f" ] && [ -r /proc/$(cat "$f")/cmdline ] && tr '\0' ' ' </proc/$(cat "$f")/cmdline | grep -q "^$BIN/$1 "; }
api() { curl -sf --cacert "$P/ca.crt" --cert "$P/admin.crt" --key "$P/admin.key" "https://127.0.0.1:$PORT$1"; }
launch() { # name args... ; detached (own session), stdout/err appended to $L/name.log, pid to $R/name.pid
  local n=$1; shift
  rm -f "$R/$n.pid"
  setsid sh -c 'echo $$ > "$0"; exec "$@"' "$R/$n.pid" "$BIN/$n" "$@" </dev/null >>"$L/$n.log" 2>&1 &
  for _ in $(seq 50); do [ -s "$R/$n.pid" ] && break; sleep 0.02; done
}
# Starts kube-apiserver with the arguments start.sh recorded in $R/kube-apiserver.args (one per line) and waits
# until it answers /readyz.
start_apiserver() {
  local args=()
  mapfile -t args < "$R/kube-apiserver.args"
  launch kube-apiserver "${args[@]}"
  local end=$(( $(date +%s) + ${APISERVER_READY_TIMEOUT:-60} ))
  until api /readyz >/dev/null; do
    alive kube-apiserver || { tail -20 "$L/kube-apiserver.log" >&2; echo "kube-apiserver died" >&2; return 1; }
    [ "$(date +%s)" -lt "$end" ] || { echo "kube-apiserver not ready after ${APISERVER_READY_TIMEOUT:-60}s; see $L/kube-apiserver.log" >&2; return 1; }
    sleep 0.2
  done
}
