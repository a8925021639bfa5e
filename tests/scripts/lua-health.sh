#!/usr/bin/env bash
# Checks the Argo CD health check: argocd-cm-health.yaml embeds exactly health.lua, and the
# script gives the expected health for every fixture under Lua 5.1 without string/math libs.
#   lua-health.sh [--write]    (--write regenerates the ConfigMap from health.lua)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
D="$ROOT/examples/argocd"
embedded() {
  python3 - "$D/argocd-cm-health.yaml" <<'PY'
import sys
lines = open(sys.argv[1]).read().splitlines(True)
out, inside = [], False
for l in lines:
    if l.rstrip().endswith("sluice.dev_IngressControllerSet: |"):
        inside = True
        continue
    if inside:
        if l.strip() and not l.startswith("      "):
            break
        out.append(l[6:] if l.strip() else "\n")
sys.stdout.write("".join(out))
PY
}
if [ "${1:-}" = --write ]; then
  python3 - "$D" <<'PY'
import sys
d = sys.argv[1]
script = open(d + "/health.lua").read()
body = "".join("      " + l if l.strip() else "\n" for l in script.splitlines(True))
head = open(d + "/argocd-cm-health.yaml").read().split("  resource.customizations.health.sluice.dev_IngressControllerSet: |\n")[0]
open(d + "/argocd-cm-health.yaml", "w").write(head + "  resource.customizations.health.sluice.dev_IngressControllerSet: |\n" + body)
PY
fi
if ! diff <(embedded) "$D/health.lua" >/dev/null; then
  echo "examples/argocd/argocd-cm-health.yaml does not embed health.lua; run tests/scripts/lua-health.sh --write" >&2
  exit 1
fi
LUA="$(sed -n 's/^LUA=//p' < <("$ROOT/tests/scripts/tools.sh"))"
"$LUA" "$D/fixtures/run.lua" "$D/health.lua" "$D/fixtures/cases.lua"
