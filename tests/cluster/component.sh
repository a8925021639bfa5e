#!/usr/bin/env bash
# Stops or restarts one component of a running local control plane, the way it was started
# by up.sh (for tests of what happens while, say, the API server is away).
#   component.sh stop|start NAME
. "$(dirname "$0")/lib.sh"
action="${1:?stop|start}" name="${2:?component name}"
S="$SLUICE_STATE"
[ -f "$S/cmds/$name" ] || die "no recorded command for $name in $S/cmds"
case "$action" in
  stop)
    pid="$(cat "$S/pids/$name" 2>/dev/null || true)"
    [ -n "$pid" ] && kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    log "$name stopped" ;;
  start)
    mapfile -d '' cmd < "$S/cmds/$name"
    setsid "${cmd[@]}" >>"$S/logs/$name.log" 2>&1 < /dev/null &
    echo $! > "$S/pids/$name"
    log "$name started (pid $!)" ;;
  *) die "usage: component.sh stop|start NAME" ;;
esac
