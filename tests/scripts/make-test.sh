#!/usr/bin/env bash
# `make test`: lint, unit tests, build, then the integration tests against a real local
# control plane inside a network namespace of the run's own. Prints each step's duration.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
. tests/cluster/lib.sh

step() { # step NAME CMD...
  local name="$1" t; shift
  t="$(now_s)"
  log "==> $name"
  "$@"
  log "TIMING $name: $(elapsed "$t")s"
}
total="$(now_s)"

step "cargo fmt --check" cargo fmt --all -- --check
step "cargo clippy" cargo clippy --workspace --all-targets --locked -- -D warnings
step "unit tests" cargo test --workspace --locked --lib --bins
step "Argo CD health check (Lua 5.1)" tests/scripts/lua-health.sh
step "hadolint Dockerfile" make -s lint-docker
step "build binaries" cargo build --workspace --locked --bins
step "build integration tests" cargo test --workspace --locked --test '*' --no-run
step "control-plane binaries (cached by version)" tests/cluster/build.sh all
step "integration tests in the test network" tests/cluster/netns.sh tests/scripts/integration.sh
log "TIMING make test total: $(elapsed "$total")s"
