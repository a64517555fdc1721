#!/usr/bin/env bash
# Builds the binaries of the cluster and e2e test tiers and of `make deploy` from the Go module
# proxy, at the versions pinned in tools/versions.env, into one cache directory:
#
#   ${PGA_TOOLS_CACHE:-$HOME/.cache/pganalytics-tools}/<tool>-<version>/bin/<tool>
#   ${PGA_TOOLS_CACHE:-$HOME/.cache/pganalytics-tools}/pulumi-plugins/bin/   (the engine's plugins)
#
# Usage: tools/build.sh <tool>... | all | list | bindir <tool>
#   tools: etcd kube-apiserver kube-controller-manager kube-scheduler kwok pulumi pulumi-plugins
#   `all` builds the five cluster tools (name pulumi and pulumi-plugins explicitly).
#   `list` prints "<tool> <path of the binary>" for each tool (building nothing);
#   a path is printed only for a tool that is built.
#   `bindir <tool>` prints the directory to put on PATH for a built tool (exit 1 if not built).
#
# pulumi-plugins: the Python language host, the kubernetes and the random providers, which the
# Pulumi CLI needs to run this program and which neither the Go module proxy nor an installer can
# provide here. They are built by ../shared/third_party/build.sh (their sources; override the
# location with PGA_THIRD_PARTY) into the cache. When all three are already on PATH (a normal
# Pulumi install with its plugins), nothing is built and the PATH ones are used. The plugins
# build runs in the background, in parallel with the Go tools named with it: on 2 cores the
# two builds overlap their downloads, links and single-threaded steps.
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
ALL_TOOLS=("${CLUSTER_TOOLS[@]}" pulumi pulumi-plugins)
PLUGINS=(pulumi-language-python pulumi-resource-kubernetes pulumi-resource-random)
PLUGINS_DIR="$CACHE/pulumi-plugins"
THIRD_PARTY="${PGA_THIRD_PARTY:-$ROOT/../shared/third_party}"

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
    pulumi-plugins) GROUP="" MODULE="" VERSION="" PKG="" LDFLAGS="" ;;
    *) die "unknown tool '$1' (known: ${ALL_TOOLS[*]}, all, list, bindir <tool>)" ;;
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

# plugins_on_path: true when every plugin the program needs is on PATH already.
# (The cache's own directory does not count: its plugins are rebuilt when their stamps change.)
plugins_on_path() {
  local p found
  for p in "${PLUGINS[@]}"; do
    found="$(command -v "$p")" || return 1
    [[ "$(dirname "$found")" != "$PLUGINS_DIR/bin" ]] || return 1
  done
}

plugins_built() {
  local p
  for p in "${PLUGINS[@]}"; do [[ -x "$PLUGINS_DIR/bin/$p" ]] || return 1; done
}

# build_plugins: the three plugins through the third-party build script (idempotent: it keeps
# a stamp per plugin), unless PATH already has them.
build_plugins() {
  if plugins_on_path; then
    say "pulumi-plugins: using ${PLUGINS[*]} from PATH ($(dirname "$(command -v pulumi-resource-kubernetes)"))"
    return 0
  fi
  [[ -x "$THIRD_PARTY/build.sh" ]] || die "pulumi-plugins: $THIRD_PARTY/build.sh is missing. The \
plugin sources sit in shared/third_party beside the clone (as in CI); or install Pulumi the \
usual way (curl -fsSL https://get.pulumi.com | sh), which ships the language host and downloads \
the providers."
  local start=$SECONDS
  say "pulumi-plugins: building ${PLUGINS[*]} with $THIRD_PARTY/build.sh into $PLUGINS_DIR"
  "$THIRD_PARTY/build.sh" "$PLUGINS_DIR" || die "pulumi-plugins: $THIRD_PARTY/build.sh failed; see its output above."
  plugins_built || die "pulumi-plugins: $THIRD_PARTY/build.sh succeeded but $PLUGINS_DIR/bin lacks some of: ${PLUGINS[*]}"
  say "pulumi-plugins: ready in $PLUGINS_DIR/bin ($((SECONDS - start))s)"
}

[[ $# -gt 0 ]] || { sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 2; }

if [[ "$1" == list ]]; then
  for t in "${CLUSTER_TOOLS[@]}" pulumi; do
    tool_spec "$t"
    [[ -x "$CACHE/$t-$VERSION/bin/$t" ]] && echo "$t $CACHE/$t-$VERSION/bin/$t"
  done
  if plugins_built; then
    for p in "${PLUGINS[@]}"; do echo "$p $PLUGINS_DIR/bin/$p"; done
  fi
  exit 0
fi

if [[ "$1" == bindir ]]; then
  [[ $# -eq 2 ]] || die "usage: tools/build.sh bindir <tool>"
  tool_spec "$2"
  if [[ "$2" == pulumi-plugins ]]; then
    plugins_built || die "pulumi-plugins are not built (run: tools/build.sh pulumi-plugins)"
    echo "$PLUGINS_DIR/bin"
  else
    [[ -x "$CACHE/$2-$VERSION/bin/$2" ]] || die "$2 is not built (run: tools/build.sh $2)"
    echo "$CACHE/$2-$VERSION/bin"
  fi
  exit 0
fi

tools=()
want_plugins=false
for arg in "$@"; do
  case "$arg" in
    all) tools+=("${CLUSTER_TOOLS[@]}") ;;
    pulumi-plugins) want_plugins=true ;;
    *) tool_spec "$arg"; tools+=("$arg") ;;
  esac
done

check_go
command -v jq >/dev/null || die "jq is needed (apt-get install jq)."
command -v python3 >/dev/null || die "python3 is needed."
mkdir -p "$CACHE"
WORK_TMP="$(mktemp -d "$CACHE/.work.XXXXXX")"
plugins_pid=""
# A failed Go build stops the plugins build running beside it (its own process group).
trap '[[ -z "$plugins_pid" ]] || kill -- "-$plugins_pid" 2>/dev/null || true; rm -rf "$WORK_TMP"' EXIT

total_start=$SECONDS
if $want_plugins; then
  if [[ ${#tools[@]} -gt 0 ]]; then
    # In parallel with the Go tools, in its own process group (started before the Go lock is
    # taken, so it does not hold it); its lines are prefixed so the two logs stay readable.
    setsid "${BASH_SOURCE[0]}" pulumi-plugins > >(sed -u 's/^/[pulumi-plugins] /' >&2) 2>&1 &
    plugins_pid=$!
  else
    # One plugins build at a time per cache; its own lock, so that a build of the Go tools
    # alone (the cluster tier) never waits for it.
    exec 8>"$CACHE/.lock-plugins"
    if ! flock -n 8; then say "waiting for another build of the Pulumi plugins on $CACHE"; flock 8; fi
    build_plugins
  fi
fi
# One Go build at a time per cache (several test sessions may call this together). The lock is
# taken per tool, so a caller that needs only the cluster tools is not held up by a build of
# pulumi queued behind them.
exec 9>"$CACHE/.lock"
for t in "${tools[@]}"; do
  if ! flock -n 9; then say "waiting for another tools/build.sh on $CACHE"; flock 9; fi
  build_tool "$t"
  flock -u 9
done
if [[ -n "$plugins_pid" ]]; then
  pid="$plugins_pid"; plugins_pid=""
  wait "$pid" || die "pulumi-plugins: the build failed (see the [pulumi-plugins] lines above)"
fi
$want_plugins && tools+=(pulumi-plugins)
say "done: ${tools[*]} in $((SECONDS - total_start))s (cache $CACHE)"
