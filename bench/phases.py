"""Where a no-change `pulumi preview` spends its seconds, from the CLI's own OpenTelemetry
spans (`pulumi preview --otel-traces file://...`): the stretches between the milestones of
its critical path, which follow one another, so they add up to the CLI's whole run."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

# (key, what happens in the stretch that ends at this milestone)
PHASES = (
    (
        "metadata",
        "CLI start; the language host's runtime metadata (`python --version`, "
        "`pip --version`), which the preview waits for",
    ),
    (
        "packages",
        "the checkpoint read; the language host's package scan (`python -m pip list`)",
    ),
    (
        "program",
        "Python's start and the program's own work (imports, settings, the previous state) up "
        "to the first resource that needs a provider plugin",
    ),
    (
        "providers",
        "the provider plugins' start and configuration (the kubernetes provider reads the API "
        "server's discovery); the first resources' Check and Diff",
    ),
    (
        "chart",
        "the v4 Chart: rendered in the kubernetes provider, one transform callback to the "
        "program and a Check and Diff per object",
    ),
    ("end", "the program's end, the providers' and language host's shutdown"),
)


class TraceError(RuntimeError):
    pass


def _spans(path: Path) -> list[tuple[str, str, int, int]]:
    """(service, name, start ns, end ns) of every span in an OTLP JSON-lines file."""
    spans = []
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        for rs in json.loads(line).get("resourceSpans", []):
            attrs = {a["key"]: a["value"] for a in rs.get("resource", {}).get("attributes", [])}
            service = attrs.get("service.name", {}).get("stringValue", "")
            for scope in rs.get("scopeSpans", []):
                for s in scope.get("spans", []):
                    start, end = int(s["startTimeUnixNano"]), int(s["endTimeUnixNano"])
                    spans.append((service, s["name"], start, end))
    return spans


def phases(trace: Path) -> dict[str, float]:
    """Seconds of each stretch of PHASES in one traced preview, plus `total` (the CLI's run),
    `about` and `pip_list` (the two language host calls on their own)."""
    cli = [(n, a, b) for svc, n, a, b in _spans(trace) if svc == "pulumi-cli"]

    def first(name: str) -> tuple[int, int]:
        found = sorted((a, b) for n, a, b in cli if n == name)
        if not found:
            raise TraceError(f"{trace}: no span '{name}' from the CLI")
        return found[0]

    root = first("pulumi")
    about = first("pulumirpc.LanguageRuntime/About")
    packages = first("pulumirpc.LanguageRuntime/GetRequiredPackages")
    run = first("pulumirpc.LanguageRuntime/Run")
    # The language host's own plugins start before the program; the providers' once it runs.
    plugins = sorted(a for n, a, _ in cli if n == "newPlugin" and a > run[0])
    if not plugins:
        raise TraceError(f"{trace}: no provider plugin started while the program ran")
    construct = first("pulumirpc.ResourceProvider/Construct")
    milestones = (
        about[1],
        packages[1],
        plugins[0],
        construct[0],
        construct[1],
        root[1],
    )
    result, previous = {}, root[0]
    for (key, _), at in zip(PHASES, milestones, strict=True):
        if at < previous:
            raise TraceError(f"{trace}: '{key}' ends before the stretch before it")
        result[key] = (at - previous) / 1e9
        previous = at
    result["total"] = (root[1] - root[0]) / 1e9
    result["about"] = (about[1] - about[0]) / 1e9
    result["pip_list"] = (packages[1] - packages[0]) / 1e9
    return result


def medians(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]} if runs else {}
