#!/usr/bin/env bash
# `make lock`: regenerates the Python lock files from the requirements files, with the hash of
# every distribution of every pinned version (any platform), which scripts/bootstrap.sh installs
# with pip's --require-hashes:
#
#   requirements.lock       from requirements.txt (what deploying needs), Python >= 3.10
#   requirements-dev.lock   from requirements-dev.txt (+ requirements.txt), Python >= 3.11,
#                           held to requirements.lock's versions of the packages they share
#   requirements-checkov.lock  from requirements-checkov.txt (checkov's own venv), Python >= 3.11
#
# Both are universal resolutions (`uv pip compile --universal --generate-hashes`): one lock for
# Linux, macOS and Windows and every supported Python. Each lock's first line is the SHA-256 of
# the requirements files it was made from; bootstrap refuses a lock whose inputs changed, and
# tests/project/test_tooling.py fails on it. Versions already in a lock are kept (uv's
# preferences). uv is the version pinned in requirements-dev.txt, installed into .tools/lock
# (from requirements-dev.lock, hashes checked, when it lists it).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
LOCK_VENV=.tools/lock

say() { printf '==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

uv_pin="$(grep -E '^uv==' requirements-dev.txt)" || die "requirements-dev.txt pins no uv (uv==<version>)"
if [[ "$("$LOCK_VENV/bin/uv" --version 2>/dev/null | cut -d' ' -f2)" != "${uv_pin#uv==}" ]]; then
  say "installing $uv_pin into $LOCK_VENV"
  "$PYTHON" -m venv "$LOCK_VENV"
  # The hashes of the current lock, when it has this uv; the first lock has none to check.
  req="$(mktemp)"; trap 'rm -f "$req"' EXIT
  "$PYTHON" - "$uv_pin" requirements-dev.lock > "$req" <<'PY'
import re, sys
pin, lock = sys.argv[1], sys.argv[2]
try:
    text = open(lock).read()
except FileNotFoundError:
    text = ""
m = re.search(rf"^{re.escape(pin)} \\\n((?:    --hash=\S+(?: \\)?\n)+)", text, re.M)
print(f"{pin} " + " ".join(re.findall(r"--hash=\S+", m.group(1))) if m else pin)
PY
  flags=(); grep -q -- --hash= "$req" && flags=(--require-hashes)
  "$LOCK_VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps "${flags[@]}" -r "$req"
fi

compile() {  # compile <lock> <python version> <inputs...> [-- uv options]
  local lock="$1" python="$2"; shift 2
  local inputs=() opts=()
  while [[ $# -gt 0 && "$1" != -- ]]; do inputs+=("$1"); shift; done
  [[ $# -gt 0 ]] && { shift; opts=("$@"); }
  say "locking ${inputs[*]} -> $lock (Python >= $python)"
  # uv reads the output file's pins as preferences: versions already locked stay as they are
  # unless a requirements file asks for another, so a lock changes only where its inputs did.
  local part="$lock.part"
  if [[ -f "$lock" ]]; then cp "$lock" "$part"; else rm -f "$part"; fi
  UV_PYTHON_DOWNLOADS=never "$LOCK_VENV/bin/uv" pip compile --quiet --universal \
    --generate-hashes --python-version "$python" --custom-compile-command "make lock" \
    "${opts[@]}" --output-file "$part" "${inputs[-1]}" >/dev/null
  { echo "# inputs-sha256: $(cat "${inputs[@]}" | sha256sum | cut -d' ' -f1)"; grep -v '^# inputs-sha256: ' "$part"; } > "$part.new"
  mv "$part.new" "$lock"
  rm -f "$part"
}

compile requirements.lock 3.10 requirements.txt
compile requirements-dev.lock 3.11 requirements.txt requirements-dev.txt -- -c requirements.lock
# checkov lives in a venv of its own (.tools/checkov): its pins clash with the project's.
compile requirements-checkov.lock 3.11 requirements-checkov.txt
say "done: commit requirements.lock, requirements-dev.lock and requirements-checkov.lock"
