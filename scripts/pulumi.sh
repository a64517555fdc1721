#!/usr/bin/env bash
# Runs `pulumi up|preview|destroy` on a stack, after checking every prerequisite and saying
# which one is missing and how to get it. `make deploy` / `make preview` / `make destroy` call
# this (dev by default).
#
# Defaults for a laptop, each overridable:
#   Pulumi CLI      `pulumi` on PATH, else built from the Go module proxy (tools/build.sh pulumi)
#   engine plugins  the language host beside the CLI (a normal install), else the Python language
#                   host and the kubernetes/random providers built into the tool cache
#                   (tools/build.sh pulumi-plugins); plugins already on PATH win
#   state backend   PULUMI_BACKEND_URL, else the one you are logged in to, else file://~ (local)
#   secrets         PULUMI_CONFIG_PASSPHRASE(_FILE), else a passphrase generated once in
#                   ~/.config/pganalytics/<stack>.passphrase (mode 600) for the local backend
#   cluster         (stacks on target `existing`) pganalytics:kubeconfig, else the current
#                   kubeconfig context, else a local SIMULATED cluster (scripts/local-cluster.sh:
#                   a real control plane whose pods KWOK only marks Ready; nothing runs in them),
#                   which `destroy` removes together with the stack
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
LOCAL_STATE="${PGA_LOCAL_STATE:-${XDG_STATE_HOME:-$HOME/.local/state}/pganalytics}"
export PGA_LOCAL_STATE="$LOCAL_STATE"

# --- Pulumi CLI and the engine's plugins ---------------------------------------------------
if ! command -v pulumi >/dev/null; then
  say "no pulumi on PATH: building the Pulumi CLI from the Go module proxy (tools/build.sh pulumi; about 5 minutes the first time)"
  tools/build.sh pulumi || die "could not build the Pulumi CLI. Install it with the official installer: curl -fsSL https://get.pulumi.com | sh"
  PATH="$(tools/build.sh bindir pulumi):$PATH"
fi
pulumi_dir="$(dirname "$(command -v pulumi)")"
if ! command -v pulumi-language-python >/dev/null && [[ ! -x "$pulumi_dir/pulumi-language-python" ]]; then
  # Not a normal Pulumi install (that ships the language host and downloads the providers):
  # the three plugins this program needs come from the tool cache.
  say "no Pulumi Python language host beside $(command -v pulumi): building the engine's plugins (tools/build.sh pulumi-plugins; about 40 minutes the first time on 2 cores, then cached)"
  tools/build.sh pulumi-plugins || die "could not build the Pulumi plugins (pulumi-language-python and the kubernetes and random providers).
  Or install Pulumi with its Python language host: curl -fsSL https://get.pulumi.com | sh"
  # After the user's PATH: a plugin that is already installed there is used first.
  PATH="$PATH:$(tools/build.sh bindir pulumi-plugins)"
  export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
fi
export PULUMI_SKIP_UPDATE_CHECK="${PULUMI_SKIP_UPDATE_CHECK:-true}"

# --- State backend and secrets provider -----------------------------------------------------
if [[ -z "${PULUMI_BACKEND_URL:-}" ]] && ! pulumi whoami >/dev/null 2>&1; then
  # metadata=skip: the file backend otherwise rewrites a sidecar `<stack>.json.attrs` in place
  # (not atomically, unlike the checkpoint), and a process killed mid-write leaves it empty:
  # every later command then fails with "failed to load checkpoint: EOF" (docs/RECOVERY.md).
  export PULUMI_BACKEND_URL="file://~?metadata=skip"
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

# --- The cluster (stacks that target an existing cluster) ---------------------------------
# A stack deployed onto the simulated cluster keeps using it (its config copy below marks it)
# until `destroy`; otherwise the stack's own kubeconfig or the current context; with neither,
# `up`/`preview` start the simulated cluster.
target="$(.venv/bin/python scripts/stack-target "$stack")"
local_config="$LOCAL_STATE/stacks/Pulumi.$stack.yaml"
on_local=false
extra=()
if [[ "$target" == "existing" ]]; then
  if [[ -f "$local_config" ]]; then
    on_local=true
  elif [[ "$action" != "destroy" ]]; then
    # (`pulumi config` also lists the project's defaults: only a value set on the stack counts.)
    if pulumi config --stack "$stack" --json 2>/dev/null | .venv/bin/python -c '
import json, sys
v = json.load(sys.stdin).get("pganalytics:kubeconfig") or {}
sys.exit(0 if v.get("secret") or v.get("value") else 1)'; then
      say "cluster: the kubeconfig in the stack's pganalytics:kubeconfig"
    elif kubectl config current-context >/dev/null 2>&1; then
      say "cluster: kubeconfig context $(kubectl config current-context)"
    else
      on_local=true
      say "no Kubernetes context (kubectl config current-context is empty) and no pganalytics:kubeconfig:"
      say "starting a local SIMULATED cluster for stack '$stack'. To use a real one instead: kind create cluster (or minikube start, k3d cluster create), then run again"
    fi
  fi
fi

simulated_notice() {
  cat <<EOF

  NOTE: stack '$stack' runs on a local SIMULATED cluster: a real Kubernetes control plane on
  127.0.0.1 whose three nodes are simulated by KWOK. Pods are marked Running and Ready, but
  no container runs, so the URLs below answer nothing. It shows what the stack creates.
  'make destroy' removes the stack and this cluster; for a working app, start a real cluster
  (e.g. kind create cluster) after that and run 'make deploy' again.
  kubectl: export KUBECONFIG=$LOCAL_STATE/local-cluster/kubeconfig

EOF
}

if $on_local; then
  fresh_cluster=false
  scripts/local-cluster.sh status || fresh_cluster=true
  KUBECONFIG="$(scripts/local-cluster.sh start)" || die "could not start the simulated cluster (see above)."
  export KUBECONFIG
  # The stack's settings, with the ingress set for this cluster: no controller can be installed
  # here (the Traefik chart is not reachable offline), its IngressClass `traefik` exists already.
  mkdir -p "$(dirname "$local_config")"
  .venv/bin/python - "Pulumi.$stack.yaml" "$local_config" <<'PY'
import sys, yaml
src, dest = sys.argv[1:]
doc = yaml.safe_load(open(src)) or {}
config = doc.setdefault("config", {}) or {}
doc["config"] = config
config["pganalytics:ingress"] = {
    **(config.get("pganalytics:ingress") or {}),
    "controller": "none",
    "className": "traefik",
}
with open(dest, "w") as out:
    out.write("# Written by scripts/pulumi.sh: Pulumi.<stack>.yaml for the local simulated cluster.\n")
    yaml.safe_dump(doc, out, sort_keys=False)
PY
  extra+=(--config-file "$local_config")
  # A new cluster has none of the objects the state may still list: refresh first.
  if $fresh_cluster && [[ "$action" != "preview" ]]; then extra+=(--refresh); fi
  say "cluster: the local simulated cluster (KUBECONFIG=$KUBECONFIG)"
fi

# Without a terminal there is nobody to answer the confirmation prompt.
confirm=(); [[ -t 0 ]] || confirm=(--yes --non-interactive)

case "$action" in
  preview) exec pulumi preview --diff --stack "$stack" "${extra[@]}" ;;
  up)
    pulumi up --stack "$stack" "${confirm[@]}" "${extra[@]}"
    say "stack '$stack' outputs:"
    pulumi stack output --stack "$stack"
    if $on_local; then simulated_notice; fi ;;
  destroy)
    pulumi destroy --stack "$stack" "${confirm[@]}" "${extra[@]}"
    if $on_local; then
      # Config kept: Pulumi.<stack>.yaml is the project's file.
      pulumi stack rm "$stack" --yes --preserve-config --non-interactive
      scripts/local-cluster.sh stop
      rm -f "$local_config"
      say "removed stack '$stack' and the local simulated cluster"
    fi ;;
esac
