#!/usr/bin/env bash
# Runs `pulumi up|preview|destroy` on a stack, after checking every prerequisite and saying
# which one is missing and how to get it. `make deploy` / `make preview` / `make destroy` call
# this (dev by default).
#
# Defaults for a laptop, each overridable:
#   dependencies    scripts/bootstrap.sh deploy: the program's virtualenv (requirements.lock)
#                   and kubectl/helm when missing; no test tooling, no Go
#   Pulumi CLI      `pulumi` on PATH (an ordinary install), else built from the Go module proxy
#                   as the offline fallback (tools/build.sh pulumi)
#   engine plugins  tools/build.sh pulumi-plugins: on PATH, the language host beside the CLI,
#                   the providers in ~/.pulumi/plugins at the versions of requirements.txt or
#                   installed there with `pulumi plugin install`; only when none of that is
#                   possible, built from source as the offline fallback
#   policy pack     `--policy-pack policy` on preview and up (policy/: the platform rules)
#   confirmation    `up`: the preview, then a prompt, then `pulumi up --skip-preview` (the
#                   engine does not preview twice). Without a terminal nobody can answer, so an
#                   explicit opt-in is needed: YES=1, or CI=true for stacks other than prod and
#                   enterprise (those need YES=1). PREVIEWED=1 (the deploy workflow on main,
#                   whose pull request showed the preview) skips the engine's preview pass.
#   state backend   PULUMI_BACKEND_URL, else the one you are logged in to, else the local file
#                   backend in $HOME/.pulumi
#   secrets         PULUMI_CONFIG_PASSPHRASE(_FILE), else a passphrase generated once in
#                   ~/.config/pganalytics/<stack>.passphrase (mode 600) for the local backend
#   stack settings  Pulumi.<stack>.yaml is read, never written: the engine gets a copy
#                   (--config-file, in ~/.local/state/pganalytics/stacks/) and the stack's
#                   secrets-provider settings (the passphrase salt) come from its state
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

# --- Who confirms ---------------------------------------------------------------------------
# Decided first, so a run that cannot be confirmed stops before it installs or builds anything.
interactive=false; [[ -t 0 ]] && interactive=true
approved=false
case "$stack" in
  prod|enterprise) [[ "${YES:-}" == 1 ]] && approved=true ;;
  *) [[ "${YES:-}" == 1 || "${CI:-}" == true ]] && approved=true ;;
esac
if [[ "$action" != preview ]] && ! $interactive && ! $approved; then
  case "$stack" in
    prod|enterprise) need="YES=1 (CI=true is not enough for '$stack')" ;;
    *) need="YES=1 (or CI=true)" ;;
  esac
  die "'$action' of stack '$stack' needs a confirmation, and there is no terminal to ask on.
  Run it from a terminal, or confirm in advance with $need, e.g. make ${action/up/deploy} STACK=$stack $need."
fi

scripts/bootstrap.sh deploy
export PATH="$ROOT/.tools/bin:$PATH"
LOCAL_STATE="${PGA_LOCAL_STATE:-${XDG_STATE_HOME:-$HOME/.local/state}/pganalytics}"
export PGA_LOCAL_STATE="$LOCAL_STATE"

# --- Pulumi CLI and the engine's plugins ---------------------------------------------------
if ! command -v pulumi >/dev/null; then
  say "no pulumi on PATH. Install it the ordinary way (https://www.pulumi.com/docs/install/); meanwhile, the offline fallback:"
  tools/build.sh pulumi || die "could not build the Pulumi CLI. Install it: curl -fsSL https://get.pulumi.com | sh (https://www.pulumi.com/docs/install/)"
  PATH="$(tools/build.sh bindir pulumi):$PATH"
fi
tools/build.sh pulumi-plugins || die "the Pulumi plugins this program needs are missing (see above)."
# Plugins built from source are not where the engine looks (beside the CLI, ~/.pulumi/plugins):
# they go on PATH, after the user's own, and the engine must not try to download others.
built_dirs="$(tools/build.sh plugins | awk '$3 == "built" {print $2}' | xargs -r -n1 dirname | sort -u | paste -sd: -)"
if [[ -n "$built_dirs" ]]; then
  PATH="$PATH:$built_dirs"
  export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
fi
export PULUMI_SKIP_UPDATE_CHECK="${PULUMI_SKIP_UPDATE_CHECK:-true}"
# The engine finds its plugins and settings in PULUMI_HOME, else in the account's home directory
# from the user database (not $HOME): the same place for a person, and what tools/build.sh
# looked in and installed into.
export PULUMI_HOME="${PULUMI_HOME:-$HOME/.pulumi}"

# --- State backend and secrets provider -----------------------------------------------------
if [[ -z "${PULUMI_BACKEND_URL:-}" ]] && ! pulumi whoami >/dev/null 2>&1; then
  # metadata=skip: the file backend otherwise rewrites a sidecar `<stack>.json.attrs` in place
  # (not atomically, unlike the checkpoint), and a process killed mid-write leaves it empty:
  # every later command then fails with "failed to load checkpoint: EOF" (docs/RECOVERY.md).
  # $HOME, not `~`: the engine resolves `file://~` to the account's home directory from the
  # user database, whatever HOME says, so two HOMEs of one account would share their stacks.
  export PULUMI_BACKEND_URL="file://$HOME?metadata=skip"
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

# --- The stack, and the settings the engine reads ------------------------------------------
# `pulumi stack init` writes the new stack's secrets-provider settings (the passphrase salt)
# into Pulumi.<stack>.yaml and rewrites the whole file (comments dropped, booleans turned into
# strings). So the stack is created in a scratch directory holding only Pulumi.yaml (the
# settings also go into the stack's state), and every command gets a copy of the stack file
# (--config-file); PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER makes the engine take the secrets
# provider from the state, and it writes it into that copy, never into the project's file.
stacks_dir="$LOCAL_STATE/stacks"
config_copy="$stacks_dir/Pulumi.$stack.yaml"
simulated_marker="$stacks_dir/$stack.simulated"
mkdir -p "$stacks_dir"
export PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER=true
if ! pulumi stack ls --json --non-interactive 2>/dev/null | .venv/bin/python -c '
import json, sys
sys.exit(0 if any(s["name"].split("/")[-1] == sys.argv[1] for s in json.load(sys.stdin)) else 1)' "$stack"; then
  scratch="$(mktemp -d)"
  cp Pulumi.yaml "$scratch/"
  (cd "$scratch" && pulumi stack init "$stack" --no-select --non-interactive >/dev/null) \
    || die "could not create stack '$stack' on $(pulumi whoami --verbose 2>/dev/null | grep -i 'backend url' || echo 'the backend')."
  rm -rf "$scratch"
  say "created stack '$stack' (its secrets settings are kept in its state; Pulumi.$stack.yaml is unchanged)"
fi

# write_config_copy [simulated]: Pulumi.<stack>.yaml as it is, for the engine; on the simulated
# cluster with the ingress set for it: no controller can be installed there (the Traefik chart
# is not reachable offline), its IngressClass `traefik` exists already.
write_config_copy() {
  .venv/bin/python - "Pulumi.$stack.yaml" "$config_copy" "${1:-}" <<'PY'
import sys, yaml
src, dest, mode = sys.argv[1:]
doc = yaml.safe_load(open(src)) or {}
if mode == "simulated":
    config = doc.get("config") or {}
    doc["config"] = config
    config["pganalytics:ingress"] = {
        **(config.get("pganalytics:ingress") or {}),
        "controller": "none",
        "className": "traefik",
    }
with open(dest + ".part", "w") as out:
    out.write(f"# Written by scripts/pulumi.sh from {src} for each command; edit that file instead.\n")
    yaml.safe_dump(doc, out, sort_keys=False)
PY
  mv "$config_copy.part" "$config_copy"
}
write_config_copy
extra=(--config-file "$config_copy")

# --- The cluster (stacks that target an existing cluster) ---------------------------------
# A stack deployed onto the simulated cluster keeps using it (the marker below) until
# `destroy`; otherwise the stack's own kubeconfig or the current context; with neither,
# `up`/`preview` start the simulated cluster.
target="$(.venv/bin/python scripts/stack-target "$stack")"
on_local=false
if [[ "$target" == "existing" ]]; then
  if [[ -f "$simulated_marker" ]]; then
    on_local=true
  elif [[ "$action" != "destroy" ]]; then
    # (`pulumi config` also lists the project's defaults: only a value set on the stack counts.)
    if pulumi config --stack "$stack" --config-file "$config_copy" --json 2>/dev/null | .venv/bin/python -c '
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
  if ! scripts/local-cluster.sh status; then
    fresh_cluster=true
    # Its control plane is built from source (Go) unless the tool cache has it already.
    cached="$(tools/build.sh list | grep -cE '^(etcd|kube-apiserver|kube-controller-manager|kube-scheduler|kwok) ' || true)"
    if ! command -v go >/dev/null && [[ "$cached" != 5 ]]; then
      die "there is no Kubernetes cluster to deploy stack '$stack' onto, and the local simulated
  cluster cannot start here: its control plane (kube-apiserver, etcd, KWOK) is built from source
  with Go, and no 'go' is on PATH. Either
    - create a cluster and run again: kind create cluster (or minikube start, k3d cluster create),
      or set pganalytics:kubeconfig; or
    - install Go >= $(sed -n 's/^GO_MIN_VERSION=//p' tools/versions.env) (https://go.dev/doc/install) and run again."
    fi
  fi
  KUBECONFIG="$(scripts/local-cluster.sh start)" || die "could not start the simulated cluster (see above)."
  export KUBECONFIG
  touch "$simulated_marker"
  write_config_copy simulated
  # A new cluster has none of the objects the state may still list: refresh first.
  if $fresh_cluster && [[ "$action" != "preview" ]]; then extra+=(--refresh); fi
  say "cluster: the local simulated cluster (KUBECONFIG=$KUBECONFIG)"
fi

policy=(--policy-pack policy)
case "$action" in
  preview) exec pulumi preview --diff --stack "$stack" "${policy[@]}" "${extra[@]}" ;;
  up)
    if $interactive; then
      # The user sees the preview and answers; the update then skips the engine's own preview.
      pulumi preview --diff --stack "$stack" "${policy[@]}" "${extra[@]}"
      read -r -p "Deploy these changes to stack '$stack'? [y/N] " answer
      [[ "$answer" == [yY] || "$answer" == [yY][eE][sS] ]] || die "not deployed (answer: '$answer')."
      pulumi up --yes --skip-preview --stack "$stack" "${policy[@]}" "${extra[@]}"
    elif [[ "${PREVIEWED:-}" == 1 ]]; then
      say "PREVIEWED=1: the changes were previewed and reviewed (the pull request's preview); updating without the engine's preview pass"
      pulumi up --yes --skip-preview --non-interactive --stack "$stack" "${policy[@]}" "${extra[@]}"
    else
      # Confirmed in advance (YES=1 / CI=true): nobody saw a preview, so the engine previews.
      pulumi up --yes --non-interactive --stack "$stack" "${policy[@]}" "${extra[@]}"
    fi
    say "stack '$stack' outputs:"
    pulumi stack output --stack "$stack"
    if $on_local; then simulated_notice; fi ;;
  destroy)
    if $interactive; then
      pulumi destroy --stack "$stack" "${extra[@]}"  # the engine shows what goes and asks
    else
      pulumi destroy --yes --non-interactive --stack "$stack" "${extra[@]}"
    fi
    if $on_local; then
      # Config kept: Pulumi.<stack>.yaml is the project's file.
      pulumi stack rm "$stack" --yes --preserve-config --non-interactive
      scripts/local-cluster.sh stop
      rm -f "$simulated_marker" "$config_copy"
      say "removed stack '$stack' and the local simulated cluster"
    fi ;;
esac
