#!/usr/bin/env bash
# How long the README's two commands take on this machine, phase by phase, written to
# bench/build-times.md (the README's set-up figures come from there).
#
#   bench/build-times.sh warm   CI's path (.ci/run) in a fresh clone with the caches as they are
#   bench/build-times.sh cold   an empty cache directory: Kubernetes binaries, upstream Karpenter and
#                               the Rust workspace built from nothing, then `make demo`
#
# Each mode rewrites its own section of the results file. A cold run needs about 20 GB of free disk
# (removed afterwards) and the module proxy.
set -euo pipefail
mode=${1:-warm}
repo=$(cd "$(dirname "$0")/.." && pwd)
out="$repo/bench/build-times.md"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

rows=()
# phase NAME CMD...: runs CMD in the clone, prints its progress, records its wall time.
phase() {
  local name=$1
  shift
  echo "build-times: $name: $*" >&2
  local t0
  t0=$(date +%s)
  (cd "$work/clone" && "$@")
  rows+=("| $name | \`$*\` | $(($(date +%s) - t0)) |")
}

git clone -q "$repo" "$work/clone"
case "$mode" in
  warm)
    phase "set-up" make setup
    phase "lint (fmt, clippy)" make lint
    phase "Kubernetes binaries (cached)" make k8s-bins
    phase "upstream Karpenter (cached)" make karpenter-bin
    phase "Rust tests: build and run" make test-rust
    phase "Python suites" make test-python
    ;;
  cold)
    export XDG_CACHE_HOME="$work/cache"
    # Where the Makefile puts Rust's target/, so the bare cargo phase is the build `make demo` reuses.
    export CARGO_TARGET_DIR="$XDG_CACHE_HOME/spotbench/target"
    phase "set-up" make setup
    phase "Kubernetes binaries from Go modules" make k8s-bins
    phase "upstream Karpenter from Go modules" make karpenter-bin
    phase "Rust workspace (debug, bins)" cargo build --workspace --bins
    phase "make demo after those" make demo
    ;;
  *)
    echo "usage: $0 warm|cold" >&2
    exit 2
    ;;
esac

total=0
for r in "${rows[@]}"; do
  total=$((total + $(awk -F'|' '{gsub(/ /, "", $4); print $4}' <<<"$r")))
done
section=$(
  echo "## $mode"
  echo
  echo "$(date -u +%FT%TZ), $(nproc) cores, commit $(git -C "$work/clone" rev-parse --short HEAD), $(rustc --version | cut -d' ' -f1-2), $(GOTOOLCHAIN=local go env GOVERSION)"
  echo
  echo "| phase | command | seconds |"
  echo "|---|---|---|"
  printf '%s\n' "${rows[@]}"
  echo "| total | | $total |"
)

# Keep the other mode's section as it was.
other=""
[ -f "$out" ] && other=$(awk -v keep="$([ "$mode" = warm ] && echo cold || echo warm)" '
  /^## / { on = ($2 == keep) } on' "$out")
{
  echo "# Build and test times"
  echo
  echo "Written by \`bench/build-times.sh warm|cold\`; the README's set-up figures come from here."
  echo
  if [ "$mode" = warm ]; then printf '%s\n\n%s\n' "$section" "$other"; else printf '%s\n\n%s\n' "$other" "$section"; fi
} | cat -s >"$out"
echo "build-times: wrote $out" >&2
