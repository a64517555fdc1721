"""The set-up the README promises: CI runs the README's test command, bootstrap is
idempotent, and the deploy command names a missing prerequisite and how to get it."""

import os
import re
import subprocess
from pathlib import Path

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


def run_deploy(tmp_path: Path, path_dirs: list[str], **env) -> subprocess.CompletedProcess:
    """scripts/pulumi.sh with a controlled PATH: only the project's tools and the basics."""
    base = {
        "HOME": str(tmp_path),
        "PATH": os.pathsep.join([*path_dirs, str(ROOT / ".tools" / "bin"), "/usr/bin", "/bin"]),
        "KUBECONFIG": str(tmp_path / "kubeconfig"),
    }
    return subprocess.run(
        ["scripts/pulumi.sh", "preview", "dev"],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )


def fake_binary(directory: Path, name: str, script: str = "exit 0") -> None:
    directory.mkdir(exist_ok=True)
    path = directory / name
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(0o755)


def test_deploy_without_python_language_host_names_the_installer(tmp_path):
    fakes = tmp_path / "bin"
    fake_binary(fakes, "pulumi")  # a CLI without its language host beside it
    result = run_deploy(tmp_path, [str(fakes)])
    assert result.returncode == 1
    assert "pulumi-language-python" in result.stderr
    assert "get.pulumi.com" in result.stderr


def test_deploy_without_kubernetes_context_says_how_to_get_one(tmp_path):
    fakes = tmp_path / "bin"
    fake_binary(fakes, "pulumi")
    fake_binary(fakes, "pulumi-language-python")
    (tmp_path / "kubeconfig").write_text("apiVersion: v1\nkind: Config\n")  # no context
    result = run_deploy(tmp_path, [str(fakes)])
    assert result.returncode == 1
    assert "current Kubernetes context" in result.stderr
    assert "kind create cluster" in result.stderr


def test_deploy_of_an_unknown_stack_lists_the_shipped_ones(tmp_path):
    result = subprocess.run(
        ["scripts/pulumi.sh", "up", "staging"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 1
    assert "dev, prod, enterprise" in result.stderr
