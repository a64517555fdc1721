"""docs/PERFORMANCE.md carries the figures of `make bench` in a generated block: the structure
the benchmark writes (bench/report.py), not the numbers, which depend on the machine."""

from __future__ import annotations

from bench import report
from bench.measure import Sample, Series
from bench.phases import PHASES
from tests.conftest import ROOT

DOC = ROOT / "docs" / "PERFORMANCE.md"


def test_the_generated_block_has_what_make_bench_writes():
    block = report.block_of(DOC.read_text())
    assert report.problems(block) == []


def _series(*walls: float) -> Series:
    series = Series()
    for wall in walls:
        series.add(Sample(wall=wall, cpu=wall / 2, peak_mib=100 * wall, load=1.0))
    return series


def _report() -> report.Report:
    machine = "2 cores, 24 GiB, Linux x86_64"
    rep = report.Report(date="2026-01-01", machine=machine, versions="v", runs=3)
    for mode in ("instant", "rollout"):
        result = report.ModeResult(mode, services_ready={"pulumi up": (3, 3)})
        for key in report.ROWS:
            result.series[key] = _series(3.0, 2.0, 2.5)
        for scale in (1.5, 1.0, 1.2):
            run = dict.fromkeys((key for key, _ in PHASES), 0.1 * scale)
            result.phases.append({**run, "total": 0.6 * scale, "about": 0.05, "pip_list": 0.2})
        rep.modes.append(result)
    for n, resources in ((1, 40), (10, 49), (50, 89)):
        point = report.ScalePoint(n, resources)
        for key in ("preview_create", "up", "preview"):
            point.series[key] = _series(1.0 + n / 10, 1.0 + n / 10)
        rep.scale.append(point)
    rep.scale_runs = 2
    rep.startup = report.Startup(
        {"existing": [800.0]},
        {"existing": [1.5]},
        {"existing": [("pulumi", 300.0)]},
        _series(0.3),
        _series(2.0),
        {"as is": 1.0, "frozen": 0.1},
        {"pure Python": 100.0, "libyaml": 3.0},
    )
    return rep


def test_what_the_bench_renders_passes_the_check_and_a_missing_ratio_fails_it():
    block = report.render(_report())
    assert report.problems(block) == []
    assert report.block_of(f"before\n{block}\nafter") == block
    without = "\n".join(line for line in block.splitlines() if "rollout: up / helm" not in line)
    assert report.problems(without) == [
        "no line '- rollout: up / helm install: ratio <x> (goal <= 1.2: ...)'"
    ]


def test_the_stretches_of_the_traced_preview_are_rendered_without_the_cold_run():
    rep = _report()
    block = report.render(rep)
    # Median of the runs after the first (1.0 and 1.2 times the base); with it, 0.12 and 0.72.
    assert "| program | 0.11 |" in block and "| whole run | 0.66 |" in block
    rep.modes[0].phases = []
    assert report.problems(report.render(rep)) == [
        "no stretches of the traced preview for `instant`"
    ]


def test_saved_measurements_render_the_same_block(tmp_path):
    rep = _report()
    report.save(rep, tmp_path / "bench.json")
    assert report.render(report.load(tmp_path / "bench.json")) == report.render(rep)
