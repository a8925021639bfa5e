#!/usr/bin/env bash
# Runs inside the test network (netns.sh): starts the control plane, runs the integration
# tests against it, and always stops it again, on failure too.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
# A fixed place, apart from a developer's manual cluster, so the next run's up.sh stops
# whatever a crashed run left behind.
export SLUICE_STATE="${SLUICE_TEST_STATE:-${TMPDIR:-/tmp}/sluice-test}"
. "$ROOT/tests/cluster/lib.sh"
trap '"$ROOT/tests/cluster/down.sh" --quiet' EXIT

t="$(now_s)"
"$ROOT/tests/cluster/up.sh" "${SLUICE_CLUSTER_STAGE:-all}"
log "TIMING cluster start: $(elapsed "$t")s"

# Sample the control plane's memory while the tests run, for the report.
( peak=0
  while sleep 1; do
    kb=0
    for f in "$SLUICE_STATE"/pids/*; do
      [ -f "$f" ] || continue
      r="$(awk '/VmRSS/{print $2}' "/proc/$(cat "$f")/status" 2>/dev/null || echo 0)"
      kb=$((kb + ${r:-0}))
    done
    [ "$kb" -gt "$peak" ] && peak=$kb && echo "$peak" > "$SLUICE_STATE/peak-rss-kb"
  done ) &
sampler=$!

t="$(now_s)"
rc=0
export SLUICE_BIN_DIR="${CARGO_TARGET_DIR:-$ROOT/target}/debug"
SLUICE_ENV_FILE="$SLUICE_STATE/env" cargo test --offline --workspace --test '*' -- --test-threads="${SLUICE_TEST_THREADS:-4}" || rc=$?
# Tests that disturb the shared control plane (stopping the API server) run alone, last.
if [ $rc -eq 0 ]; then
  SLUICE_ENV_FILE="$SLUICE_STATE/env" cargo test --offline -p sluice-tests --test outage -- --ignored || rc=$?
fi
# End to end: bring up what `make demo` brings up, then check it as a newcomer would.
if [ $rc -eq 0 ]; then
  t2="$(now_s)"
  "$ROOT/tests/scripts/world.sh" || rc=$?
  [ $rc -eq 0 ] && { SLUICE_ENV_FILE="$SLUICE_STATE/env" cargo test --offline -p sluice-tests --test e2e -- --ignored || rc=$?; }
  log "TIMING end-to-end (world + checks): $(elapsed "$t2")s"
fi
kill "$sampler" 2>/dev/null || true
log "TIMING integration tests: $(elapsed "$t")s"
[ -f "$SLUICE_STATE/peak-rss-kb" ] && log "control plane peak RSS: $(( $(cat "$SLUICE_STATE/peak-rss-kb") / 1024 )) MiB"
if [ $rc -ne 0 ] && [ -d "$SLUICE_STATE/logs" ]; then
  for f in "$SLUICE_STATE"/logs/*.log; do log "--- tail of $f"; tail -n 15 "$f" >&2; done
fi
exit $rc
