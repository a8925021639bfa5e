#!/usr/bin/env bash
# Builds the local control plane from the Go module proxy, once per version set.
#   build.sh [stage1|stage2|all]     (default all)
# stage1: etcd, kube-apiserver. stage2: kube-controller-manager, kube-scheduler, kubectl, kwok.
# Binaries land in $KUBEBINS (outside the repo, keyed by versions); a finished binary is never
# rebuilt. Concurrent callers serialise on a lock.
. "$(dirname "$0")/lib.sh"

STAGE="${1:-all}"
BUILD_ROOT="$SLUICE_CACHE/build"
mkdir -p "$KUBEBINS" "$BUILD_ROOT"
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false
# Ignore whatever GOTOOLCHAIN the environment carries: the machine's Go builds these versions.
export GOTOOLCHAIN=local

exec 9>"$SLUICE_CACHE/build.lock"
flock 9

have() { [ -x "$KUBEBINS/$1" ]; }

k8s_ldflags() {
  local ver="$K8S_VERSION" major minor date
  major="$(echo "$ver" | sed -E 's/^v([0-9]+)\..*/\1/')"
  minor="$(echo "$ver" | sed -E 's/^v[0-9]+\.([0-9]+)\..*/\1/')"
  date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  local flags="-s -w" pkg
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags="$flags -X $pkg.gitVersion=$ver -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    flags="$flags -X $pkg.gitTreeState=clean -X $pkg.buildDate=$date"
  done
  echo "$flags"
}

# A wrapper module that requires k8s.io/kubernetes and replaces every staging module with its
# published version (the kubernetes go.mod points them at ./staging, absent from module zips).
k8s_module() {
  local dir="$BUILD_ROOT/k8s-$K8S_VERSION"
  if [ ! -f "$dir/.ready" ]; then
    log "preparing Kubernetes $K8S_VERSION wrapper module in $dir"
    rm -rf "$dir"; mkdir -p "$dir"
    (
      cd "$dir"
      go mod init sluice.dev/kubebuild >/dev/null 2>&1
      local gomod m
      gomod="$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
      [ -f "$gomod" ] || die "could not download k8s.io/kubernetes@$K8S_VERSION go.mod"
      for m in $(sed -n 's#^[[:space:]]*\(k8s.io/[A-Za-z0-9._-]*\) => \./staging/.*#\1#p' "$gomod"); do
        go mod edit -replace="$m=$m@$K8S_STAGING_VERSION"
      done
      go mod edit -require="k8s.io/kubernetes@$K8S_VERSION"
      go get -tool \
        "k8s.io/kubernetes/cmd/kube-apiserver@$K8S_VERSION" \
        "k8s.io/kubernetes/cmd/kube-controller-manager@$K8S_VERSION" \
        "k8s.io/kubernetes/cmd/kube-scheduler@$K8S_VERSION" \
        "k8s.io/kubernetes/cmd/kubectl@$K8S_VERSION"
    )
    touch "$dir/.ready"
  fi
  echo "$dir"
}

build_k8s() {
  local missing=() c
  for c in "$@"; do have "$c" || missing+=("$c"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  local dir t pkgs=()
  dir="$(k8s_module)"
  for c in "${missing[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
  t="$(now_s)"
  log "building ${missing[*]} ($K8S_VERSION)"
  (cd "$dir" && go build -trimpath -ldflags "$(k8s_ldflags)" -o "$KUBEBINS/.tmp/" "${pkgs[@]}") \
    || die "go build of ${missing[*]} failed"
  for c in "${missing[@]}"; do mv "$KUBEBINS/.tmp/$c" "$KUBEBINS/$c"; done
  log "built ${missing[*]} in $(elapsed "$t")s"
}

build_etcd() {
  have etcd && return 0
  local dir="$BUILD_ROOT/etcd-$ETCD_VERSION" t
  t="$(now_s)"
  log "building etcd $ETCD_VERSION"
  rm -rf "$dir"; mkdir -p "$dir"
  (
    cd "$dir"
    go mod init sluice.dev/etcdbuild >/dev/null 2>&1
    go get -tool "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
    go build -trimpath -ldflags "-s -w" -o "$KUBEBINS/.tmp/etcd" go.etcd.io/etcd/server/v3
  ) || die "etcd build failed"
  mv "$KUBEBINS/.tmp/etcd" "$KUBEBINS/etcd"
  log "built etcd in $(elapsed "$t")s"
}

build_kwok() {
  if have kwok && [ -d "$KUBEBINS/kwok-stages" ]; then return 0; fi
  local t dir
  t="$(now_s)"
  log "building kwok $KWOK_VERSION"
  # Its own module (kwok's k8s libraries differ from the control plane's).
  GOBIN="$KUBEBINS/.tmp" go install "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" || die "kwok build failed"
  dir="$(go env GOMODCACHE)/sigs.k8s.io/kwok@$KWOK_VERSION"
  [ -d "$dir/kustomize/stage" ] || die "kwok stages not found under $dir/kustomize/stage"
  rm -rf "$KUBEBINS/kwok-stages"
  cp -r "$dir/kustomize/stage" "$KUBEBINS/kwok-stages"
  chmod -R u+w "$KUBEBINS/kwok-stages"
  mv "$KUBEBINS/.tmp/kwok" "$KUBEBINS/kwok"
  log "built kwok in $(elapsed "$t")s"
}

mkdir -p "$KUBEBINS/.tmp"
case "$STAGE" in
  stage1) build_etcd; build_k8s kube-apiserver ;;
  stage2) build_k8s kube-controller-manager kube-scheduler kubectl; build_kwok ;;
  all) build_etcd; build_k8s kube-apiserver kube-controller-manager kube-scheduler kubectl; build_kwok ;;
  *) die "usage: build.sh [stage1|stage2|all]" ;;
esac
log "binaries ready in $KUBEBINS"
