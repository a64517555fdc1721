"""`make bench`: the real Pulumi engine against plain helm, on the local control plane of the
cluster tier (tests/cluster/harness.py), with the same chart values. A benchmark, not a test:
it prints numbers, and writes them into docs/PERFORMANCE.md between the markers of
bench/report.py (unless --no-write).

1. For each KWOK stages file (`instant`: pods Ready as soon as they are scheduled, which shows
   the fixed overhead; `rollout`: Ready 10-30 s after scheduling, the database 25-35 s, which
   weighs that overhead against real waiting), on one fresh control plane, RUNS times, pulumi
   first in even runs and helm first in odd ones:

     pulumi up --skip-preview, then a no-change pulumi preview       (dev stack)
     the same preview again, traced (not timed): where its seconds go  (bench/phases.py)
     pulumi up                (its own preview, then the update)
     pulumi up --skip-preview with PULUMI_SKIP_CHECKPOINTS=true       (instant only)
     kubectl apply namespace + Secret; helm install --wait --wait-for-jobs
     helm upgrade --dry-run=server; helm template | kubectl diff --server-side

   Both sides deploy the same objects: the values helm gets are the ones the program hands its
   v4 Chart for the same stack (the program run under the unit tier's mocks records them), and
   helm's timed work includes the namespace (with the program's Pod Security labels) and the
   credentials Secret the program creates before its chart. Between runs the stack is
   destroyed / the release uninstalled and the namespace deleted (not timed). After every
   deploy the bench counts the Services whose EndpointSlices hold a ready address.

2. Scaling: the enterprise stack's values with N collector targets (N = 1, 10, 50 by
   default), instant stages: the resources, a preview of the first deploy, `up
   --skip-preview` (with the peak memory of the engine and its plugins), a no-change preview.

3. Start-up of one pass: the program's imports per cluster target (`python -X importtime`
   under the unit tier's mocks), the language host's `pip list`, and the `pulumi preview` of a
   program that only imports pulumi (the floor of any Python program here).

Usage: .venv/bin/python -m bench.run [--runs N] [--stages instant,rollout] [--scale 1,10,50]
       [--scale-runs N] [--skip deploy,scale,startup] [--no-write] [--save FILE]
       .venv/bin/python -m bench.run --render FILE   (the block again from saved measurements)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import measure, phases, report  # noqa: E402
from bench.startup import startup  # noqa: E402
from tests.cluster.cnpg import install_crds  # noqa: E402
from tests.cluster.harness import STAGES, Cluster, build_tools  # noqa: E402
from tests.e2e.checks import services_not_ready  # noqa: E402
from tests.e2e.conftest import stack_config  # noqa: E402
from tests.e2e.engine import Engine, Project, build_engine  # noqa: E402

CHART = ROOT / "charts" / "pganalytics"
DOC = ROOT / "docs" / "PERFORMANCE.md"
PULUMI_NS = "pga-bench-pulumi"
HELM_NS = "pga-bench-helm"
SCALE_NS = "pga-bench-scale"
CHART_TYPE = "kubernetes:helm.sh/v4:Chart"
SECRET = "pganalytics-credentials"


def log(msg: str) -> None:
    print(f"==> [bench] {msg}", file=sys.stderr, flush=True)


def wait_namespace_gone(cluster: Cluster, ns: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        proc = cluster.kubectl("get", "namespace", ns, check=False)
        if proc.returncode != 0 and "NotFound" in proc.stderr:
            return
        time.sleep(0.5)
    raise RuntimeError(f"namespace {ns} was not deleted within {timeout}s")


def integral(value):
    """Numbers come back from the engine as floats; 1.0 -> 1, as a values file would have it."""
    if isinstance(value, dict):
        return {k: integral(v) for k, v in value.items()}
    if isinstance(value, list):
        return [integral(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def chart_values(stack: str, config: dict) -> dict:
    """The values the program gives its Chart for `config` (the program under mocks)."""
    from tests.unit.harness import project_defaults, run_program

    result = run_program(stack, {**project_defaults(), **config})
    if result["error"]:
        raise RuntimeError(f"the program failed under mocks: {result['error']}")
    for r in result["resources"]:
        if r["type"] == CHART_TYPE:
            return integral(r["inputs"]["values"])
    raise RuntimeError("the program registered no v4 Chart")


# ----- the two sides ------------------------------------------------------------------------


def pulumi(project: Project, *args: str, env: dict | None = None, check=True) -> measure.Result:
    return measure.run(
        ["pulumi", *args, "--stack", project.stack, "--non-interactive"],
        env={**project.env(), **(env or {})},
        cwd=project.dir,
        check=check,
    )


def helm_prep_manifest(cluster: Cluster) -> str:
    """The namespace (with the program's Pod Security labels) and the credentials Secret the
    program creates before its chart, for helm's namespace."""
    ns = cluster.kubectl_json("get", "namespace", PULUMI_NS)
    labels = {k: v for k, v in ns["metadata"]["labels"].items() if k.startswith("pod-security")}
    secret = cluster.kubectl_json("get", "secret", "-n", PULUMI_NS, SECRET)
    items = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": HELM_NS, "labels": labels}},
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": SECRET, "namespace": HELM_NS},
            "type": "Opaque",
            "data": secret["data"],
        },
    ]
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": items})


class Sides:
    """One stages file's control plane, the dev stack and the helm release on it."""

    def __init__(self, engine: Engine, cluster: Cluster, tmp: Path, result: report.ModeResult):
        self.cluster, self.result = cluster, result
        self.project = Project(engine, tmp, "dev")
        config = stack_config("Pulumi.dev.yaml", chart={"namespace": PULUMI_NS})
        self.project.init(config, {"pganalytics:kubeconfig": cluster.inline_kubeconfig()})
        self.values = tmp / "values.json"
        self.trace = tmp / "preview-trace.json"
        self.values.write_text(json.dumps(chart_values("dev", config)))
        self.prep: str | None = None  # helm's namespace + Secret, from the first pulumi up
        self.kubectl = str(cluster.tools.kubectl)
        self.helm_bin = str(cluster.tools.helm)

    def _ready(self, side: str, namespace: str) -> None:
        total = sum(
            1
            for s in self.cluster.kubectl_json("get", "services", "-n", namespace)["items"]
            if s["spec"].get("selector")
        )
        ready = total - len(services_not_ready(self.cluster, namespace))
        worst = self.result.services_ready.get(side, (ready, total))
        self.result.services_ready[side] = min(worst, (ready, total))

    def _destroy(self) -> None:
        pulumi(self.project, "destroy", "--yes")
        wait_namespace_gone(self.cluster, PULUMI_NS)

    def pulumi_side(self, checkpoints_too: bool) -> None:
        up = pulumi(self.project, "up", "--yes", "--skip-preview")
        self._ready("pulumi up --skip-preview", PULUMI_NS)
        preview = pulumi(self.project, "preview", "--expect-no-changes")
        self.result.add("up_skip", up.sample)
        self.result.add("preview", preview.sample)
        # Not timed: the same preview again, traced, for where its seconds go.
        self.trace.unlink(missing_ok=True)
        pulumi(self.project, "preview", "--expect-no-changes", f"--otel-traces=file://{self.trace}")
        self.result.phases.append(phases.phases(self.trace))
        if self.prep is None:
            self.prep = helm_prep_manifest(self.cluster)
        self._destroy()
        full = pulumi(self.project, "up", "--yes")
        self._ready("pulumi up", PULUMI_NS)
        self.result.add("up", full.sample)
        self._destroy()
        log(
            f"{self.result.mode}: pulumi up --skip-preview {up.sample.wall:.1f}s, "
            f"preview {preview.sample.wall:.1f}s, up {full.sample.wall:.1f}s"
        )
        if checkpoints_too:
            skip = {"PULUMI_SKIP_CHECKPOINTS": "true"}
            nockpt = pulumi(self.project, "up", "--yes", "--skip-preview", env=skip)
            self.result.add("up_nockpt", nockpt.sample)
            self._destroy()

    def helm_side(self) -> None:
        assert self.prep is not None, "the first run deploys the pulumi side first"
        env = self.cluster.client_env()
        base = ["pganalytics", str(CHART), "-n", HELM_NS, "-f", str(self.values)]
        prep = measure.run([self.kubectl, "apply", "-f", "-"], env=env, input=self.prep)
        install = measure.run(
            [self.helm_bin, "install", *base, "--wait", "--wait-for-jobs", "--timeout", "10m"],
            env=env,
        )
        self._ready("helm install --wait --wait-for-jobs", HELM_NS)
        self.result.add("helm_install", measure.combine(prep.sample, install.sample))
        dry = measure.run([self.helm_bin, "upgrade", *base, "--dry-run=server"], env=env)
        self.result.add("helm_dry", dry.sample)
        template = " ".join([self.helm_bin, "template", *base])
        diff = measure.run(
            [
                "bash",
                "-c",
                f"set -o pipefail; {template} | {self.kubectl} diff --server-side "
                "--force-conflicts -f -",
            ],
            env=env,
            check=False,
        )
        # kubectl diff: 0 no difference, 1 differences shown, >1 an error.
        if diff.returncode > 1:
            raise measure.CommandFailed(f"helm template | kubectl diff:\n{diff.stderr[-3000:]}")
        self.result.add("helm_diff", diff.sample)
        deployed = prep.sample.wall + install.sample.wall
        log(
            f"{self.result.mode}: helm prep + install {deployed:.1f}s, dry-run "
            f"{dry.sample.wall:.1f}s, template|diff {diff.sample.wall:.1f}s"
        )
        self.cluster.helm("uninstall", "pganalytics", "-n", HELM_NS, "--wait")
        self.cluster.kubectl("delete", "namespace", HELM_NS, "--wait=false")
        wait_namespace_gone(self.cluster, HELM_NS)


def deploy_mode(engine: Engine, mode: str, runs: int) -> report.ModeResult:
    result = report.ModeResult(mode)
    with tempfile.TemporaryDirectory(prefix="pga-bench-") as tmp:
        cluster = Cluster(build_tools(), stages=STAGES[mode])
        cluster.start()
        try:
            sides = Sides(engine, cluster, Path(tmp), result)
            for i in range(runs):
                if i % 2 == 0:
                    sides.pulumi_side(checkpoints_too=mode == "instant")
                    sides.helm_side()
                else:
                    sides.helm_side()
                    sides.pulumi_side(checkpoints_too=mode == "instant")
                log(f"{mode}: run {i + 1}/{runs} done (load {os.getloadavg()[0]:.1f})")
        finally:
            cluster.stop()
    return result


# ----- scaling --------------------------------------------------------------------------------


def collector_targets(n: int) -> list[dict]:
    """N collector targets: the chart's own database, then N-1 external servers, each with
    the fields the chart's schema requires of a target with a host (docs in values.yaml)."""
    targets: list[dict] = [{"name": "bundled"}]
    for i in range(1, n):
        targets.append(
            {
                "name": f"db{i:03d}",
                "host": f"pg-{i:03d}.databases.example.com",
                "port": 5432,
                "database": "postgres",
                "databases": ["app"],
                "username": "pganalytics_monitor",
                "existingSecret": "monitored-databases",
                "passwordKey": f"db{i:03d}-password",
            }
        )
    return targets


# enterprise's database mode, with the CRDs installed here instead of the operator's chart.
CNPG_WITHOUT_OPERATOR = {"mode": "cloudnativepg", "instances": 3, "operator": {"install": False}}


def scaling(engine: Engine, sizes: list[int], runs: int) -> list[report.ScalePoint]:
    points = []
    with tempfile.TemporaryDirectory(prefix="pga-bench-scale-") as tmp:
        cluster = Cluster(build_tools(), stages=STAGES["instant"])
        cluster.start()
        try:
            # enterprise's database is a CloudNativePG cluster: its CRDs here, the operator not
            # installed (its chart repository is not reachable offline), as tests/e2e does.
            install_crds(cluster)
            for n in sizes:
                project = Project(engine, Path(tmp) / f"n{n}", "enterprise")
                config = stack_config(
                    "Pulumi.enterprise.yaml",
                    # Protection on would refuse the destroy between runs; it changes no
                    # resource count and no await.
                    protect=False,
                    database=CNPG_WITHOUT_OPERATOR,
                    chart={
                        "namespace": SCALE_NS,
                        "values": {"collector": {"targets": collector_targets(n)}},
                    },
                )
                project.init(config, {"pganalytics:kubeconfig": cluster.inline_kubeconfig()})
                point = report.ScalePoint(n, 0)
                for i in range(runs):
                    create = pulumi(project, "preview")
                    up = pulumi(project, "up", "--yes", "--skip-preview")
                    preview = pulumi(project, "preview", "--expect-no-changes")
                    point.add("preview_create", create.sample)
                    point.add("up", up.sample)
                    point.add("preview", preview.sample)
                    point.resources = len(project.resources())
                    pulumi(project, "destroy", "--yes")
                    wait_namespace_gone(cluster, SCALE_NS)
                    log(
                        f"scale N={n} run {i + 1}/{runs}: {point.resources} resources, preview "
                        f"{create.sample.wall:.1f}s, up {up.sample.wall:.1f}s "
                        f"({up.sample.peak_mib:.0f} MiB), no-change preview "
                        f"{preview.sample.wall:.1f}s"
                    )
                points.append(point)
        finally:
            cluster.stop()
    return points


# ----- main -------------------------------------------------------------------------------


def versions(engine: Engine) -> str:
    def out(*argv: str) -> str:
        proc = subprocess.run(list(argv), capture_output=True, text=True)
        return proc.stdout.strip().splitlines()[0] if proc.stdout.strip() else "?"

    tools = build_tools()
    kubectl = subprocess.run(
        [str(tools.kubectl), "version", "--client", "-o", "json"], capture_output=True, text=True
    )
    client = json.loads(kubectl.stdout or "{}").get("clientVersion", {})
    return (
        f"pulumi {out(str(engine.pulumi_bin / 'pulumi'), 'version')}, "
        f"helm {out(str(tools.helm), 'version', '--short')}, "
        f"kubectl {client.get('gitVersion', '?')}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="runs per command (first is cold)")
    parser.add_argument("--stages", default="instant,rollout")
    parser.add_argument("--scale", default="1,10,50", help="collector target counts")
    # 5: with 3 (a median of 2) the step from 1 to 10 targets was lost in the noise.
    parser.add_argument("--scale-runs", type=int, default=5)
    parser.add_argument("--skip", default="", help="sections to leave out: deploy,scale,startup")
    parser.add_argument("--no-write", action="store_true", help="print only; docs untouched")
    parser.add_argument(
        "--save", type=Path, help="where to keep the measurements (default: a file in $TMPDIR)"
    )
    parser.add_argument(
        "--render", type=Path, help="measure nothing: write the block from a --save file"
    )
    args = parser.parse_args()
    if args.render:
        block = report.render(report.load(args.render))
        print(block)
        if not args.no_write:
            report.replace_block(DOC, block)
            log(f"wrote the figures of {args.render} into {DOC.relative_to(ROOT)}")
        return 0
    modes = [m for m in args.stages.split(",") if m]
    for m in modes:
        if m not in STAGES:
            parser.error(f"unknown stages '{m}' (known: {', '.join(STAGES)})")
    skip = set(filter(None, args.skip.split(",")))
    engine = build_engine()
    rep = report.Report(
        date=date.today().isoformat(),
        machine=measure.machine(),
        versions=versions(engine),
        runs=args.runs,
        scale_runs=args.scale_runs,
    )
    if "deploy" not in skip:
        rep.modes = [deploy_mode(engine, mode, args.runs) for mode in modes]
    if "scale" not in skip:
        rep.scale = scaling(engine, [int(n) for n in args.scale.split(",")], args.scale_runs)
    if "startup" not in skip:
        rep.startup = startup(engine)
    saved = (
        args.save
        or Path(tempfile.gettempdir()) / f"pga-bench-{time.strftime('%Y%m%d-%H%M%S')}.json"
    )
    report.save(rep, saved)
    log(f"measurements kept in {saved} (bench.run --render {saved} writes them again)")
    block = report.render(rep)
    print(block)
    if not args.no_write:
        complete = not skip and set(modes) >= {"instant", "rollout"}
        if not complete:
            log("not every section ran: docs/PERFORMANCE.md left as it is (see --no-write)")
        else:
            report.replace_block(DOC, block)
            log(f"wrote the figures into {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
