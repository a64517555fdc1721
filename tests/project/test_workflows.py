"""What each workflow installs is what its commands need on a GitHub-hosted runner, where
nothing of this machine exists (no tool cache, no plugin sources beside the clone). The
workflows cannot run here, so this reads them: the test job gives every tier its tools, the
preview and deploy jobs install the deploy path only and run the policy pack."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.project.test_ci_trust import load

WORKFLOWS = ROOT / ".github" / "workflows"


def versions_env() -> dict[str, str]:
    lines = (ROOT / "tools" / "versions.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if re.match(r"^[A-Z_]+=", line))


def requirement(name: str) -> str:
    m = re.search(rf"^{re.escape(name)}==(\S+)", (ROOT / "requirements.txt").read_text(), re.M)
    assert m, f"requirements.txt pins no {name}"
    return m.group(1)


def steps(workflow: str, job: str) -> list[dict]:
    return load(WORKFLOWS / workflow)["jobs"][job]["steps"]


def index(found: list[dict], pred, what: str) -> int:
    hits = [i for i, step in enumerate(found) if pred(step)]
    assert hits, f"no step {what}"
    return hits[0]


def uses(action: str):
    return lambda step: step.get("uses", "").split("@")[0] == action


def runs(command: str):
    return lambda step: command in step.get("run", "")


def version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", text)[:2])


# --- the test workflow: every tier gets what it needs ----------------------------------------

TEST = steps("test.yml", "test")
MAKE_TEST = index(TEST, runs("make test"), "running make test")


def test_make_test_is_the_last_step():
    assert len(TEST) - 1 == MAKE_TEST
    assert TEST[MAKE_TEST]["run"].strip() == "make test"


def test_python_for_every_tier_and_the_dev_lock():
    i = index(TEST, uses("actions/setup-python"), "setting up Python")
    step = TEST[i]["with"]
    assert version_tuple(str(step["python-version"])) >= (3, 11)  # requirements-dev.lock
    assert "requirements*.lock" in step.get("cache-dependency-path", "")


def test_go_for_the_control_plane_actionlint_and_rclone():
    """The cluster tier's control plane, the project tier's actionlint and the backup tier's
    rclone are built with Go at the pinned minimum."""
    i = index(TEST, uses("actions/setup-go"), "setting up Go")
    assert i < MAKE_TEST
    assert version_tuple(str(TEST[i]["with"]["go-version"])) >= version_tuple(
        versions_env()["GO_MIN_VERSION"]
    )


def test_the_go_built_tools_are_cached_by_version():
    i = index(TEST, uses("actions/cache"), "caching the tools")
    cache = TEST[i]["with"]
    assert cache["path"] == "~/.cache/pganalytics-tools"
    key = " ".join(str(cache["key"]).split())
    for pin_file in ("tools/versions.env", "tools/go/**", "scripts/backup-test-tools.sh"):
        assert pin_file in key, key
    assert i < MAKE_TEST


def test_the_e2e_tier_gets_the_pinned_cli_and_plugins_the_ordinary_way():
    cli = index(TEST, uses("pulumi/actions"), "installing the Pulumi CLI")
    pinned = versions_env()["PULUMI_VERSION"].lstrip("v")
    assert str(TEST[cli]["with"]["pulumi-version"]) == pinned == requirement("pulumi")
    plugins = index(TEST, runs("tools/build.sh pulumi-plugins"), "installing the plugins")
    assert cli < plugins < MAKE_TEST
    # The offline fallback must not be reachable from the workflow: no plugin sources there.
    assert not (set(versions_env()) & {"PGA_THIRD_PARTY"})
    for step in TEST:
        assert "PGA_THIRD_PARTY" not in str(step) and "shared" not in str(step), step


def test_the_chart_tier_gets_helm():
    """make test's bootstrap installs the pinned helm/kubectl, which are Linux x86_64 builds."""
    job = load(WORKFLOWS / "test.yml")["jobs"]["test"]
    assert str(job["runs-on"]).startswith("ubuntu-"), job["runs-on"]
    bootstrap = (ROOT / "scripts" / "bootstrap.sh").read_text()
    assert "need_layer+=(helm)" in bootstrap and "Linux/x86_64" in bootstrap


# --- preview and deploy: the deploy path and the policy pack -----------------------------------


@pytest.mark.parametrize(
    ("workflow", "job"), [("preview.yml", "preview"), ("deploy.yml", "deploy")]
)
def test_previews_and_deploys_install_only_the_deploy_path(workflow, job):
    found = steps(workflow, job)
    cli = index(found, uses("pulumi/actions"), "installing the Pulumi CLI")
    assert str(found[cli]["with"]["pulumi-version"]) == requirement("pulumi")
    install = index(found, runs("scripts/bootstrap.sh deploy"), "installing the deploy path")
    assert "tools/build.sh pulumi-plugins" in found[install]["run"]
    assert cli < install
    text = (WORKFLOWS / workflow).read_text()
    assert "make setup" not in text and "setup-go" not in text


def test_the_preview_runs_the_policy_pack_and_keeps_the_engines_report():
    found = steps("preview.yml", "preview")
    i = index(found, runs("scripts/preview.sh"), "running the preview")
    run = found[i]["run"]
    assert '--policy-pack policy > "$report"' in run
    assert "PREVIEW_COMMENT=" in run and 'cat "$report"' in run  # the full report in the log
    # The failure path no longer replaces the report with a pointer to an empty log.
    assert "The log is in" not in run
    upload = index(found, uses("actions/upload-artifact"), "uploading the reports")
    assert found[upload]["if"] == "always()"


def test_the_deploy_confirms_explicitly_and_skips_the_preview_only_after_a_pull_request():
    found = steps("deploy.yml", "deploy")
    i = index(found, runs("scripts/pulumi.sh up"), "running pulumi up")
    env = found[i]["env"]
    assert env["YES"] == "1"
    assert env["PREVIEWED"] == "${{ github.event_name == 'push' && '1' || '' }}"
    assert "--policy-pack policy" in (ROOT / "scripts" / "pulumi.sh").read_text()


# --- nothing depends on the machine this is developed on ---------------------------------------

# Test tooling that may name the plugin sources beside the clone (the offline fallback).
MAY_NAME_SHARED = {"tools/build.sh", "tests/e2e/test_deploy_command.py"}


def test_nothing_in_the_product_or_its_workflows_needs_the_shared_folder():
    found = []
    for path in ROOT.rglob("*"):
        rel = path.relative_to(ROOT).as_posix()
        if not path.is_file() or rel.split("/")[0] in (".venv", ".tools", ".git", "dist"):
            continue
        if ".pytest_cache" in rel or "__pycache__" in rel or rel.endswith(".md"):
            continue
        if rel in MAY_NAME_SHARED or rel == Path(__file__).relative_to(ROOT).as_posix():
            continue
        try:
            text = path.read_text()
        except (UnicodeDecodeError, OSError):
            continue
        if re.search(r"\.\./shared|shared/third_party|PGA_THIRD_PARTY", text):
            found.append(rel)
    assert not found, f"these files depend on ../shared: {found}"
