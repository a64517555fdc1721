"""What one pass (a preview, or the update of an `up`) pays before its first resource: the
program's imports per cluster target, the language host's package scan, and the floor of
any Python program with this CLI, backend and passphrase."""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import yaml

from bench import measure
from bench.report import Startup
from components.settings.base import YAML_LOADER
from tests.e2e.engine import Engine, Project
from tests.unit.harness import TARGETS, stack_config

ROOT = Path(__file__).resolve().parents[1]
RUNNER = ROOT / "tests" / "unit" / "runner.py"
RUNS = 5


def import_times(target: str) -> tuple[float, Counter, float]:
    """One program run under the unit tier's mocks (the dev stack on `target`): milliseconds
    of all its imports and per top-level package (`python -X importtime`), and the CPU
    seconds of the whole run (interpreter, imports, settings, registrations, exit)."""
    spec = {"stack": "dev", "config": stack_config("dev", target)}
    proc = measure.run(
        [sys.executable, "-X", "importtime", str(RUNNER)], input=json.dumps(spec), cwd=ROOT
    )
    groups: Counter = Counter()
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = line.split(":", 1)[1].split("|")
        # Top-level imports are indented by one space; nested ones by more.
        if len(name) - len(name.lstrip()) == 1:
            groups[name.strip().split(".")[0]] += int(cumulative) / 1000
    return sum(groups.values()), groups, proc.sample.cpu


# Imports what the program imports on the `existing` target, then exits: how long the
# interpreter's exit takes after them, with the cyclic collector as it is and with those objects
# frozen (what __main__.py does).
EXIT_PROBE = """
import gc, sys, time
import pulumi_kubernetes as k8s
k8s.core.v1.Namespace, k8s.apps.v1.Deployment, k8s.helm.v4.Chart
import components.release, components.platform, components.settings
if sys.argv[1] == "frozen":
    gc.freeze()
print(time.time(), flush=True)
"""


def exit_seconds(mode: str) -> float:
    proc = measure.run([sys.executable, "-c", EXIT_PROBE, mode], cwd=ROOT)
    return time.time() - float(proc.stdout.strip())


def yaml_ms(loader) -> float:
    text = (ROOT / "charts" / "pganalytics" / "values.yaml").read_text()
    started = time.perf_counter()
    yaml.load(text, Loader=loader)
    return (time.perf_counter() - started) * 1000


def empty_program(engine: Engine, tmp: Path) -> Project:
    """A project whose program only imports pulumi, with this repository's virtualenv."""
    project = Project(engine, tmp, "floor")
    for entry in project.dir.iterdir():
        if entry.name != ".venv":
            entry.unlink()
    (project.dir / "Pulumi.yaml").write_text(
        "name: floor\nruntime:\n  name: python\n  options:\n    virtualenv: .venv\n"
    )
    (project.dir / "__main__.py").write_text("import pulumi  # noqa: F401\n")
    project.init({})
    return project


def startup(engine: Engine) -> Startup:
    imports: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    top: dict[str, list[tuple[str, float]]] = {}
    for target in TARGETS:
        runs = [import_times(target) for _ in range(RUNS)]
        imports[target] = [total for total, _, _ in runs]
        cpu[target] = [seconds for _, _, seconds in runs]
        names = {name for _, groups, _ in runs for name, _ in groups.most_common(4)}
        medians = {n: statistics.median(g.get(n, 0) for _, g, _ in runs) for n in names}
        top[target] = sorted(medians.items(), key=lambda kv: -kv[1])[:4]
    exits = {mode: [exit_seconds(mode) for _ in range(RUNS)] for mode in ("as is", "frozen")}
    parse = {
        name: [yaml_ms(loader) for _ in range(RUNS)]
        for name, loader in (("pure Python", yaml.SafeLoader), ("libyaml", YAML_LOADER))
    }
    pip_list = measure.Series()
    for _ in range(RUNS):
        proc = measure.run([sys.executable, "-m", "pip", "list", "--format", "json"])
        pip_list.add(proc.sample)
    floor = measure.Series()
    with tempfile.TemporaryDirectory(prefix="pga-bench-floor-") as tmp:
        project = empty_program(engine, Path(tmp))
        for _ in range(RUNS):
            proc = measure.run(
                ["pulumi", "preview", "--stack", project.stack, "--non-interactive"],
                env=project.env(),
                cwd=project.dir,
            )
            floor.add(proc.sample)
    return Startup(
        imports,
        cpu,
        top,
        pip_list,
        floor,
        {k: statistics.median(v) for k, v in exits.items()},
        {k: statistics.median(v) for k, v in parse.items()},
    )
