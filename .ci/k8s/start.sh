#!/bin/bash
# Start a real single-node Kubernetes v1.20.2 on this host: etcd + kube-apiserver + kube-controller-manager +
# kube-scheduler + kubelet (dockershim -> the local Docker engine, no CNI: pods use docker's default bridge).
# The API server binds loopback only; pods reach it through apiserver-proxy (socat) on the node IP, the address
# the `kubernetes` Endpoints advertise (there is no kube-proxy, so the Service's cluster IP does not route).
# Run as root, no systemd. Idempotent: if everything is already up it only prints the env; otherwise it stops
# leftovers (stop.sh) and starts a FRESH cluster (empty etcd). Prints KUBECONFIG=... on stdout.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
PAUSE_IMAGE=${PAUSE_IMAGE:-berth-k8s/pause:3.2}
READY_TIMEOUT=${READY_TIMEOUT:-120}
# Extra kube-apiserver flags, space-separated (e.g. APISERVER_EXTRA_FLAGS="--v=2").
APISERVER_EXTRA_FLAGS=${APISERVER_EXTRA_FLAGS:-}
. "$HERE/common.sh"
COMPONENTS="etcd kube-apiserver apiserver-proxy kube-controller-manager kube-scheduler kubelet"
print_env() { echo "KUBECONFIG=$STATE/admin.kubeconfig"; echo "BERTH_K8S_NODE=$NODE"; echo "BERTH_K8S_TOKEN=$(cut -d, -f1 "$P/tokens.csv")"; }

command -v socat >/dev/null || { echo "socat missing (apt-get install socat): pods reach the API server through it" >&2; exit 1; }
ln -sf "$(command -v socat)" "$BIN/apiserver-proxy"
for c in $COMPONENTS; do [ -x "$BIN/$c" ] || { echo "missing $BIN/$c: run .ci/k8s/setup.sh" >&2; exit 1; }; done
docker info >/dev/null 2>&1 || { echo "docker engine not reachable (docker info failed)" >&2; exit 1; }
docker image inspect "$PAUSE_IMAGE" >/dev/null 2>&1 || { echo "sandbox image $PAUSE_IMAGE missing: run .ci/k8s/setup.sh" >&2; exit 1; }
ncomp=$(wc -w <<<"$COMPONENTS")
up=0; for c in $COMPONENTS; do alive $c && up=$((up+1)); done
if [ $up -eq $ncomp ] && api /readyz >/dev/null; then log "already running"; print_env; exit 0; fi
[ $up -gt 0 ] && log "partial cluster ($up/$ncomp up): stopping it first"
STATE=$STATE BIN=$BIN "$HERE/stop.sh" >&2

CGROUP_DRIVER=$(docker info --format '{{.CgroupDriver}}')
NODE_IP=${NODE_IP:-$(ip -4 -o addr show docker0 2>/dev/null | awk '{print $4}' | cut -d/ -f1 | head -1)}
[ -n "$NODE_IP" ] || NODE_IP=$(ip -4 route get 1.1.1.1 2>/dev/null | awk '{for(i=1;i<NF;i++) if ($i=="src") print $(i+1)}')
[ -n "$NODE_IP" ] || { echo "no non-loopback IPv4 for the node (kubelet refuses 127.0.0.1)" >&2; exit 1; }
rm -rf "$STATE/etcd" "$STATE/kubelet" "$STATE/dockershim" "$R" "$L"; mkdir -p "$P" "$R" "$L"

# --- PKI (kept across restarts; kubelet serving cert re-issued for the current node IP) ---
cert() { # name subject extendedKeyUsage [subjectAltName]
  openssl ecparam -name prime256v1 -genkey -noout -out "$P/$1.key"
  openssl req -new -key "$P/$1.key" -subj "$2" -out "$P/$1.csr" 2>/dev/null
  printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=%s\n%s\n' "$3" "${4:+subjectAltName=$4}" > "$P/$1.ext"
  openssl x509 -req -in "$P/$1.csr" -CA "$P/ca.crt" -CAkey "$P/ca.key" -CAcreateserial -days 3650 -extfile "$P/$1.ext" -out "$P/$1.crt" 2>/dev/null
}
if [ ! -s "$P/admin.crt" ]; then
  openssl ecparam -name prime256v1 -genkey -noout -out "$P/ca.key"
  openssl req -x509 -new -key "$P/ca.key" -subj /CN=berth-k8s-ca -days 3650 -out "$P/ca.crt"
  openssl genrsa -out "$P/sa.key" 2048 2>/dev/null; openssl rsa -in "$P/sa.key" -pubout -out "$P/sa.pub" 2>/dev/null
  cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" clientAuth
  cert admin "/O=system:masters/CN=berth-admin" clientAuth
  cert kubelet-client "/O=system:nodes/CN=system:node:$NODE" clientAuth
  echo "$(openssl rand -hex 16),berth-admin-token,1000,\"system:masters\"" > "$P/tokens.csv"
fi
# Re-issued for the current node IP, the address pods use (through apiserver-proxy).
cert apiserver /CN=kube-apiserver serverAuth "IP:127.0.0.1,IP:$NODE_IP,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
cert kubelet "/CN=$NODE" serverAuth "IP:$NODE_IP,DNS:$NODE"
kubeconfig() { # file user cert key
  cat > "$1" <<KC
apiVersion: v1
kind: Config
clusters: [{name: berth, cluster: {server: "https://127.0.0.1:$PORT", certificate-authority: "$P/ca.crt"}}]
users: [{name: $2, user: {client-certificate: "$P/$3.crt", client-key: "$P/$3.key"}}]
contexts: [{name: berth, context: {cluster: berth, user: $2, namespace: default}}]
current-context: berth
KC
}
kubeconfig "$STATE/admin.kubeconfig" admin admin
kubeconfig "$STATE/kubelet.kubeconfig" "system:node:$NODE" kubelet-client
log "pki + kubeconfigs ready (node $NODE, node IP $NODE_IP, docker cgroup driver $CGROUP_DRIVER)"

launch etcd --name default --data-dir "$STATE/etcd" --listen-client-urls http://127.0.0.1:23790 --advertise-client-urls http://127.0.0.1:23790 \
  --listen-peer-urls http://127.0.0.1:23800 --initial-advertise-peer-urls http://127.0.0.1:23800 --initial-cluster default=http://127.0.0.1:23800
# The apiserver's arguments are recorded so restart-apiserver.sh can start it again alone, exactly so.
# --watch-cache-sizes=jobs.batch#0: Job watches are served by etcd itself, so a watch resumed from a compacted
# resourceVersion meets 410 Gone (the executor's relist is tested that way).
{ printf '%s\n' --etcd-servers=http://127.0.0.1:23790 --bind-address=127.0.0.1 --secure-port=$PORT --insecure-port=0 --advertise-address="$NODE_IP" \
  --tls-cert-file="$P/apiserver.crt" --tls-private-key-file="$P/apiserver.key" --client-ca-file="$P/ca.crt" --token-auth-file="$P/tokens.csv" \
  --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
  --service-account-key-file="$P/sa.pub" --service-account-signing-key-file="$P/sa.key" --service-account-issuer=https://kubernetes.default.svc \
  --service-cluster-ip-range=10.0.0.0/24 --kubelet-client-certificate="$P/apiserver-kubelet-client.crt" --kubelet-client-key="$P/apiserver-kubelet-client.key" \
  --kubelet-certificate-authority="$P/ca.crt" --kubelet-preferred-address-types=InternalIP --allow-privileged=true --profiling=false \
  '--watch-cache-sizes=jobs.batch#0'
  for f in $APISERVER_EXTRA_FLAGS; do printf '%s\n' "$f"; done; } > "$R/kube-apiserver.args"
start_apiserver || exit 1
log "apiserver ready"
# Pods reach the API server at the node IP (what in-cluster clients find in the `kubernetes` Endpoints); TLS passes through.
launch apiserver-proxy "TCP-LISTEN:$PORT,bind=$NODE_IP,reuseaddr,fork" "TCP:127.0.0.1:$PORT"
launch kube-controller-manager --kubeconfig="$STATE/admin.kubeconfig" --bind-address=127.0.0.1 --secure-port=0 --port=0 --leader-elect=false \
  --service-account-private-key-file="$P/sa.key" --root-ca-file="$P/ca.crt" --use-service-account-credentials=false \
  --controllers='*,-nodeipam,-route,-service,-cloud-node-lifecycle,-persistentvolume-expander,-csrsigning,-csrapproving,-bootstrapsigner,-tokencleaner'
launch kube-scheduler --kubeconfig="$STATE/admin.kubeconfig" --authentication-kubeconfig="$STATE/admin.kubeconfig" \
  --authorization-kubeconfig="$STATE/admin.kubeconfig" --bind-address=127.0.0.1 --secure-port=10259 --port=0 --leader-elect=false
cat > "$STATE/kubelet-config.yaml" <<KC
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
tlsCertFile: $P/kubelet.crt
tlsPrivateKeyFile: $P/kubelet.key
authentication: {anonymous: {enabled: false}, webhook: {enabled: true}, x509: {clientCAFile: $P/ca.crt}}
authorization: {mode: Webhook}
cgroupDriver: $CGROUP_DRIVER
failSwapOn: false
oomScoreAdj: 0  # no CAP_SYS_RESOURCE here: the default -999 cannot be set
makeIPTablesUtilChains: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, nodefs.inodesFree: 1%, imagefs.available: 1%}
serializeImagePulls: false
nodeStatusUpdateFrequency: 2s  # default 10s: the first post says NotReady, so Ready would come ~10s later
clusterDomain: cluster.local
KC
BERTH_KUBELET_KEEP_SYSCTLS=1 launch kubelet --config="$STATE/kubelet-config.yaml" --kubeconfig="$STATE/kubelet.kubeconfig" \
  --hostname-override="$NODE" --node-ip="$NODE_IP" --container-runtime=docker --pod-infra-container-image="$PAUSE_IMAGE" \
  --root-dir="$STATE/kubelet" --experimental-dockershim-root-directory="$STATE/dockershim" --v=1
log "etcd, controller-manager, scheduler, kubelet launched; waiting for node $NODE Ready and untainted"
end=$(( $(date +%s) + READY_TIMEOUT ))
while :; do
  n=$(api /api/v1/nodes/$NODE 2>/dev/null || true)
  if [ -n "$n" ] && echo "$n" | jq -e '([.status.conditions[]? | select(.type=="Ready" and .status=="True")] | length == 1)
        and ([.spec.taints[]? | select(.key | startswith("node.kubernetes.io/"))] | length == 0)' >/dev/null; then break; fi
  for c in $COMPONENTS; do alive $c || { tail -30 "$L/$c.log" >&2; echo "$c died" >&2; exit 1; }; done
  [ $(date +%s) -lt $end ] || { echo "node not Ready after ${READY_TIMEOUT}s; see $L/kubelet.log" >&2; exit 1; }
  sleep 0.25
done
until api /api/v1/namespaces/default/serviceaccounts/default >/dev/null 2>&1; do sleep 0.2; done
log "node $NODE Ready (cluster up); logs in $L"
print_env
