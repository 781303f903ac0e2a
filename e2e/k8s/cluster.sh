#!/usr/bin/env bash
# A local Kubernetes cluster for e2e tests, without Docker: kwokctl's `binary` runtime running
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok-controller as local
# processes bound to 127.0.0.1, using only the binaries built by e2e/k8s/build.sh (nothing is
# downloaded). Nodes are fake (kwok); pods bound to them go Running without running anything.
#
#   cluster.sh up [NAME]     create a cluster (default name spotbench-<pid>-<random>); the last
#                            stdout line is `export KUBECONFIG=...`
#   cluster.sh down NAME     delete it (kills leftover processes if kwokctl cannot)
#   cluster.sh restart NAME [--etcd]  stop kube-apiserver (and etcd) and start it again as kwokctl
#                            started it (same command line, environment, log); waits until ready
#   cluster.sh smoke         up -> fake Node -> Deployment -> CRD + object -> delete -> down
#   cluster.sh dry-run [NAME] print what `up` would run (kwokctl --dry-run), and check that
#                            nothing would be downloaded
#
# State lives in $KWOK_WORKDIR (default <cache>/k8s/kwok), outside the clone.
# Env: SPOTBENCH_CACHE (as build.sh), K8S_BIN (skip build.sh and use this bin dir), KWOK_WORKDIR,
# CONTROL_PLANE_QPS / CONTROL_PLANE_BURST (kube-controller-manager's and kube-scheduler's client
# rate limit; default 500 / 1000, see write_config).
set -euo pipefail
CONTROL_PLANE_QPS="${CONTROL_PLANE_QPS:-500}"
CONTROL_PLANE_BURST="${CONTROL_PLANE_BURST:-1000}"

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env disable=SC1091
source "$HERE/versions.env"
CACHE_ROOT="${SPOTBENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/spotbench}"
export KWOK_WORKDIR="${KWOK_WORKDIR:-$CACHE_ROOT/k8s/kwok}"

T0=$(date +%s)
log() { printf '[cluster %4ss] %s\n' "$(($(date +%s) - T0))" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

bin_dir() {
  if [[ -n "${K8S_BIN:-}" ]]; then
    echo "$K8S_BIN"
  else
    # Idempotent: returns at once when the binaries for versions.env exist; builds them otherwise.
    SPOTBENCH_CACHE="$CACHE_ROOT" bash "$HERE/build.sh" | tail -n 1
  fi
}

setup_env() {
  BIN="$(bin_dir)"
  [[ -x "$BIN/kwokctl" && -x "$BIN/kubectl" ]] || die "no binaries in '$BIN' (run make k8s-bins)"
  # Our binaries first: kwokctl runs `kubectl` from PATH (else it would download one), and so do we.
  export PATH="$BIN:$PATH"
  mkdir -p "$KWOK_WORKDIR/configs"
}

cluster_dir() { echo "$KWOK_WORKDIR/clusters/$1"; }
kubeconfig_of() { echo "$(cluster_dir "$1")/kubeconfig.yaml"; }

# A KwokctlConfiguration that points every binary kwokctl knows about at a local path. Binaries we
# do not build (etcdctl, prometheus, ...) point at paths that do not exist, so using them fails
# locally instead of downloading from GitHub/dl.k8s.io.
write_config() {
  local cfg="$1"
  cat >"$cfg" <<EOF
apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokctlConfiguration
options:
$(port_lines)
  runtime: binary
  bindAddress: 127.0.0.1
  kubeVersion: ${KUBE_VERSION}
  cacheDir: ${KWOK_WORKDIR}/cache
  kubeBinaryPrefix: ${BIN}
  kubeApiserverBinary: ${BIN}/kube-apiserver
  kubeControllerManagerBinary: ${BIN}/kube-controller-manager
  kubeSchedulerBinary: ${BIN}/kube-scheduler
  kubectlBinary: ${BIN}/kubectl
  etcdBinaryPrefix: ${BIN}
  etcdBinary: ${BIN}/etcd
  etcdBinaryTar: ${BIN}/not-built/etcd.tar.gz
  etcdctlBinary: ${BIN}/not-built/etcdctl
  etcdutlBinary: ${BIN}/not-built/etcdutl
  kectlBinary: ${BIN}/not-built/kectl
  kwokBinaryPrefix: ${BIN}
  kwokControllerBinary: ${BIN}/kwok
  prometheusBinaryPrefix: ${BIN}/not-built
  prometheusBinary: ${BIN}/not-built/prometheus
  prometheusBinaryTar: ${BIN}/not-built/prometheus.tar.gz
  jaegerBinaryPrefix: ${BIN}/not-built
  jaegerBinary: ${BIN}/not-built/jaeger
  jaegerBinaryTar: ${BIN}/not-built/jaeger.tar.gz
  metricsServerBinaryPrefix: ${BIN}/not-built
  metricsServerBinary: ${BIN}/not-built/metrics-server
  kindBinaryPrefix: ${BIN}/not-built
  kindBinary: ${BIN}/not-built/kind
# kwok plays the kubelet only for Nodes annotated kwok.x-k8s.io/node=fake (as fake-ec2 registers
# them), so a Node whose instance is stopped (annotation changed) loses its kubelet and goes NotReady.
# kube-controller-manager and kube-scheduler talk to the API server at 20 requests/s (burst 30) by
# default: 1,000 replicas then take 50 s just to be created, and the bench would time the
# ReplicaSet controller's rate limiter instead of the autoscaler. 500/s (burst 1,000) lets 10,000
# pods be created and bound within seconds, while the API server keeps its own limits (max
# in-flight requests, priority and fairness) as a production control plane has them. (kwokctl's
# --disable-qps-limits would also turn those off.) kwok's own client is not rate-limited.
componentsPatches:
- name: kwok-controller
  extraArgs:
  - key: manage-all-nodes
    value: "false"
  - key: manage-nodes-with-annotation-selector
    value: kwok.x-k8s.io/node=fake
- name: kube-controller-manager
  extraArgs:
  - key: kube-api-qps
    value: "${CONTROL_PLANE_QPS}"
  - key: kube-api-burst
    value: "${CONTROL_PLANE_BURST}"
- name: kube-scheduler
  extraArgs:
  - key: kube-api-qps
    value: "${CONTROL_PLANE_QPS}"
  - key: kube-api-burst
    value: "${CONTROL_PLANE_BURST}"
EOF
}

# kwokctl's own choice (probing downwards from 32767 for a port nothing listens on) relies on
# every earlier cluster's components listening already: kube-apiserver does once `--wait`
# returns, but the controller-manager, scheduler and kwok may bind later, and a component that
# restarts frees its port for a moment. So `up` chooses every port itself, under the create lock,
# among ports no live cluster of this work dir holds (a cluster's config file is its lease until
# `down`) and nothing listens on, and writes them into the config.
PORT_KEYS=(etcdPeerPort etcdPort kubeApiserverPort kwokControllerPort kubeControllerManagerPort kubeSchedulerPort)

# The `options:` lines for CLUSTER_PORTS (none when unset: dry runs leave the choice to kwokctl).
port_lines() {
  [[ -n "${CLUSTER_PORTS:-}" ]] || return 0
  local ports i
  read -ra ports <<<"$CLUSTER_PORTS"
  for i in "${!PORT_KEYS[@]}"; do
    printf '  %s: %s\n' "${PORT_KEYS[$i]}" "${ports[$i]}"
  done
}

leased_ports() {
  local f
  for f in "$KWOK_WORKDIR"/configs/*.yaml; do
    [[ -e "$f" && -d "$(cluster_dir "$(basename "$f" .yaml)")" ]] || continue
    grep -Eo '^  [a-zA-Z]+Port: [0-9]+$' "$f" | awk '{print $2}' || true
  done
}

# TCP ports something listens on (any address, IPv4 or IPv6), from /proc/net (state 0A = LISTEN).
listening_ports() {
  local hex
  awk 'FNR > 1 && $4 == "0A" { n = split($2, a, ":"); print a[n] }' /proc/net/tcp /proc/net/tcp6 2>/dev/null |
    while read -r hex; do echo $((16#$hex)); done
}

# pick_ports N: N ports below 32767 that no live cluster holds and nothing listens on.
pick_ports() {
  local want="$1" p=32767 taken out=()
  taken=" $(leased_ports | tr '\n' ' ') $(listening_ports | tr '\n' ' ') "
  while ((${#out[@]} < want && p > 10000)); do
    p=$((p - 1))
    [[ "$taken" == *" $p "* ]] || out+=("$p")
  done
  ((${#out[@]} == want)) || die "no $want free ports below 32767"
  echo "${out[*]}"
}

default_name() { printf 'spotbench-%s-%04x%04x' "$$" "$RANDOM" "$RANDOM"; }

# kwokctl create cluster, loopback only, with our config. Extra args are appended.
kwokctl_create() {
  local name="$1"; shift
  local cfg="$KWOK_WORKDIR/configs/$name.yaml"
  write_config "$cfg"
  # --kubeconfig "": do not touch ~/.kube/config; the cluster's own kubeconfig is used instead.
  kwokctl -c "$cfg" create cluster --name "$name" --runtime binary --kubeconfig "" \
    --wait 2m --timeout 5m "$@"
}

# Nothing may be downloaded: every binary must resolve to a local path under $BIN. (kwokctl's
# dry run prints "# Download SRC to DST" for local sources too; for those it really symlinks.)
check_dry_run() {
  local name="$1" out bad
  out=$(kwokctl_create "$name" --dry-run 2>&1) || { printf '%s\n' "$out" >&2; die "kwokctl --dry-run failed"; }
  bad=$(
    grep -E '^# Download ' <<<"$out" | grep -Fv "# Download $BIN/" || true
    grep -Eo 'https?://[^ /"]+' <<<"$out" |
      grep -Ev '^https?://(127\.0\.0\.1|kubernetes\.default\.svc\.cluster\.local)(:[0-9]+)?$' || true
  )
  if [[ -n "$bad" ]]; then
    printf '%s\n' "$bad" >&2
    die "kwokctl would download or contact something non-local (see above); refusing to start"
  fi
  grep -q "^# Download $BIN/kube-apiserver " <<<"$out" || die "kwokctl dry run does not use $BIN/kube-apiserver"
  printf '%s\n' "$out"
}

cmd_dry_run() {
  local name="${1:-$(default_name)}"
  setup_env
  check_dry_run "$name"
  rm -f "$KWOK_WORKDIR/configs/$name.yaml"
  log "dry run OK: no download, every binary from $BIN"
}

# up NAME: create the cluster; on failure tear down whatever started. Sets KUBECONFIG.
do_up() {
  local name="$1"
  check_dry_run "$name" >/dev/null
  log "creating cluster $name (kube $KUBE_VERSION, etcd $ETCD_VERSION, kwok $KWOK_VERSION) in $(cluster_dir "$name")"
  # Ports are chosen from what listens now and what other clusters hold (pick_ports), so two
  # creates at the same time would pick the same ones: serialise creation machine-wide. (fd 8 is
  # closed for kwokctl so the daemons it forks do not inherit the lock.)
  local lock="${TMPDIR:-/tmp}/spotbench-kwokctl-create.lock"
  { exec 8>>"$lock"; } 2>/dev/null || exec 8<"$lock"
  flock -w 600 8 || die "timed out waiting for $lock"
  local rc=0
  CLUSTER_PORTS="$(pick_ports "${#PORT_KEYS[@]}")"
  log "ports ${PORT_KEYS[*]}: $CLUSTER_PORTS"
  CLUSTER_PORTS="$CLUSTER_PORTS" kwokctl_create "$name" >&2 8>&- || rc=$?
  flock -u 8
  exec 8>&-
  if [[ $rc -ne 0 ]]; then
    log "kwokctl create failed; logs: $(cluster_dir "$name")/logs"
    tail -n 20 "$(cluster_dir "$name")"/logs/*.log >&2 2>/dev/null || true
    do_down "$name" || true
    die "cluster $name did not come up"
  fi
  export KUBECONFIG
  KUBECONFIG="$(kubeconfig_of "$name")"
  # kubectl's discovery cache next to the cluster, not in ~/.kube.
  KUBECACHEDIR="$(cluster_dir "$name")/kubectl-cache"
  export KUBECACHEDIR
  local server
  server=$(kubectl config view --minify -o jsonpath='{.clusters[0].cluster.server}')
  [[ "$server" == https://127.0.0.1:* ]] || die "apiserver is not on loopback: $server"
  log "cluster $name is up: $server, $(kubectl version 2>/dev/null | grep '^Server Version')"
}

# Component pids of a cluster (from its pid files), only those still running with the cluster
# dir as working directory (pids can be reused). Clients first, servers last.
cluster_pids() {
  local dir="$1" comp f pid cwd
  for comp in kwok-controller kube-scheduler kube-controller-manager kube-apiserver etcd; do
    f="$dir/pids/$comp.pid"
    [[ -e "$f" ]] || continue
    pid=$(cat "$f" 2>/dev/null || true)
    [[ "$pid" =~ ^[0-9]+$ && -d /proc/$pid ]] || continue
    cwd=$(readlink "/proc/$pid/cwd" 2>/dev/null || true)
    [[ "$cwd" == "$dir" ]] || continue
    echo "$pid:$comp"
  done
}

alive() { # alive PID: running and not a zombie
  local st
  st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ -n "$st" && "$st" != Z ]]
}

# kill_pids PID:NAME...: TERM to all, then wait for each, KILL after 15 s.
kill_pids() {
  local e pid
  for e in "$@"; do
    pid="${e%%:*}"
    alive "$pid" || continue
    log "killing leftover ${e#*:} (pid $pid)"
    kill "$pid" 2>/dev/null || true
  done
  for e in "$@"; do
    pid="${e%%:*}"
    alive "$pid" || continue
    timeout 15 tail --pid="$pid" -f /dev/null || kill -9 "$pid" 2>/dev/null || true
  done
}

do_down() {
  local name="$1" dir rc=0 pids=()
  dir="$(cluster_dir "$name")"
  if [[ ! -d "$dir" ]]; then
    log "no cluster $name in $KWOK_WORKDIR"
    rm -f "$KWOK_WORKDIR/configs/$name.yaml"
    return 0
  fi
  # Read the pids first: kwokctl deletes the pid files with the cluster dir.
  mapfile -t pids < <(cluster_pids "$dir")
  log "deleting cluster $name"
  # --kubeconfig: kwokctl removes the cluster's context from this file. It must not be empty (kwokctl
  # fails with "empty path") and must not be ~/.kube/config: use the cluster's own kubeconfig.
  kwokctl delete cluster --name "$name" --kubeconfig "$(kubeconfig_of "$name")" >&2 || rc=$?
  [[ $rc -eq 0 ]] || log "kwokctl delete exited $rc; cleaning up by hand"
  # Whatever kwokctl said, no component may survive.
  kill_pids "${pids[@]}"
  rm -rf "$dir"
  rm -f "$KWOK_WORKDIR/configs/$name.yaml"
  log "cluster $name deleted"
}

# What a restart needs of a running component, saved under the cluster dir: its command line,
# environment, working directory and log. Stops it (TERM, KILL after 15 s).
stop_component() {
  local dir="$1" comp="$2" pid saved
  pid=$(cat "$dir/pids/$comp.pid" 2>/dev/null || true)
  [[ "$pid" =~ ^[0-9]+$ ]] && alive "$pid" || die "$comp of $dir is not running"
  saved="$dir/restart/$comp"
  mkdir -p "$saved"
  cp "/proc/$pid/cmdline" "$saved/cmdline"
  cp "/proc/$pid/environ" "$saved/environ"
  readlink "/proc/$pid/cwd" >"$saved/cwd"
  local log
  log=$(readlink "/proc/$pid/fd/2" 2>/dev/null || true)
  [[ -f "$log" ]] || log="$dir/logs/$comp.log"
  echo "$log" >"$saved/log"
  log "stopping $comp (pid $pid)"
  kill "$pid" 2>/dev/null || true
  # kube-apiserver drains its watches for up to a minute on TERM: a restart does not wait for that.
  timeout 3 tail --pid="$pid" -f /dev/null || kill -9 "$pid" 2>/dev/null || true
  while alive "$pid"; do sleep 0.1; done
}

# Starts a component stopped by stop_component again, detached, and writes its pid file where
# kwokctl keeps it (so `down` stops it).
start_component() {
  local dir="$1" comp="$2" saved argv envv cwd log
  saved="$dir/restart/$comp"
  mapfile -d '' -t argv <"$saved/cmdline"
  mapfile -d '' -t envv <"$saved/environ"
  cwd=$(cat "$saved/cwd")
  log=$(cat "$saved/log")
  (cd "$cwd" && exec env -i "${envv[@]}" setsid "${argv[@]}" >>"$log" 2>&1 </dev/null) &
  echo "$!" >"$dir/pids/$comp.pid"
  log "started $comp again (pid $!)"
}

cmd_restart() {
  local name="${1:?usage: cluster.sh restart NAME [--etcd]}" etcd="${2:-}" dir
  setup_env
  dir="$(cluster_dir "$name")"
  [[ -d "$dir" ]] || die "no cluster $name in $KWOK_WORKDIR"
  stop_component "$dir" kube-apiserver
  if [[ "$etcd" == --etcd ]]; then
    stop_component "$dir" etcd
    start_component "$dir" etcd
  fi
  start_component "$dir" kube-apiserver
  local i
  for ((i = 0; i < 240; i++)); do
    if kubectl --kubeconfig "$(kubeconfig_of "$name")" get --raw /readyz --request-timeout=2s >/dev/null 2>&1; then
      log "kube-apiserver of $name ready again"
      return 0
    fi
    sleep 0.25
  done
  tail -n 30 "$(cat "$dir/restart/kube-apiserver/log")" >&2 || true
  die "kube-apiserver of $name not ready 60 s after its restart (log: $(cat "$dir/restart/kube-apiserver/log"))"
}

cmd_up() {
  local name="${1:-$(default_name)}"
  setup_env
  # Interrupted while starting: do not leave half a cluster running.
  trap 'trap - INT TERM; do_down "$name" || true; exit 130' INT TERM
  do_up "$name"
  trap - INT TERM
  log "delete it with: make cluster-down NAME=$name   (or e2e/k8s/cluster.sh down $name)"
  echo "export KUBECONFIG=$KUBECONFIG"
}

cmd_down() {
  local name="${1:?usage: cluster.sh down NAME}"
  setup_env
  do_down "$name"
}

cmd_smoke() {
  local name
  name="$(default_name)"
  setup_env
  SMOKE_CLUSTER="$name"
  # Teardown always runs: normal exit, failure (set -e), Ctrl-C or TERM.
  trap 'rc=$?; trap - EXIT INT TERM; smoke_teardown "$rc"; exit $rc' EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  do_up "$name"

  local node=smoke-node-0 w=60s
  log "creating fake Node $node"
  kubectl apply -f - >&2 <<EOF
apiVersion: v1
kind: Node
metadata:
  name: ${node}
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
  labels:
    kubernetes.io/hostname: ${node}
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    node.kubernetes.io/instance-type: m5.large
    type: kwok
    spotbench.dev/pool: smoke
status:
  capacity: {cpu: "2", memory: 8Gi, pods: "110"}
  allocatable: {cpu: "2", memory: 8Gi, pods: "110"}
EOF
  kubectl wait --for=condition=Ready "node/$node" --timeout="$w" >&2

  log "creating Deployment smoke (2 replicas, nodeSelector spotbench.dev/pool=smoke)"
  kubectl create deployment smoke --image=fake --replicas=2 --dry-run=client -o json |
    kubectl patch --local -f - --type=merge -o json \
      -p '{"spec":{"template":{"spec":{"nodeSelector":{"spotbench.dev/pool":"smoke"}}}}}' |
    kubectl apply -f - >&2
  kubectl wait --for=condition=Available deployment/smoke --timeout=120s >&2
  kubectl wait --for=condition=Ready pod -l app=smoke --timeout="$w" >&2
  local on_node
  on_node=$(kubectl get pods -l app=smoke -o jsonpath='{range .items[*]}{.spec.nodeName}{"\n"}{end}' | grep -c "^$node\$" || true)
  [[ "$on_node" == 2 ]] || die "expected 2 smoke pods on $node, found $on_node"

  log "creating CRD smokes.spotbench.dev and an object of it"
  kubectl apply -f - >&2 <<'EOF'
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: smokes.spotbench.dev
spec:
  group: spotbench.dev
  scope: Namespaced
  names: {kind: Smoke, listKind: SmokeList, plural: smokes, singular: smoke}
  versions:
  - name: v1alpha1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              message: {type: string}
              replicas: {type: integer, minimum: 0}
EOF
  kubectl wait --for=condition=Established crd/smokes.spotbench.dev --timeout="$w" >&2
  kubectl apply -f - >&2 <<'EOF'
apiVersion: spotbench.dev/v1alpha1
kind: Smoke
metadata:
  name: hello
spec:
  message: hello from spotbench
  replicas: 3
EOF
  local msg
  msg=$(kubectl get smoke/hello -o jsonpath='{.spec.message}')
  [[ "$msg" == "hello from spotbench" ]] || die "unexpected Smoke/hello message: '$msg'"
  # The schema is enforced (a real apiserver, not a fake).
  if kubectl apply -f - >/dev/null 2>&1 <<'EOF'
apiVersion: spotbench.dev/v1alpha1
kind: Smoke
metadata:
  name: invalid
spec:
  replicas: -1
EOF
  then die "apiserver accepted a Smoke violating its schema"; fi

  {
    echo "----- smoke summary (cluster $name) -----"
    kubectl version 2>&1 | sed 's/^/  /'
    kubectl get nodes -o wide 2>&1 | sed 's/^/  /'
    kubectl get deployment,pods -o wide 2>&1 | sed 's/^/  /'
    kubectl get smokes 2>&1 | sed 's/^/  /'
    echo "  Smoke/hello .spec.message = $msg"
  } >&2

  log "deleting Deployment smoke and Node $node"
  kubectl delete deployment smoke --wait=true --timeout="$w" >&2
  kubectl wait --for=delete pod -l app=smoke --timeout="$w" >&2
  kubectl delete "node/$node" --wait=true --timeout="$w" >&2
  log "smoke OK"
}

smoke_teardown() {
  [[ -n "${SMOKE_CLUSTER:-}" ]] || return 0
  local rc="$1" name="$SMOKE_CLUSTER" f
  SMOKE_CLUSTER=""
  if [[ "$rc" != 0 ]]; then
    log "smoke FAILED (exit $rc); diagnostics before teardown:"
    if [[ -n "${KUBECONFIG:-}" && -f "${KUBECONFIG}" ]]; then
      kubectl get nodes,deployments,pods -o wide --request-timeout=10s >&2 || true
      kubectl get events -A --sort-by=.lastTimestamp --request-timeout=10s 2>&1 | tail -n 30 >&2 || true
    fi
    for f in "$(cluster_dir "$name")"/logs/*.log; do
      [[ -e "$f" ]] || continue
      echo "--- tail $f" >&2
      tail -n 15 "$f" >&2 || true
    done
  fi
  if [[ -n "${KUBECONFIG:-}" && -f "${KUBECONFIG}" ]]; then
    kubectl delete node smoke-node-0 --ignore-not-found --wait=false --request-timeout=10s >/dev/null 2>&1 || true
  fi
  do_down "$name" || log "teardown of $name failed; run: e2e/k8s/cluster.sh down $name"
}

case "${1:-}" in
  up) shift; cmd_up "$@" ;;
  down) shift; cmd_down "$@" ;;
  restart) shift; cmd_restart "$@" ;;
  smoke) shift; cmd_smoke "$@" ;;
  dry-run) shift; cmd_dry_run "$@" ;;
  *)
    echo "usage: $0 up [NAME] | down NAME | restart NAME [--etcd] | smoke | dry-run [NAME]" >&2
    exit 2
    ;;
esac
