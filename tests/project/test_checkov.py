"""checkov on the production renders: no finding without a reason (issue 18, item 14).

The prod and enterprise stacks are run under mocks on their shipped targets (prod: aws,
enterprise: gcp); the values the program hands the Chart are rendered with the real helm and
scanned by checkov (its own virtualenv, .tools/checkov, installed by scripts/bootstrap.sh).
A finding fails with its check ID and object; a finding kept on purpose is skipped in the
template with a `checkov.io/skipN` annotation that carries the reason (pganalytics.checkovSkips).

The pganalytics images and the backup uploader have no published digest: the team sets the
digest of its build per stack (docs/KUBERNETES_DEPLOYMENT.md, "Image digests"). The render
here sets one for them the same way, so checkov sees what a deployable stack runs.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.unit.harness import ROOT, one, run_program, stack_config, unsecret

CHECKOV = ROOT / ".tools" / "checkov" / "bin" / "checkov"
SHIPPED_TARGET = {"prod": "aws", "enterprise": "gcp"}
TEAM_IMAGES = (
    ("backend", "image"),
    ("collector", "image"),
    ("mlService", "image"),
    ("frontend", "image"),
    ("backup", "uploader", "image"),
)
# Every check the chart skips somewhere, each with a reason in pganalytics.checkovSkips.
JUSTIFIED = {"CKV_K8S_8", "CKV_K8S_9", "CKV_K8S_11", "CKV_K8S_35", "CKV_K8S_40"}


def _helm() -> str:
    found = shutil.which("helm") or shutil.which("helm", path=str(ROOT / ".tools" / "bin"))
    if not found:
        pytest.fail("helm is not installed: run `make setup`", pytrace=False)
    return found


def _team_digests(values: dict) -> dict:
    """The digest a team sets per stack for each image no registry publishes one for."""
    for path in TEAM_IMAGES:
        node = values
        for part in path:
            node = node.setdefault(part, {})
        if not node.get("digest"):
            node["digest"] = "sha256:" + hashlib.sha256("/".join(path).encode()).hexdigest()
    return values


def _render(stack: str, tmp: Path) -> Path:
    result = run_program(stack, stack_config(stack, SHIPPED_TARGET[stack]))
    assert result["error"] is None, result["error"]
    chart = one(result, "kubernetes:helm.sh/v4:Chart")["inputs"]
    values = _team_digests(unsecret(chart["values"]))
    values_file = tmp / f"{stack}-values.json"
    values_file.write_text(json.dumps(values))
    out = subprocess.run(
        [_helm(), "template", "pganalytics", str(ROOT / "charts" / "pganalytics"),
         "--namespace", "pganalytics", "--values", str(values_file)],
        capture_output=True, text=True, check=True, timeout=120,
    ).stdout  # fmt: skip
    rendered = tmp / f"{stack}.yaml"
    rendered.write_text(out)
    return rendered


def _checkov(rendered: Path) -> list[dict]:
    if not CHECKOV.is_file():
        pytest.fail("checkov is not installed: run `make setup`", pytrace=False)
    proc = subprocess.run(
        [str(CHECKOV), "--file", str(rendered), "--framework", "kubernetes", "--output", "json",
         "--compact", "--skip-download"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode in (0, 1), proc.stderr
    report = json.loads(proc.stdout)
    return report if isinstance(report, list) else [report]


@pytest.fixture(scope="module", params=sorted(SHIPPED_TARGET))
def scan(request, tmp_path_factory):
    rendered = _render(request.param, tmp_path_factory.mktemp("checkov"))
    return request.param, rendered, _checkov(rendered)


def test_no_finding_without_a_reason(scan):
    stack, _, reports = scan
    failed = [
        f"{f['check_id']} {f['resource']}: {f['check_name']}"
        for r in reports
        for f in r["results"]["failed_checks"]
    ]
    assert not failed, f"checkov on the {stack} render:\n" + "\n".join(sorted(failed))


def test_every_skip_is_a_known_check_with_its_reason(scan):
    stack, rendered, reports = scan
    skipped = [f for r in reports for f in r["results"]["skipped_checks"]]
    assert skipped, "the skips in the templates are read"
    for f in skipped:
        assert f["check_id"] in JUSTIFIED, f"{stack}: {f['check_id']} {f['resource']} is skipped"
        reason = f["check_result"].get("suppress_comment") or ""
        assert len(reason) > 20, f"{stack}: {f['check_id']} has no reason"
    # The skips are annotations of the workloads themselves, nothing else is annotated.
    for obj in yaml.safe_load_all(rendered.read_text()):
        notes = ((obj or {}).get("metadata") or {}).get("annotations") or {}
        for key, value in notes.items():
            if key.startswith("checkov.io/skip"):
                check, _, reason = value.partition("=")
                assert check in JUSTIFIED and reason, (obj["kind"], key, value)


def test_digests_and_pull_policy_pass_without_a_skip(scan):
    """CKV_K8S_15 (pull policy) and CKV_K8S_43 (digest) are met, not skipped."""
    _, _, reports = scan
    passed = {f["check_id"] for r in reports for f in r["results"]["passed_checks"]}
    assert {"CKV_K8S_15", "CKV_K8S_43"} <= passed
