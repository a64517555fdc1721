"""`make bench`: the real Pulumi engine against plain helm, on the same local control plane
with the same merged chart values. A benchmark, not a test: it prints numbers.

For each KWOK stages file (instant: pods Ready as soon as they are scheduled, which shows the
fixed overhead; rollout: Ready 10-30 s after scheduling, the database 25-35 s, which weighs that
overhead against real waiting), on one fresh control plane:

  pulumi up (a first deploy of a dev-like stack)      vs  helm install --wait
  pulumi preview with no change (right after the up)  vs  helm upgrade --dry-run=server

each RUNS times (median reported), with the stack destroyed / the release uninstalled and
their namespace deleted between runs (not timed).

The values helm gets are the ones the program hands to its v4 Chart for the same stack config
(the program run under the unit tier's mocks, tests/unit/harness.py, records them; a v4 Chart
keeps no inputs in the state); the namespace (PSA labels) and the credentials Secret the
program creates are created for helm too (not timed).

Usage: .venv/bin/python -m bench.run [--runs N] [--stages instant,rollout]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.cluster.harness import INGRESS_CLASS, STAGES, Cluster, build_tools  # noqa: E402
from tests.e2e.engine import Project, build_engine  # noqa: E402

CHART = ROOT / "charts" / "pganalytics"
PULUMI_NS = "pga-bench-pulumi"
HELM_NS = "pga-bench-helm"
CHART_TYPE = "kubernetes:helm.sh/v4:Chart"


def log(msg: str) -> None:
    print(f"==> [bench] {msg}", file=sys.stderr, flush=True)


def timed(fn) -> float:
    t0 = time.monotonic()
    fn()
    return time.monotonic() - t0


def wait_namespace_gone(cluster: Cluster, ns: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        proc = cluster.kubectl("get", "namespace", ns, check=False)
        if proc.returncode != 0 and "NotFound" in proc.stderr:
            return
        time.sleep(0.5)
    raise RuntimeError(f"namespace {ns} was not deleted within {timeout}s")


def dev_config() -> dict:
    from tests.e2e.conftest import stack_config

    return stack_config("Pulumi.dev.yaml", chart={"namespace": PULUMI_NS})


def integral(value):
    """Numbers come back from the engine as floats; 1.0 -> 1, as a values file would have it."""
    if isinstance(value, dict):
        return {k: integral(v) for k, v in value.items()}
    if isinstance(value, list):
        return [integral(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def chart_values(config: dict) -> dict:
    """The values the program gives its Chart for `config` (the program under mocks)."""
    from tests.unit.harness import project_defaults, run_program

    result = run_program("dev", {**project_defaults(), **config})
    for r in result["resources"]:
        if r["type"] == CHART_TYPE:
            return integral(r["inputs"]["values"])
    raise RuntimeError("the program registered no v4 Chart")


def helm_prepare(cluster: Cluster) -> None:
    """What the program creates before its chart: the namespace and the credentials Secret."""
    ns = cluster.kubectl_json("get", "namespace", PULUMI_NS)
    labels = {k: v for k, v in ns["metadata"]["labels"].items() if k.startswith("pod-security")}
    secret = cluster.kubectl_json("get", "secret", "-n", PULUMI_NS, "pganalytics-credentials")
    manifest = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": HELM_NS, "labels": labels},
            },
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "pganalytics-credentials", "namespace": HELM_NS},
                "type": "Opaque",
                "data": secret["data"],
            },
        ],
    }
    cluster.kubectl("apply", "-f", "-", input=json.dumps(manifest))


def run_mode(engine, mode: str, runs: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"up": [], "preview": [], "helm_install": [], "helm_dry": []}
    with tempfile.TemporaryDirectory(prefix="pga-bench-") as tmp:
        cluster = Cluster(build_tools(), stages=STAGES[mode])
        cluster.start()
        try:
            project = Project(engine, Path(tmp), "dev")
            project.init(dev_config(), {"pganalytics:kubeconfig": cluster.inline_kubeconfig()})
            values_file = Path(tmp) / "values.json"
            values_file.write_text(json.dumps(chart_values(dev_config())))
            for i in range(runs):
                t_up = timed(project.up)
                t_pre = timed(lambda: project.preview("--expect-no-changes"))
                times["up"].append(t_up)
                times["preview"].append(t_pre)
                log(f"{mode} run {i + 1}: pulumi up {t_up:.1f}s, no-change preview {t_pre:.1f}s")
                helm_prepare(cluster)
                project.destroy()
                wait_namespace_gone(cluster, PULUMI_NS)

                base = ["pganalytics", str(CHART), "-n", HELM_NS, "-f", str(values_file)]
                t_inst = timed(
                    lambda b=base: cluster.helm("install", *b, "--wait", "--timeout", "10m")
                )
                t_dry = timed(lambda b=base: cluster.helm("upgrade", *b, "--dry-run=server"))
                times["helm_install"].append(t_inst)
                times["helm_dry"].append(t_dry)
                log(f"{mode} run {i + 1}: helm install --wait {t_inst:.1f}s, dry-run {t_dry:.1f}s")
                cluster.helm("uninstall", "pganalytics", "-n", HELM_NS, "--wait")
                cluster.kubectl("delete", "namespace", HELM_NS, "--wait=false")
                wait_namespace_gone(cluster, HELM_NS)
        finally:
            cluster.stop()
    return times


def table(mode: str, times: dict[str, list[float]], runs: int) -> str:
    med = {k: statistics.median(v) for k, v in times.items()}

    def fmt(v: list[float]) -> str:
        return ", ".join(f"{x:.1f}" for x in v)

    rows = [
        ("first deploy", "pulumi up", "up", "helm install --wait", "helm_install"),
        (
            "no-change preview",
            "pulumi preview",
            "preview",
            "helm upgrade --dry-run=server",
            "helm_dry",
        ),
    ]
    lines = [
        f"#### KWOK stages: {mode} ({runs} runs, median)",
        "",
        "| operation | pulumi | median s | helm | median s | ratio | runs (pulumi / helm) |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, pcmd, pk, hcmd, hk in rows:
        lines.append(
            f"| {label} | `{pcmd}` | {med[pk]:.1f} | `{hcmd}` | {med[hk]:.1f} | "
            f"{med[pk] / med[hk]:.2f} | {fmt(times[pk])} / {fmt(times[hk])} |"
        )
    return "\n".join(lines)


def machine() -> str:
    mem = ""
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB"
    return f"{os.cpu_count()} cores, {mem}, {platform.system()} {platform.machine()}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--stages", default="instant,rollout")
    args = parser.parse_args()
    modes = [m for m in args.stages.split(",") if m]
    for m in modes:
        if m not in STAGES:
            parser.error(f"unknown stages '{m}' (known: {', '.join(STAGES)})")
    engine = build_engine()
    version = subprocess.run(
        [str(engine.pulumi_bin / "pulumi"), "version"], capture_output=True, text=True
    ).stdout.strip()
    out = [f"Machine: {machine()}; pulumi {version}; ingress class {INGRESS_CLASS}.", ""]
    for mode in modes:
        times = run_mode(engine, mode, args.runs)
        out += [table(mode, times, args.runs), ""]
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
