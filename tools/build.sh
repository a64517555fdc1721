#!/usr/bin/env bash
# Builds the binaries of the cluster test tier from the Go module proxy, at the versions pinned
# in tools/versions.env, into one cache directory:
#
#   ${PGA_TOOLS_CACHE:-$HOME/.cache/pganalytics-tools}/<tool>-<version>/bin/<tool>
#
# Usage: tools/build.sh <tool>... | all | list
#   tools: etcd kube-apiserver kube-controller-manager kube-scheduler kwok pulumi
#   `all` builds every tool but pulumi (the cluster tier does not need it; name it explicitly).
#   `list` prints "<tool> <path of the binary>" for each tool (building nothing);
#   a path is printed only for a tool that is built.
#
# Idempotent: a tool whose binary and build stamp (module@version, package, ldflags, Go version
# and the Go source of the scratch module in tools/go/<group>/) match is reused; a changed pin builds a new
# <tool>-<version> directory. The upstream modules (k8s.io/kubernetes, go.etcd.io/etcd/server/v3,
# github.com/pulumi/pulumi/pkg/v3) carry `replace` directives in their go.mod, so `go install
# module@version` refuses them: each is built from a scratch module under tools/go/<group>/ whose
# go.mod restates their non-local replaces (and, for Kubernetes, points every k8s.io/* staging
# module at its published v0.X.Y). When a pin no longer matches that go.mod, the scratch go.mod
# is regenerated here and written back (commit it).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS_DIR="$ROOT/tools"
# shellcheck source=versions.env
source "$TOOLS_DIR/versions.env"
CACHE="${PGA_TOOLS_CACHE:-$HOME/.cache/pganalytics-tools}"

CLUSTER_TOOLS=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)
ALL_TOOLS=("${CLUSTER_TOOLS[@]}" pulumi)

say() { printf '==> [tools/build.sh] %s\n' "$*" >&2; }
die() { printf 'error: [tools/build.sh] %s\n' "$*" >&2; exit 1; }

# tool_spec <tool>: sets GROUP, MODULE, VERSION, PKG, LDFLAGS for the tool.
tool_spec() {
  local kv="${KUBERNETES_VERSION#v}"
  case "$1" in
    etcd)
      GROUP=etcd MODULE=go.etcd.io/etcd/server/v3 VERSION="$ETCD_VERSION" PKG=.
      LDFLAGS="" ;;
    kube-apiserver|kube-controller-manager|kube-scheduler)
      GROUP=kubernetes MODULE=k8s.io/kubernetes VERSION="$KUBERNETES_VERSION" PKG="k8s.io/kubernetes/cmd/$1"
      # What hack/lib/version.sh stamps, so clients (kubectl, helm) see a real server version.
      LDFLAGS=""
      local p
      for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        LDFLAGS+=" -X $p.gitVersion=$KUBERNETES_VERSION -X $p.gitMajor=${kv%%.*}"
        LDFLAGS+=" -X $p.gitMinor=$(cut -d. -f2 <<<"$kv") -X $p.gitTreeState=clean"
        LDFLAGS+=" -X $p.buildDate=1970-01-01T00:00:00Z"
      done ;;
    kwok)
      GROUP=kwok MODULE=sigs.k8s.io/kwok VERSION="$KWOK_VERSION" PKG=sigs.k8s.io/kwok/cmd/kwok
      LDFLAGS="-X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION -X sigs.k8s.io/kwok/pkg/consts.KubeVersion=$KUBERNETES_VERSION" ;;
    pulumi)
      GROUP=pulumi MODULE=github.com/pulumi/pulumi/pkg/v3 VERSION="$PULUMI_VERSION" PKG=github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
      LDFLAGS="-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$PULUMI_VERSION" ;;
    *) die "unknown tool '$1' (known: ${ALL_TOOLS[*]}, all, list)" ;;
  esac
}

check_go() {
  command -v go >/dev/null || die "no 'go' on PATH. Install Go >= $GO_MIN_VERSION (https://go.dev/doc/install) and run again."
  local have
  have="$(go env GOVERSION)"; have="${have#go}"
  if [[ "$(printf '%s\n%s\n' "$GO_MIN_VERSION" "$have" | sort -V | head -n1)" != "$GO_MIN_VERSION" ]]; then
    die "Go $have is too old: these modules need Go >= $GO_MIN_VERSION."
  fi
}

# fetch_module <module> <version>: downloads module@version from the proxy, or fails naming
# the module, the version and the proxy's answer. Prints the path of its go.mod.
fetch_module() {
  local out err
  if ! out="$(cd "$WORK_TMP" && go mod download -json "$1@$2" 2>"$WORK_TMP/dl.err")"; then
    err="$(jq -r '.Error // empty' <<<"$out" 2>/dev/null || true)"
    [[ -n "$err" ]] || err="$(cat "$WORK_TMP/dl.err")"
    die "cannot fetch Go module $1 at $2 (GOPROXY=$(go env GOPROXY)); the proxy answered: $err"
  fi
  jq -r '.GoMod' <<<"$out"
}

# write_scratch_gomod <dir> <module> <version> <upstream go.mod>: (re)generates the scratch go.mod.
write_scratch_gomod() {
  local dir="$1" module="$2" version="$3" upstream="$4"
  rm -f "$dir/go.mod" "$dir/go.sum"
  (cd "$dir" && go mod init "pganalytics.local/tools/$(basename "$dir")" >/dev/null 2>&1)
  (cd "$dir" && go mod edit -require="$module@$version")
  # Restate the upstream replaces: non-local ones as they are; a local one (=> ./staging/...,
  # => ../sdk) only when upstream requires that module at the placeholder v0.0.0, pointing it at the
  # published version (k8s.io/kubernetes v1.X.Y -> staging v0.X.Y; others: the same version).
  local edits
  edits="$(go mod edit -json "$upstream" | python3 -c '
import json, sys
mod, version = sys.argv[1], sys.argv[2]
gm = json.load(sys.stdin)
required = {r["Path"]: r["Version"] for r in gm.get("Require") or []}
for r in gm.get("Replace") or []:
    old, new = r["Old"], r["New"]
    if new.get("Version"):
        print("-replace=%s=%s@%s" % (old["Path"], new["Path"], new["Version"]))
    elif required.get(old["Path"]) == "v0.0.0":
        v = version
        if mod == "k8s.io/kubernetes":
            v = "v0." + version.split(".", 1)[1]
        print("-replace=%s=%s@%s" % (old["Path"], old["Path"], v))
' "$module" "$version")"
  if [[ -n "$edits" ]]; then
    # shellcheck disable=SC2086
    (cd "$dir" && go mod edit $edits)
  fi
}

# build_stamp <scratch dir>: what a built binary depends on besides the Go build cache: the
# module@version, package, ldflags, Go version and the scratch module's Go source (go.mod and
# go.sum follow from the pin; go.sum grows as other tools of the same group are built).
build_stamp() {
  { echo "$MODULE@$VERSION $PKG $LDFLAGS $(go env GOVERSION GOOS GOARCH)"; cat "$1"/*.go; } | sha256sum | cut -c1-32
}

build_tool() {
  local tool="$1"
  tool_spec "$tool"
  local dest="$CACHE/$tool-$VERSION/bin"
  local src="$TOOLS_DIR/go/$GROUP"
  local stamp
  stamp="$(build_stamp "$src")"
  if [[ -x "$dest/$tool" && "$(cat "$dest/.build-stamp" 2>/dev/null)" == "$stamp" ]]; then
    say "$tool $VERSION: up to date ($dest/$tool)"
    return 0
  fi
  local start=$SECONDS
  say "$tool $VERSION: building $PKG from $MODULE@$VERSION"
  local upstream
  upstream="$(fetch_module "$MODULE" "$VERSION")"
  local work="$WORK_TMP/$GROUP"
  rm -rf "$work"; mkdir -p "$work"
  cp "$src"/* "$work"/
  if [[ ! -f "$work/go.mod" ]] || [[ "$(cd "$work" && go mod edit -json | jq -r --arg m "$MODULE" '.Require[]? | select(.Path==$m) | .Version')" != "$VERSION" ]]; then
    say "$tool: regenerating tools/go/$GROUP/go.mod for $MODULE@$VERSION"
    write_scratch_gomod "$work" "$MODULE" "$VERSION" "$upstream"
  fi
  mkdir -p "$WORK_TMP/out-$tool"
  # -mod=mod: go.sum entries missing for a new pin are added (and checked against the checksum DB).
  (cd "$work" && go build -mod=mod -trimpath -ldflags "-s -w $LDFLAGS" -o "$WORK_TMP/out-$tool/$tool" "$PKG") \
    || die "building $tool ($PKG from $MODULE@$VERSION) failed; see the Go output above."
  # Keep the scratch module in the tree in step with the pins.
  if ! cmp -s "$work/go.mod" "$src/go.mod" 2>/dev/null || ! cmp -s "$work/go.sum" "$src/go.sum" 2>/dev/null; then
    cp "$work/go.mod" "$work/go.sum" "$src/"
    say "$tool: updated tools/go/$GROUP/go.mod and go.sum (commit them)"
  fi
  mkdir -p "$dest"
  mv -f "$WORK_TMP/out-$tool/$tool" "$dest/$tool"
  echo "$stamp" > "$dest/.build-stamp"
  say "$tool $VERSION: built $dest/$tool in $((SECONDS - start))s"
}

[[ $# -gt 0 ]] || { sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 2; }

if [[ "$1" == list ]]; then
  for t in "${CLUSTER_TOOLS[@]}" pulumi; do
    tool_spec "$t"
    [[ -x "$CACHE/$t-$VERSION/bin/$t" ]] && echo "$t $CACHE/$t-$VERSION/bin/$t"
  done
  exit 0
fi

tools=()
for arg in "$@"; do
  if [[ "$arg" == all ]]; then tools+=("${CLUSTER_TOOLS[@]}"); else tool_spec "$arg"; tools+=("$arg"); fi
done

check_go
command -v jq >/dev/null || die "jq is needed (apt-get install jq)."
command -v python3 >/dev/null || die "python3 is needed."
mkdir -p "$CACHE"
WORK_TMP="$(mktemp -d "$CACHE/.work.XXXXXX")"
trap 'rm -rf "$WORK_TMP"' EXIT
# One build at a time per cache (several test sessions may call this together).
exec 9>"$CACHE/.lock"
if ! flock -n 9; then say "waiting for another tools/build.sh on $CACHE"; flock 9; fi

total_start=$SECONDS
for t in "${tools[@]}"; do build_tool "$t"; done
say "done: ${tools[*]} in $((SECONDS - total_start))s (cache $CACHE)"
