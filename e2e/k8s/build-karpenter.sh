#!/usr/bin/env bash
# Build upstream Karpenter's AWS controller, unmodified, from Go modules (no downloads except the Go
# module proxy): `go install github.com/aws/karpenter-provider-aws/cmd/controller@<version>` with the
# version and Go toolchain pinned in e2e/k8s/karpenter.env, and copy Karpenter's own CRDs
# (pkg/apis/crds/*.yaml of the same module) beside it.
#
# Output: ${SPOTBENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/spotbench}/karpenter/<version>/
#   bin/controller, crds/*.yaml. The binary's path is printed as the last line of stdout. Module
# and build caches (and the Go toolchain the go command fetches) live under .../spotbench/karpenter/
# too, never in the clone. Idempotent: when the binary exists and was built from the pinned module
# version with the pinned toolchain, and the CRDs are there, nothing is rebuilt. Progress goes to
# stderr: one line per step with elapsed seconds, plus a heartbeat every ${HEARTBEAT_SECS:-60}s.
#
# Env: SPOTBENCH_CACHE, GO (go command, default `go`), GO_BUILD_PARALLEL (default 2),
#      KARPENTER_FORCE_REBUILD=1 (ignore an existing build).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=karpenter.env disable=SC1091
source "$HERE/karpenter.env"
: "${KARPENTER_VERSION:?} ${KARPENTER_GOTOOLCHAIN:?}"

GO="${GO:-go}"
PAR="${GO_BUILD_PARALLEL:-2}"
CACHE_ROOT="${SPOTBENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/spotbench}"
KARPENTER_ROOT="$CACHE_ROOT/karpenter"
OUT="$KARPENTER_ROOT/$KARPENTER_VERSION"
BIN="$OUT/bin/controller"
MODULE=github.com/aws/karpenter-provider-aws
# The CRDs a cluster needs for Karpenter: NodePool and NodeClaim (karpenter.sh), EC2NodeClass.
CRDS=(karpenter.sh_nodepools.yaml karpenter.sh_nodeclaims.yaml karpenter.k8s.aws_ec2nodeclasses.yaml)

export GOMODCACHE="$KARPENTER_ROOT/gomod"
export GOCACHE="$KARPENTER_ROOT/gocache"
export GOTOOLCHAIN="$KARPENTER_GOTOOLCHAIN"
# As the release images are built (ko, CGO off); outside any workspace of the caller.
export CGO_ENABLED=0
export GOWORK=off
# A writable module cache so `make clean-cache` (rm -rf) works for non-root users.
export GOFLAGS="-modcacherw"

LOG_TAG=karpenter
# shellcheck source=lib.sh disable=SC1091
source "$HERE/lib.sh"

# binary_ok: the binary exists and its build info names the pinned module version and toolchain.
binary_ok() {
  [[ -x "$BIN" ]] || return 1
  local info
  # GOTOOLCHAIN=local: reading build info needs no particular Go, so nothing is fetched here.
  info=$(GOTOOLCHAIN=local "$GO" version -m "$BIN" 2>/dev/null) || return 1
  [[ "$info" == *": $KARPENTER_GOTOOLCHAIN"* ]] &&
    grep -Eq "^[[:space:]]+mod[[:space:]]+$MODULE[[:space:]]+$KARPENTER_VERSION([[:space:]]|$)" <<<"$info"
}

crds_ok() {
  local f
  for f in "${CRDS[@]}"; do [[ -s "$OUT/crds/$f" ]] || return 1; done
}

take_lock "$KARPENTER_ROOT"

if [[ "${KARPENTER_FORCE_REBUILD:-0}" != 1 ]] && binary_ok && crds_ok; then
  log "up to date: $BIN (karpenter $KARPENTER_VERSION, $KARPENTER_GOTOOLCHAIN)"
  echo "$BIN"
  exit 0
fi

log "building karpenter $KARPENTER_VERSION ($MODULE/cmd/controller) with $KARPENTER_GOTOOLCHAIN into $OUT"
log "GOMODCACHE=$GOMODCACHE GOCACHE=$GOCACHE; -p $PAR"
mkdir -p "$OUT/bin" "$OUT/crds"

# The module itself (and, first time, the toolchain): its directory holds the CRDs.
run_step "karpenter $KARPENTER_VERSION module and $KARPENTER_GOTOOLCHAIN toolchain download" \
  "$GO" mod download "$MODULE@$KARPENTER_VERSION"
mod_dir=$("$GO" mod download -json "$MODULE@$KARPENTER_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[[ -d "$mod_dir/pkg/apis/crds" ]] || { log "ERROR: no pkg/apis/crds in the module ($mod_dir)"; exit 1; }

if [[ "${KARPENTER_FORCE_REBUILD:-0}" == 1 ]] || ! binary_ok; then
  # The version stamp the release's .ko.yaml sets (Karpenter logs it and sends it in its user agent).
  run_step "karpenter controller $KARPENTER_VERSION (go install)" \
    env GOBIN="$OUT/bin" "$GO" install -p "$PAR" -trimpath \
    -ldflags="-s -w -X sigs.k8s.io/karpenter/pkg/operator.Version=$KARPENTER_VERSION" \
    "$MODULE/cmd/controller@$KARPENTER_VERSION"
else
  log "karpenter controller $KARPENTER_VERSION already built"
fi

for f in "${CRDS[@]}"; do
  install -m 0644 "$mod_dir/pkg/apis/crds/$f" "$OUT/crds/$f"
done

if ! binary_ok; then
  log "ERROR: $BIN missing or not built from $MODULE $KARPENTER_VERSION with $KARPENTER_GOTOOLCHAIN"
  exit 1
fi
crds_ok || { log "ERROR: CRDs missing in $OUT/crds"; exit 1; }
log "ok: controller ($(du -h "$BIN" | cut -f1)), CRDs: ${CRDS[*]}"
log "karpenter ready in $OUT"
echo "$BIN"
