#!/usr/bin/env bash
# The tools of the cluster and e2e test tiers and of `make deploy`, at the versions pinned in
# tools/versions.env (the Go tools and the Pulumi CLI) and requirements.txt (the Pulumi
# providers): found where an ordinary install puts them, else built from source into one cache
# directory as the offline fallback:
#
#   ${PGA_TOOLS_CACHE:-$HOME/.cache/pganalytics-tools}/<tool>-<version>/bin/<tool>
#   ${PGA_TOOLS_CACHE:-$HOME/.cache/pganalytics-tools}/pulumi-plugins/bin/   (the engine's plugins)
#
# Usage: tools/build.sh <tool>... | all | list | plugins | bindir <tool>
#   tools: etcd kube-apiserver kube-controller-manager kube-scheduler kwok pulumi pulumi-plugins
#   `all` builds the five cluster tools (name pulumi and pulumi-plugins explicitly).
#   `list` prints "<tool> <path of the binary>" for each tool found or built (changing nothing).
#   `plugins` prints "<plugin> <path> <source>" for the three engine plugins (changing nothing;
#   exit 1 when one is missing); source: path, beside-cli, pulumi-home or built.
#   `bindir <tool>` prints the directory to put on PATH for a built tool (exit 1 if not built).
#
# pulumi: a `pulumi` on PATH at the pinned version is used as it is (an ordinary install, e.g.
# the test workflow's); otherwise it is built from the Go module proxy.
# pulumi-plugins: the Python language host, the kubernetes and the random providers, which the
# CLI needs to run this program. Each is looked for, in this order: on PATH; the language host
# beside the CLI (an ordinary install ships it there), a provider in $PULUMI_HOME/plugins
# (~/.pulumi/plugins/resource-kubernetes-v<pin>/, where `pulumi plugin install` and the engine's
# automatic acquisition put it); an earlier offline build in the cache. A missing provider is
# then installed the ordinary way (`pulumi plugin install resource <name> <pin>`, when a CLI
# exists; PGA_OFFLINE=1 skips that), and only when that is impossible are the plugins built from
# source as the offline fallback, by ../shared/third_party/build.sh (their sources beside the
# clone; override with PGA_THIRD_PARTY), saying so when it starts. Named together with Go tools,
# the plugins job runs in the background, in parallel with them: on 2 cores the two builds
# overlap their downloads, links and single-threaded steps.
#
# Idempotent: a tool whose binary and build stamp (module@version, package, ldflags, Go version
# and the Go source of the scratch module in tools/go/<group>/) match is reused (without Go on
# PATH, a built binary is reused as it is); a changed pin builds a new <tool>-<version>
# directory. The upstream modules (k8s.io/kubernetes, go.etcd.io/etcd/server/v3,
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
PULUMI_HOME_DIR="${PULUMI_HOME:-$HOME/.pulumi}"
# Provider versions: the Python SDK pins of requirements.txt (the one place they are pinned).
provider_version() { sed -n "s/^pulumi-$1==\([^ ;#]*\).*/\1/p" "$ROOT/requirements.txt"; }

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
  command -v go >/dev/null || die "$1 needs building from source, and no 'go' is on PATH. Install Go >= $GO_MIN_VERSION (https://go.dev/doc/install) and run again."
  local have
  have="$(go env GOVERSION)"; have="${have#go}"
  if [[ "$(printf '%s\n%s\n' "$GO_MIN_VERSION" "$have" | sort -V | head -n1)" != "$GO_MIN_VERSION" ]]; then
    die "Go $have is too old: $1 needs Go >= $GO_MIN_VERSION."
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
  if [[ "$tool" == pulumi ]] && pinned_cli_on_path; then
    say "pulumi $VERSION: using $(command -v pulumi) (on PATH, the pinned version)"
    return 0
  fi
  if ! command -v go >/dev/null && [[ -x "$dest/$tool" ]]; then
    say "$tool $VERSION: using the cached $dest/$tool (no Go on PATH to check its build stamp)"
    return 0
  fi
  check_go "$tool $VERSION"
  command -v jq >/dev/null || die "jq is needed to build $tool (apt-get install jq)."
  local stamp
  stamp="$(build_stamp "$src")"
  if [[ -x "$dest/$tool" && "$(cat "$dest/.build-stamp" 2>/dev/null)" == "$stamp" ]]; then
    say "$tool $VERSION: up to date ($dest/$tool)"
    return 0
  fi
  local start=$SECONDS
  if [[ "$tool" == pulumi ]]; then
    say "pulumi $VERSION: no pulumi $VERSION on PATH: building the CLI from source as the offline fallback (an ordinary install needs no build: https://www.pulumi.com/docs/install/)"
  fi
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

# --- the Pulumi CLI and the engine's plugins: found, installed, or built ---------------------

# pinned_cli_on_path: true when `pulumi` on PATH is the pinned version (an ordinary install).
pinned_cli_on_path() {
  command -v pulumi >/dev/null && [[ "$(pulumi version 2>/dev/null)" == "$PULUMI_VERSION" ]]
}

# cli_path: the Pulumi CLI the engine runs: the one on PATH (any version), else the built one.
cli_path() {
  local built="$CACHE/pulumi-$PULUMI_VERSION/bin/pulumi"
  if command -v pulumi >/dev/null; then command -v pulumi
  elif [[ -x "$built" ]]; then echo "$built"
  else return 1
  fi
}

# find_plugin <plugin>: prints "<path> <source>" of the plugin the engine would use, or fails.
# (The cache's own directory on PATH does not count as PATH: it is the offline build.)
find_plugin() {
  local p="$1" found cli dir
  if found="$(command -v "$p")" && [[ "$(dirname "$found")" != "$PLUGINS_DIR/bin" ]]; then
    echo "$found path"; return 0
  fi
  case "$p" in
    pulumi-language-python)
      if cli="$(cli_path)" && [[ -x "$(dirname "$cli")/$p" ]]; then
        echo "$(dirname "$cli")/$p beside-cli"; return 0
      fi ;;
    pulumi-resource-*)
      dir="$PULUMI_HOME_DIR/plugins/resource-${p#pulumi-resource-}-v$(provider_version "${p#pulumi-resource-}")"
      if [[ -x "$dir/$p" && ! -e "$dir.partial" ]]; then echo "$dir/$p pulumi-home"; return 0; fi ;;
  esac
  if [[ -x "$PLUGINS_DIR/bin/$p" ]]; then echo "$PLUGINS_DIR/bin/$p built"; return 0; fi
  return 1
}

missing_plugins() {
  local p
  for p in "${PLUGINS[@]}"; do find_plugin "$p" >/dev/null || echo "$p"; done
}

# install_providers <plugin>...: `pulumi plugin install` of the missing providers at their
# pins, into $PULUMI_HOME/plugins. Fails (quietly) when there is no CLI or no network.
install_providers() {
  local cli p name version
  [[ "${PGA_OFFLINE:-}" != 1 ]] || return 1
  cli="$(cli_path)" || return 1
  for p in "$@"; do
    [[ "$p" == pulumi-resource-* ]] || return 1  # the language host comes with the CLI
    name="${p#pulumi-resource-}"; version="$(provider_version "$name")"
    [[ -n "$version" ]] || die "requirements.txt pins no pulumi-$name (the version of its provider)"
    say "pulumi-plugins: pulumi plugin install resource $name v$version"
    PULUMI_HOME="$PULUMI_HOME_DIR" timeout 600 "$cli" plugin install resource "$name" "v$version" >&2 2>&1 || return 1
  done
}

# build_plugins: the three plugins found or installed the ordinary way; else built from source
# by the third-party build script (idempotent: it keeps a stamp per plugin).
build_plugins() {
  local missing
  missing="$(missing_plugins)"
  if [[ -n "$missing" ]] && install_providers $missing; then missing="$(missing_plugins)"; fi
  if [[ -n "$missing" ]]; then
    local why="no Pulumi CLI to install them with"
    if [[ "${PGA_OFFLINE:-}" == 1 ]]; then why="PGA_OFFLINE=1"
    elif grep -q pulumi-language-python <<<"$missing"; then
      why="no Python language host on PATH or beside the CLI (an ordinary Pulumi install ships it)"
    elif cli_path >/dev/null; then why="'pulumi plugin install' failed (no network?)"
    fi
    [[ -x "$THIRD_PARTY/build.sh" ]] || die "pulumi-plugins: missing $(echo $missing) ($why), and \
no plugin sources to build them from ($THIRD_PARTY/build.sh). Install Pulumi the ordinary way \
(https://www.pulumi.com/docs/install/: it ships the language host; the providers then install \
with 'pulumi plugin install' or on first use), or put the three plugins on PATH."
    local start=$SECONDS
    say "pulumi-plugins: missing $(echo $missing) ($why): building ${PLUGINS[*]} from source as the offline fallback, with $THIRD_PARTY/build.sh into $PLUGINS_DIR"
    "$THIRD_PARTY/build.sh" "$PLUGINS_DIR" || die "pulumi-plugins: $THIRD_PARTY/build.sh failed; see its output above."
    missing="$(missing_plugins)"
    [[ -z "$missing" ]] || die "pulumi-plugins: $THIRD_PARTY/build.sh succeeded but these are still missing: $(echo $missing)"
    say "pulumi-plugins: built in $PLUGINS_DIR/bin ($((SECONDS - start))s)"
  fi
  local p
  for p in "${PLUGINS[@]}"; do say "pulumi-plugins: $p: $(find_plugin "$p")"; done
}

[[ $# -gt 0 ]] || { sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 2; }

if [[ "$1" == list ]]; then
  for t in "${CLUSTER_TOOLS[@]}" pulumi; do
    tool_spec "$t"
    if [[ "$t" == pulumi ]] && pinned_cli_on_path; then echo "pulumi $(command -v pulumi)"
    elif [[ -x "$CACHE/$t-$VERSION/bin/$t" ]]; then echo "$t $CACHE/$t-$VERSION/bin/$t"
    fi
  done
  for p in "${PLUGINS[@]}"; do
    if found="$(find_plugin "$p")"; then echo "$p ${found% *}"; fi
  done
  exit 0
fi

if [[ "$1" == plugins ]]; then
  status=0
  for p in "${PLUGINS[@]}"; do
    if found="$(find_plugin "$p")"; then echo "$p $found"
    else say "$p: not found (run: tools/build.sh pulumi-plugins)"; status=1
    fi
  done
  exit "$status"
fi

if [[ "$1" == bindir ]]; then
  [[ $# -eq 2 && "$2" != pulumi-plugins ]] || die "usage: tools/build.sh bindir <tool> (plugins: tools/build.sh plugins)"
  tool_spec "$2"
  if [[ "$2" == pulumi ]] && pinned_cli_on_path; then
    dirname "$(command -v pulumi)"
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
