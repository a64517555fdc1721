"""Before and after: two revisions of the program, measured in turn on one local control plane
(KWOK `instant`), so that a change's effect is not lost in the machine's drift. A benchmark,
not a test: it prints numbers.

For each revision (`git archive` into a temp dir, this checkout's virtualenv), RUNS times in
alternating order: the program once under the unit tier's mocks (CPU seconds), then on the
real engine a first `pulumi up --skip-preview` of the dev stack, a no-change `pulumi preview`,
and the destroy (not timed).

Usage: .venv/bin/python -m bench.compare BEFORE [AFTER] [--runs N]   (AFTER: the working tree)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import measure  # noqa: E402
from bench.run import pulumi, wait_namespace_gone  # noqa: E402
from tests.cluster.harness import STAGES, Cluster, build_tools  # noqa: E402
from tests.e2e.conftest import stack_config  # noqa: E402
from tests.e2e.engine import PROGRAM_ENTRIES, Project, build_engine  # noqa: E402
from tests.unit.harness import project_defaults  # noqa: E402


def checkout(rev: str, into: Path) -> Path:
    """The tree of `rev` in `into`, with this checkout's virtualenv."""
    into.mkdir()
    archive = subprocess.run(["git", "archive", rev], cwd=ROOT, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    (into / ".venv").symlink_to(ROOT / ".venv")
    return into


def retarget(project: Project, tree: Path) -> None:
    """The project's program entries point at `tree` instead of this checkout."""
    for entry in PROGRAM_ENTRIES:
        link = project.dir / entry
        if link.is_symlink():
            link.unlink()
        if (tree / entry).exists():
            link.symlink_to(tree / entry)


def mocks_cpu(tree: Path) -> float:
    """CPU seconds of one program run under `tree`'s own unit-tier runner (dev, existing)."""
    spec = {"stack": "dev", "config": {**project_defaults(), **stack_config("Pulumi.dev.yaml")}}
    runner = tree / "tests" / "unit" / "runner.py"
    return measure.run([sys.executable, str(runner)], input=json.dumps(spec), cwd=tree).sample.cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before")
    parser.add_argument("after", nargs="?", help="a revision (default: the working tree)")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    engine = build_engine()
    figures: dict[str, dict[str, measure.Series]] = {}
    with tempfile.TemporaryDirectory(prefix="pga-compare-") as tmp:
        trees = {"before": checkout(args.before, Path(tmp) / "before")}
        trees["after"] = checkout(args.after, Path(tmp) / "after") if args.after else ROOT
        cluster = Cluster(build_tools(), stages=STAGES["instant"])
        cluster.start()
        try:
            projects = {}
            for label, tree in trees.items():
                project = Project(engine, Path(tmp) / f"{label}-work", "dev")
                retarget(project, tree)
                namespace = f"pga-compare-{label}"
                config = stack_config("Pulumi.dev.yaml", chart={"namespace": namespace})
                project.init(config, {"pganalytics:kubeconfig": cluster.inline_kubeconfig()})
                projects[label] = (project, namespace)
            for i in range(args.runs):
                order = ["before", "after"] if i % 2 == 0 else ["after", "before"]
                for label in order:
                    project, namespace = projects[label]
                    series = figures.setdefault(label, {})
                    cpu = mocks_cpu(trees[label])
                    up = pulumi(project, "up", "--yes", "--skip-preview")
                    preview = pulumi(project, "preview", "--expect-no-changes")
                    pulumi(project, "destroy", "--yes")
                    wait_namespace_gone(cluster, namespace)
                    mock = measure.Sample(0, cpu, 0, os.getloadavg()[0])
                    samples = {"mocks": mock, "up": up.sample, "preview": preview.sample}
                    for key, sample in samples.items():
                        series.setdefault(key, measure.Series()).add(sample)
                    print(
                        f"==> [compare] run {i + 1} {label}: mocks CPU {cpu:.2f}s, up "
                        f"{up.sample.wall:.1f}s ({up.sample.cpu:.2f} CPU), preview "
                        f"{preview.sample.wall:.1f}s ({preview.sample.cpu:.2f} CPU)",
                        file=sys.stderr,
                        flush=True,
                    )
        finally:
            cluster.stop()
    every = [s for series in figures.values() for v in series.values() for s in v.samples]
    print(
        f"before {args.before}, after {args.after or 'the working tree'}; {measure.machine()}; "
        f"load {measure.loads(every)}; {args.runs} runs each, the first apart (cold)"
    )
    print("| measure | before: median s, CPU s | after: median s, CPU s |")
    print("|---|---|---|")
    rows = (
        ("program under mocks (CPU only)", "mocks"),
        ("`pulumi up --skip-preview`", "up"),
        ("no-change `pulumi preview`", "preview"),
    )
    for name, key in rows:
        cells = [
            f"{figures[label][key].median():.1f}, {figures[label][key].median('cpu'):.2f}"
            for label in ("before", "after")
        ]
        print(f"| {name} | {cells[0]} | {cells[1]} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
