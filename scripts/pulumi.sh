#!/usr/bin/env bash
# Runs `pulumi up|preview|destroy` on a stack, after checking every prerequisite and saying
# which one is missing and how to get it. `make deploy` calls this for the dev stack.
#
# Defaults for a laptop, each overridable:
#   state backend   PULUMI_BACKEND_URL, else the one you are logged in to, else file://~ (local)
#   secrets         PULUMI_CONFIG_PASSPHRASE(_FILE), else a passphrase generated once in
#                   ~/.config/pganalytics/<stack>.passphrase (mode 600) for the local backend
#   cluster         the current kubeconfig context (dev targets an existing cluster)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

usage() { echo "usage: scripts/pulumi.sh up|preview|destroy [stack]" >&2; exit 2; }
die() { printf '\nerror: %s\n' "$*" >&2; exit 1; }
say() { printf '==> %s\n' "$*"; }

action="${1:-}"; stack="${2:-dev}"
case "$action" in up|preview|destroy) ;; *) usage ;; esac
[[ -f "Pulumi.$stack.yaml" ]] || die "no stack file Pulumi.$stack.yaml. Shipped stacks: dev, prod, enterprise; create another with 'pulumi stack init <name>'."

scripts/bootstrap.sh
export PATH="$ROOT/.tools/bin:$PATH"

# --- Pulumi CLI and its Python language host -----------------------------------------------
if ! command -v pulumi >/dev/null; then
  if [[ -x tools/build.sh ]]; then
    say "no pulumi on PATH: building the Pulumi CLI from the Go module proxy (tools/build.sh pulumi)"
    tools/build.sh pulumi || die "could not build the Pulumi CLI. Install it with the official installer: curl -fsSL https://get.pulumi.com | sh"
    PATH="$(tools/build.sh --print-bin pulumi):$PATH"
  fi
  command -v pulumi >/dev/null || die "the Pulumi CLI is not installed. Install it: curl -fsSL https://get.pulumi.com | sh (or 'brew install pulumi/tap/pulumi')."
fi
pulumi_dir="$(dirname "$(command -v pulumi)")"
if ! command -v pulumi-language-python >/dev/null && [[ ! -x "$pulumi_dir/pulumi-language-python" ]]; then
  die "the Pulumi Python language host (pulumi-language-python) is not installed next to $(command -v pulumi).
  It ships with the official Pulumi CLI: curl -fsSL https://get.pulumi.com | sh
  (it cannot be built from the Go module proxy: see docs/TEST_CLUSTER.md)."
fi

# --- Kubernetes context (stacks that target an existing cluster) ---------------------------
target="$(.venv/bin/python scripts/stack-target "$stack")"
if [[ "$target" == "existing" && "$action" != "destroy" ]]; then
  if ! kubectl config current-context >/dev/null 2>&1; then
    die "stack '$stack' deploys onto your current Kubernetes context, and kubectl has none.
  Start a local cluster and run again, e.g.: kind create cluster   (or: minikube start, k3d cluster create)
  Or give the stack a kubeconfig: pulumi config set --secret pganalytics:kubeconfig \"\$(cat ~/.kube/other)\" -s $stack"
  fi
  say "cluster: kubeconfig context $(kubectl config current-context)"
fi

# --- State backend and secrets provider -----------------------------------------------------
if [[ -z "${PULUMI_BACKEND_URL:-}" ]] && ! pulumi whoami >/dev/null 2>&1; then
  export PULUMI_BACKEND_URL="file://~"
  say "state: local file backend in ~/.pulumi (set PULUMI_BACKEND_URL or run 'pulumi login' to use a team backend)"
fi
if [[ -z "${PULUMI_CONFIG_PASSPHRASE:-}" && -z "${PULUMI_CONFIG_PASSPHRASE_FILE:-}" \
      && "${PULUMI_BACKEND_URL:-}" == file://* ]]; then
  pass_file="${XDG_CONFIG_HOME:-$HOME/.config}/pganalytics/$stack.passphrase"
  if [[ ! -s "$pass_file" ]]; then
    mkdir -p "$(dirname "$pass_file")"
    (umask 077; .venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(32))' > "$pass_file")
    say "secrets: generated a passphrase for stack '$stack' in $pass_file (keep it: it decrypts the stack's secrets)"
  fi
  export PULUMI_CONFIG_PASSPHRASE_FILE="$pass_file"
fi

pulumi stack select "$stack" --create --non-interactive >/dev/null \
  || die "could not select or create stack '$stack' on $(pulumi whoami --verbose 2>/dev/null | grep -i 'backend url' || echo 'the backend')."

case "$action" in
  preview) exec pulumi preview --diff --stack "$stack" ;;
  up|destroy)
    # Without a terminal there is nobody to answer the confirmation prompt.
    confirm=(); [[ -t 0 ]] || confirm=(--yes --non-interactive)
    exec pulumi "$action" --stack "$stack" "${confirm[@]}" ;;
esac
