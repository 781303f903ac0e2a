# Shared by the e2e/k8s build scripts (sourced, not run): progress lines with elapsed seconds, a
# heartbeat while a long step runs, and a per-cache build lock.
#
# The sourcing script sets LOG_TAG (the progress-line prefix) and may set HEARTBEAT_SECS.

T0=$(date +%s)
HEARTBEAT_SECS="${HEARTBEAT_SECS:-60}"
log() { printf '[%s %4ss] %s\n' "$LOG_TAG" "$(($(date +%s) - T0))" "$*" >&2; }

HB_PID=""
STEP_PID=""
cleanup() {
  if [[ -n "$HB_PID" ]]; then kill "$HB_PID" 2>/dev/null || true; fi
  if [[ -n "$STEP_PID" ]]; then kill "$STEP_PID" 2>/dev/null || true; fi
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

# in_dir DIR CMD...: exec CMD in DIR (used in run_step's background subshell).
in_dir() { cd "$1" || return; shift; exec "$@"; }

# run_step NAME CMD...: runs CMD (its stdout goes to stderr), logs start/end with elapsed seconds
# and a heartbeat line every HEARTBEAT_SECS while it runs.
run_step() {
  local name="$1"; shift
  local s0; s0=$(date +%s)
  log "step: $name ..."
  "$@" >&2 &
  STEP_PID=$!
  (
    # The sleep is only a heartbeat timer; it is killed with this subshell, so no orphan keeps
    # the caller's stdout/stderr pipes open.
    sp=""
    trap '[[ -n "$sp" ]] && kill "$sp" 2>/dev/null; exit 0' TERM
    while :; do
      sleep "$HEARTBEAT_SECS" &
      sp=$!
      wait "$sp"
      log "  ... $name still running ($(($(date +%s) - s0))s)"
    done
  ) >&2 </dev/null &
  HB_PID=$!
  local rc=0
  wait "$STEP_PID" || rc=$?
  kill "$HB_PID" 2>/dev/null || true
  wait "$HB_PID" 2>/dev/null || true
  HB_PID=""; STEP_PID=""
  if [[ $rc -ne 0 ]]; then
    log "step FAILED (exit $rc): $name after $(($(date +%s) - s0))s"
    exit "$rc"
  fi
  log "step done: $name in $(($(date +%s) - s0))s"
}

# take_lock DIR: one build at a time per cache directory (parallel make invocations, other
# engineers sharing the cache); held on fd 9 until the script exits.
take_lock() {
  mkdir -p "$1"
  exec 9>"$1/.build.lock"
  if ! flock -n 9; then
    log "another build holds $1/.build.lock; waiting for it"
    flock 9
  fi
}
