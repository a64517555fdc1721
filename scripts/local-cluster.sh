#!/usr/bin/env bash
# A local *simulated* Kubernetes cluster for `make deploy` on a machine without a kubeconfig
# context: the cluster test tier's control plane (etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler on 127.0.0.1, built by tools/build.sh) with three KWOK nodes. KWOK only marks
# pods Running and Ready: no container runs, so nothing answers on the app's URLs. It shows what
# the stack creates, not a working app.
#
# Usage: scripts/local-cluster.sh start|stop|status|kubeconfig
#   start       start it in the background (no-op when it runs); prints its kubeconfig path
#   stop        stop it and delete its files (certificates, etcd data)
#   status      exit 0 when it runs
#   kubeconfig  print the path of its admin kubeconfig (exit 1 when it does not run)
#
# Its files live in $PGA_LOCAL_STATE/local-cluster (default PGA_LOCAL_STATE:
# ${XDG_STATE_HOME:-~/.local/state}/pganalytics).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="${PGA_LOCAL_STATE:-${XDG_STATE_HOME:-$HOME/.local/state}/pganalytics}/local-cluster"
KUBECONFIG_FILE="$STATE/kubeconfig"
PID_FILE="$STATE/harness.pid"
LOG="$STATE/harness.log"

say() { printf '==> [local-cluster] %s\n' "$*" >&2; }
die() { printf 'error: [local-cluster] %s\n' "$*" >&2; exit 1; }

running() {
  local pid
  pid="$(cat "$PID_FILE" 2>/dev/null)" || return 1
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null \
    && grep -q "tests/cluster/harness.py" "/proc/$pid/cmdline" 2>/dev/null \
    && [[ -s "$KUBECONFIG_FILE" ]]
}

start() {
  if running; then echo "$KUBECONFIG_FILE"; return 0; fi
  stop_quietly
  say "building the control-plane tools if needed (tools/build.sh all; the first time takes minutes)"
  "$ROOT/tools/build.sh" all >&2 || die "could not build the control-plane tools (see above)."
  mkdir -p "$STATE"
  say "starting a simulated cluster: kube-apiserver on 127.0.0.1 with 3 KWOK nodes (log: $LOG)"
  # Its own session: it outlives this command (and `make deploy`) until `stop`.
  setsid "$ROOT/.venv/bin/python" "$ROOT/tests/cluster/harness.py" \
    --workdir "$STATE/cluster" --kubeconfig-out "$KUBECONFIG_FILE" \
    </dev/null >"$LOG" 2>&1 &
  echo $! >"$PID_FILE"
  local waited=0
  until [[ -s "$KUBECONFIG_FILE" ]]; do
    if ! kill -0 "$(cat "$PID_FILE")" 2>/dev/null; then
      die "the simulated cluster did not start. Last lines of $LOG:
$(tail -n 30 "$LOG")"
    fi
    (( waited++ < 300 )) || { stop_quietly; die "the simulated cluster was not ready after 150 s; see $LOG"; }
    sleep 0.5
  done
  say "simulated cluster ready (kubeconfig $KUBECONFIG_FILE)"
  echo "$KUBECONFIG_FILE"
}

stop_quietly() {
  local pid
  pid="$(cat "$PID_FILE" 2>/dev/null || true)"
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null \
      && grep -q "tests/cluster/harness.py" "/proc/$pid/cmdline" 2>/dev/null; then
    kill -TERM "$pid"
    local i
    for i in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid"; fi
  fi
  rm -rf "$STATE"
}

case "${1:-}" in
  start) start ;;
  stop)
    if running; then say "stopping the simulated cluster"; else say "no simulated cluster runs"; fi
    stop_quietly ;;
  status) running ;;
  kubeconfig) running || die "no simulated cluster runs (start one: scripts/local-cluster.sh start)"; echo "$KUBECONFIG_FILE" ;;
  *) sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
