"""The set-up the README promises: CI runs the README's test command, bootstrap is
idempotent, and the deploy command refuses an unknown stack. (The deploy command's own path,
from a new user's machine to a deployed stack, is tested in tests/e2e/test_deploy_command.py.)"""

import re
import subprocess

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
