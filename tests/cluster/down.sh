#!/usr/bin/env bash
# Stops the local control plane by recorded PID and removes its state.
#   down.sh [--quiet] [--keep-logs]
. "$(dirname "$0")/lib.sh"
QUIET=0 KEEP_LOGS=0
for a in "$@"; do
  case "$a" in --quiet) QUIET=1 ;; --keep-logs) KEEP_LOGS=1 ;; *) die "unknown flag $a" ;; esac
done
S="$SLUICE_STATE"
if [ -d "$S/pids" ]; then
  # Reverse start order: Sluice and the demo apps first (any other recorded process), then
  # the clients of the API server, etcd last.
  others=()
  for f in "$S"/pids/*; do
    [ -f "$f" ] || continue
    case "$(basename "$f")" in kwok|kube-scheduler|kube-controller-manager|kube-apiserver|etcd) ;; *) others+=("$(basename "$f")") ;; esac
  done
  for name in "${others[@]}" kwok kube-scheduler kube-controller-manager kube-apiserver etcd; do
    f="$S/pids/$name"; [ -f "$f" ] || continue
    pid="$(cat "$f")"
    # Only signal a PID that is still one of ours (a stale file may name a reused PID).
    # Control-plane components carry their name; Sluice's processes and demo apps "sluice".
    pattern="$name"
    case "$name" in kwok|kube-*|etcd) ;; *) pattern=sluice ;; esac
    cmdline=""
    [ -r "/proc/$pid/cmdline" ] && cmdline="$(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null || true)"
    if [[ "$cmdline" == *"$pattern"* ]]; then
      kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$f"
  done
fi
if [ -d "$S" ]; then
  if [ "$KEEP_LOGS" = 1 ] && [ -d "$S/logs" ]; then
    find "$S" -mindepth 1 -maxdepth 1 ! -name logs -exec rm -rf {} +
  else
    rm -rf "$S"
  fi
fi
[ "$QUIET" = 1 ] || log "control plane stopped, state removed ($S)"
