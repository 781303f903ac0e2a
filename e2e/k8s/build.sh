#!/usr/bin/env bash
# Build a local Kubernetes control plane (no Docker, no downloads except the Go module proxy):
#   etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kwok, kwokctl
# from Go modules, with the versions pinned in e2e/k8s/versions.env.
#
# Output: ${SPOTBENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/spotbench}/k8s/<KUBE>-etcd<ETCD>-kwok<KWOK>/bin
# (printed as the last line of stdout). Module and build caches live under .../spotbench/k8s/ too,
# never in the clone. Idempotent: when all 7 binaries exist and report the pinned versions, nothing
# is rebuilt. Progress goes to stderr: one line per step with elapsed seconds, plus a heartbeat
# every ${HEARTBEAT_SECS:-60}s while a step runs.
#
# Env: SPOTBENCH_CACHE, GO (go command, default `go`), GO_BUILD_PARALLEL (default 2),
#      K8S_FORCE_REBUILD=1 (ignore existing binaries).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env disable=SC1091
source "$HERE/versions.env"
: "${KUBE_VERSION:?} ${ETCD_VERSION:?} ${KWOK_VERSION:?}"

GO="${GO:-go}"
PAR="${GO_BUILD_PARALLEL:-2}"
CACHE_ROOT="${SPOTBENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/spotbench}"
K8S_ROOT="$CACHE_ROOT/k8s"
BIN="$K8S_ROOT/${KUBE_VERSION}-etcd${ETCD_VERSION}-kwok${KWOK_VERSION}/bin"

export GOMODCACHE="$K8S_ROOT/gomod"
export GOCACHE="$K8S_ROOT/gocache"
export CGO_ENABLED=0
export GOWORK=off
# Hermetic flags, whatever the caller's GOFLAGS say: no VCS stamping of the wrapper modules;
# a writable module cache so `make clean-cache` (rm -rf) works for non-root users.
export GOFLAGS="-buildvcs=false -modcacherw"

LOG_TAG=k8s-bins
# shellcheck source=lib.sh disable=SC1091
source "$HERE/lib.sh"

# version_ok NAME: true when $BIN/NAME runs and reports the pinned version.
version_ok() {
  local name="$1" want out
  case "$name" in
    etcd) want="etcd Version: ${ETCD_VERSION#v}" ;;
    kubectl) want="Client Version: ${KUBE_VERSION}" ;;
    kwok | kwokctl) want="${KWOK_VERSION}" ;;
    *) want="Kubernetes ${KUBE_VERSION}" ;;
  esac
  [[ -x "$BIN/$name" ]] || return 1
  if [[ "$name" == kubectl ]]; then
    out=$("$BIN/$name" version --client 2>&1) || return 1
  else
    out=$("$BIN/$name" --version 2>&1) || return 1
  fi
  [[ "$out" == *"$want"* ]]
}

KUBE_BINS=(kube-apiserver kube-controller-manager kube-scheduler kubectl)
ALL_BINS=(etcd "${KUBE_BINS[@]}" kwok kwokctl)

all_ok() {
  local b
  for b in "${ALL_BINS[@]}"; do version_ok "$b" || return 1; done
}

take_lock "$K8S_ROOT"

if [[ "${K8S_FORCE_REBUILD:-0}" != 1 ]] && all_ok; then
  log "up to date: $BIN (kube $KUBE_VERSION, etcd $ETCD_VERSION, kwok $KWOK_VERSION)"
  echo "$BIN"
  exit 0
fi

log "building kube $KUBE_VERSION, etcd $ETCD_VERSION, kwok $KWOK_VERSION into $BIN"
log "$("$GO" version); GOMODCACHE=$GOMODCACHE GOCACHE=$GOCACHE; -p $PAR"
mkdir -p "$BIN"

# The wrapper modules must pin what versions.env says (checked before anything is built).
check_pin() { # check_pin DIR MODULE VERSION
  local got
  got=$(cd "$1" && "$GO" list -mod=readonly -m -f '{{.Version}}' "$2")
  if [[ "$got" != "$3" ]]; then
    log "ERROR: $1/go.mod pins $2 $got but versions.env says $3"
    exit 1
  fi
}
check_pin "$HERE/etcd" go.etcd.io/etcd/server/v3 "$ETCD_VERSION"
check_pin "$HERE/kubernetes" k8s.io/kubernetes "$KUBE_VERSION"

# --- kwok + kwokctl: plain `go install pkg@version` (kwok's go.mod has no replace lines) ---------
if [[ "${K8S_FORCE_REBUILD:-0}" == 1 ]] || ! version_ok kwok || ! version_ok kwokctl; then
  run_step "kwok+kwokctl $KWOK_VERSION (go install)" \
    env GOBIN="$BIN" "$GO" install -p "$PAR" -trimpath -ldflags='-s -w' \
    "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" "sigs.k8s.io/kwok/cmd/kwokctl@$KWOK_VERSION"
else
  log "kwok+kwokctl $KWOK_VERSION already built"
fi

# --- etcd: wrapper module e2e/k8s/etcd (etcd's go.mod has replace lines, so no go install) ---
if [[ "${K8S_FORCE_REBUILD:-0}" == 1 ]] || ! version_ok etcd; then
  run_step "etcd $ETCD_VERSION (go build)" \
    in_dir "$HERE/etcd" "$GO" build -mod=readonly -p "$PAR" -trimpath -ldflags='-s -w' \
    -o "$BIN/etcd" go.etcd.io/etcd/server/v3
else
  log "etcd $ETCD_VERSION already built"
fi

# --- kube-apiserver, kube-controller-manager, kube-scheduler, kubectl: wrapper e2e/k8s/kubernetes ---
need_kube=0
for b in "${KUBE_BINS[@]}"; do version_ok "$b" || need_kube=1; done
if [[ "${K8S_FORCE_REBUILD:-0}" == 1 || $need_kube == 1 ]]; then
  # Stamp like hack/lib/version.sh does; buildDate is the release's module time (reproducible).
  build_date=$(cd "$HERE/kubernetes" && "$GO" list -mod=readonly -m -f '{{if .Time}}{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}{{end}}' k8s.io/kubernetes)
  [[ -n "$build_date" ]] || build_date=1970-01-01T00:00:00Z
  kv="${KUBE_VERSION#v}"
  major="${kv%%.*}"
  minor="${kv#*.}"; minor="${minor%%.*}"
  ldflags="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $p.gitVersion=$KUBE_VERSION -X $p.gitMajor=$major -X $p.gitMinor=$minor"
    ldflags+=" -X $p.gitTreeState=clean -X $p.buildDate=$build_date"
  done
  pkgs=()
  for b in "${KUBE_BINS[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$b"); done
  run_step "kubernetes modules download" \
    in_dir "$HERE/kubernetes" "$GO" list -mod=readonly -deps -f '{{with .Error}}{{.}}{{end}}' "${pkgs[@]}"
  run_step "kube-apiserver, kube-controller-manager, kube-scheduler, kubectl $KUBE_VERSION (go build)" \
    in_dir "$HERE/kubernetes" "$GO" build -mod=readonly -p "$PAR" -trimpath -ldflags "$ldflags" -o "$BIN/" "${pkgs[@]}"
else
  log "kubernetes $KUBE_VERSION binaries already built"
fi

failed=0
for b in "${ALL_BINS[@]}"; do
  if version_ok "$b"; then
    log "ok: $b ($(du -h "$BIN/$b" | cut -f1))"
  else
    log "ERROR: $BIN/$b missing or does not report its pinned version"
    failed=1
  fi
done
[[ $failed == 0 ]] || exit 1
log "all binaries ready in $BIN"
echo "$BIN"
