#!/usr/bin/env python3
"""Per-tier summary of the pytest runs of scripts/test.sh, from their JUnit XML reports.

Usage: scripts/tier_summary.py REPORT.xml... [--prerequisite=TEXT]...
Prints one line per tier (tests/<tier>) with its counts and the failing tests, then the
prerequisites that could not be installed; exits 1 when anything failed or a report is missing
(a pytest run that died before writing it)."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

TIERS = ("project", "chart", "unit", "backup", "cluster", "e2e")
SHOWN_FAILURES = 15


def tier_of(case: ET.Element) -> str:
    """tests.unit.test_x (classname) or tests/unit/test_x.py (a collection error's name)."""
    for text in (case.get("classname") or "", case.get("name") or ""):
        parts = text.replace("/", ".").split(".")
        if len(parts) > 1 and parts[0] == "tests":
            return parts[1]
    return "other"


def case_id(case: ET.Element) -> str:
    module = (case.get("classname") or "").replace(".", "/")
    return f"{module}.py::{case.get('name')}" if module else str(case.get("name"))


def summarize(reports: list[Path]) -> tuple[list[str], bool]:
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    failures: dict[str, list[str]] = defaultdict(list)
    lines, failed = [], False
    for report in reports:
        if not report.is_file():
            lines.append(f"  {report.name}: no report: that pytest run did not finish")
            failed = True
            continue
        for case in ET.parse(report).getroot().iter("testcase"):
            tier = tier_of(case)
            kinds = {child.tag for child in case}
            if kinds & {"failure", "error"}:
                counts[tier]["failed"] += 1
                failures[tier].append(case_id(case))
            elif "skipped" in kinds:
                counts[tier]["skipped"] += 1
            else:
                counts[tier]["passed"] += 1
    for tier in [*TIERS, *sorted(set(counts) - set(TIERS))]:
        if tier not in counts:
            continue
        c = counts[tier]
        verdict = "FAILED" if c["failed"] else "ok"
        parts = [f"{c[k]} {k}" for k in ("passed", "failed", "skipped") if c[k]]
        lines.append(f"  {tier:<8} {verdict:<6} {', '.join(parts)}")
        for test in failures[tier][:SHOWN_FAILURES]:
            lines.append(f"           - {test}")
        if len(failures[tier]) > SHOWN_FAILURES:
            lines.append(f"           … and {len(failures[tier]) - SHOWN_FAILURES} more")
        failed = failed or bool(c["failed"])
    return lines, failed


def main(argv: list[str]) -> int:
    reports = [Path(a) for a in argv if not a.startswith("--prerequisite=")]
    missing = [a.split("=", 1)[1] for a in argv if a.startswith("--prerequisite=")]
    lines, failed = summarize(reports)
    print("\n==> test summary, per tier")
    print("\n".join(lines) if lines else "  no test ran")
    for what in missing:
        print(f"  could not install: {what}")
    return 1 if failed or missing or not lines else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
