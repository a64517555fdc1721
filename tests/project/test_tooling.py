"""The set-up the README promises: CI runs the README's test command, bootstrap is
idempotent, and the deploy command refuses an unknown stack. (The deploy command's own path,
from a new user's machine to a deployed stack, is tested in tests/e2e/test_deploy_command.py.)"""

import hashlib
import os
import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT


def readme_commands() -> dict[str, str]:
    """The two quick-start commands, from the README's `<!-- quickstart -->` block."""
    text = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- quickstart -->\s*```(?:sh|bash|console)?\n(.*?)```", text, re.S)
    assert block, "README.md lost its <!-- quickstart --> code block"
    commands = {}
    for line in block.group(1).splitlines():
        command, _, comment = line.partition("#")
        if command.strip():
            commands[comment.strip()] = command.strip()
    return commands


def test_readme_quick_start_has_exactly_a_deploy_and_a_test_command():
    commands = list(readme_commands().values())
    assert commands == ["make deploy", "make test"], commands


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    test_command = list(readme_commands().values())[1]
    executed = [ln.strip() for ln in ci.splitlines() if ln.strip() and not ln.startswith("#")]
    assert test_command in executed, f".ci/run does not run '{test_command}'"


def test_bootstrap_is_idempotent():
    # The suite itself ran bootstrap first, so a second run must find everything in place.
    result = subprocess.run(
        ["scripts/bootstrap.sh"], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr
    assert "installing" not in result.stdout and "building" not in result.stdout, result.stdout


def test_deploy_of_an_unknown_stack_lists_the_shipped_ones(tmp_path):
    result = subprocess.run(
        ["scripts/pulumi.sh", "up", "staging"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 1
    assert "dev, prod, enterprise" in result.stderr


# --- lock files ----------------------------------------------------------------------------

LOCKS = {  # lock -> the requirements files it is made from (scripts/lock.sh)
    "requirements.lock": ("requirements.txt",),
    "requirements-dev.lock": ("requirements.txt", "requirements-dev.txt"),
    "requirements-checkov.lock": ("requirements-checkov.txt",),
}


def pins(path) -> dict[str, str]:
    """name -> version of each `name==version` line of a requirements file (extras dropped)."""
    found = {}
    for line in (ROOT / path).read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==([^\s;\\]+)", line)
        if m:
            found[re.sub(r"[-_.]+", "-", m.group(1)).lower()] = m.group(2)
    return found


@pytest.mark.parametrize("lock", sorted(LOCKS))
def test_each_lock_was_made_from_the_current_requirements(lock):
    inputs = b"".join((ROOT / f).read_bytes() for f in LOCKS[lock])
    first = (ROOT / lock).read_text().splitlines()[0]
    assert first == f"# inputs-sha256: {hashlib.sha256(inputs).hexdigest()}", (
        f"{' or '.join(LOCKS[lock])} changed since {lock} was made: run 'make lock' and commit it"
    )
    locked = pins(lock)
    for source in LOCKS[lock]:
        for name, version in pins(source).items():
            assert locked.get(name) == version, f"{lock}: {name} {locked.get(name)} != {version}"


@pytest.mark.parametrize("lock", sorted(LOCKS))
def test_every_locked_package_carries_hashes(lock):
    # One entry per package: its `name==version [; marker] \` line and the lines under it.
    entries = re.split(r"^(?=[A-Za-z0-9])", (ROOT / lock).read_text(), flags=re.M)[1:]
    assert len(entries) >= 40, len(entries)  # guards the extraction
    bare = [e.split()[0] for e in entries if not re.search(r"--hash=sha256:[0-9a-f]{64}", e)]
    assert not bare, f"{lock} has packages without --hash: {bare}"


def test_deploying_installs_no_test_tooling():
    deploy = pins("requirements.lock")
    for tool in ("pytest", "ruff", "zizmor", "moto", "uv", "yamllint"):
        assert tool not in deploy, f"requirements.lock (make deploy) holds {tool}"
    shared = set(deploy) & set(pins("requirements-dev.lock"))
    assert shared == set(deploy), "requirements-dev.lock lacks packages of requirements.lock"
    differ = {n for n in shared if deploy[n] != pins("requirements-dev.lock")[n]}
    assert not differ, f"the two locks disagree on {sorted(differ)}: run 'make lock'"


# --- make test: every tier reports ------------------------------------------------------------

FAKE_PYTEST = """#!/usr/bin/env python3
# Stands in for pytest: records its arguments, writes a JUnit report with one case per tier it
# was given (FAIL_TIERS fail), exits 1 when one failed.
import os, sys
args = sys.argv[1:]
open(os.environ["CALLS"], "a").write(" ".join(args) + "\\n")
report = next(a.split("=", 1)[1] for a in args if a.startswith("--junitxml="))
tiers = ["e2e"] if "tests/e2e" in args else ["project", "chart", "unit", "backup", "cluster"]
failing = os.environ.get("FAIL_TIERS", "").split()
cases = "".join(
    f'<testcase classname="tests.{t}.test_x" name="test_y">'
    + ("<failure message='boom'/>" if t in failing else "") + "</testcase>"
    for t in tiers
)
open(report, "w").write(f"<testsuites><testsuite>{cases}</testsuite></testsuites>")
sys.exit(1 if set(tiers) & set(failing) else 0)
"""


def fake_test_tree(tmp_path):
    """scripts/test.sh and tier_summary.py with stand-ins for bootstrap, the tool builds and
    pytest, so that only test.sh's own control flow runs."""
    tree = tmp_path / "tree"
    (tree / "scripts").mkdir(parents=True)
    (tree / "tools").mkdir()
    (tree / ".venv" / "bin").mkdir(parents=True)
    for name in ("test.sh", "tier_summary.py"):
        (tree / "scripts" / name).write_bytes((ROOT / "scripts" / name).read_bytes())
    stubs = {
        "scripts/bootstrap.sh": "#!/bin/sh\nexit 0\n",
        "scripts/backup-test-tools.sh": "#!/bin/sh\nexit 0\n",
        "tools/build.sh": "#!/bin/sh\nexit 0\n",
        ".venv/bin/pytest": FAKE_PYTEST,
    }
    for path, text in stubs.items():
        (tree / path).write_text(text)
    for path in (*stubs, "scripts/test.sh"):
        (tree / path).chmod(0o755)
    (tree / ".venv" / "bin" / "python").symlink_to(sys.executable)
    return tree


@pytest.mark.parametrize("failing", ["", "unit", "unit e2e"])
def test_make_test_runs_every_tier_and_fails_only_at_the_end(tmp_path, failing):
    tree = fake_test_tree(tmp_path)
    calls = tmp_path / "calls"
    env = {**os.environ, "CALLS": str(calls), "FAIL_TIERS": failing}
    proc = subprocess.run(
        ["scripts/test.sh"], cwd=tree, env=env, capture_output=True, text=True, timeout=120
    )
    runs = calls.read_text().splitlines()
    assert len(runs) == 2 and "tests/e2e" in runs[1], runs  # e2e ran after a failed first run
    assert proc.returncode == (1 if failing else 0), proc.stdout + proc.stderr
    summary = proc.stdout.split("==> test summary, per tier", 1)[1]
    for tier in ("project", "chart", "unit", "backup", "cluster", "e2e"):
        verdict = "FAILED" if tier in failing.split() else "ok"
        assert re.search(rf"^  {tier}\s+{verdict}\b", summary, re.M), summary


def test_make_test_fails_when_a_run_wrote_no_report(tmp_path):
    tree = fake_test_tree(tmp_path)
    (tree / ".venv" / "bin" / "pytest").write_text("#!/bin/sh\nexit 2\n")
    proc = subprocess.run(
        ["scripts/test.sh"], cwd=tree, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 1
    assert "junit-e2e.xml: no report" in proc.stdout, proc.stdout


# --- make deploy never implies --yes -----------------------------------------------------------


def confirm_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("YES", "CI", "PREVIEWED")}
    return {**env, **extra}


@pytest.mark.parametrize(
    ("stack", "extra", "needed"),
    [
        ("dev", {}, "YES=1 (or CI=true)"),
        ("prod", {"CI": "true"}, "YES=1 (CI=true is not enough for 'prod')"),
        ("enterprise", {"CI": "true"}, "YES=1 (CI=true is not enough for 'enterprise')"),
    ],
)
def test_a_deploy_without_a_terminal_needs_an_explicit_yes(stack, extra, needed):
    for action in ("up", "destroy"):
        proc = subprocess.run(
            ["scripts/pulumi.sh", action, stack],
            cwd=ROOT,
            env=confirm_env(**extra),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert "needs a confirmation, and there is no terminal to ask on" in proc.stderr
        assert needed in proc.stderr
        # Refused before anything was installed, built or asked of a backend.
        assert "bootstrap" not in proc.stdout and "pulumi" not in proc.stdout
