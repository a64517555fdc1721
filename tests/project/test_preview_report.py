"""The pull-request preview report (scripts/preview_report.py) on engine events shaped as the
real engine streams them (`PULUMI_ENABLE_STREAMING_JSON_PREVIEW=true pulumi preview --json`;
tests/e2e runs it on the real engine's): property changes old -> new, secrets, the reason of a
replacement and its order, failures with the engine's messages and policy violations, the cut
for a pull-request comment."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import preview_report as report

CHART = "pganalytics:release:PgAnalyticsRelease$kubernetes:helm.sh/v4:Chart"
STS = "kubernetes:apps/v1:StatefulSet"
BLINDED = {report.SIG_KEY: report.SECRET_SIG, "ciphertext": "[secret]"}


def urn(type_: str, name: str) -> str:
    return f"urn:pulumi:dev::pganalytics::{CHART}${type_}::{name}"


def state(type_: str, name: str, inputs: dict, outputs: dict | None = None) -> dict:
    return {
        "type": type_,
        "urn": urn(type_, name),
        "custom": True,
        "inputs": inputs,
        "outputs": outputs if outputs is not None else inputs,
    }


def step(op, type_, name, old=None, new=None, keys=None, detailed=None) -> dict:
    return {
        "sequence": 1,
        "timestamp": 1,
        "resourcePreEvent": {
            "metadata": {
                "op": op,
                "urn": urn(type_, name),
                "type": type_,
                "old": old,
                "new": new,
                "keys": keys,
                "detailedDiff": detailed,
            }
        },
    }


def replicas_change() -> list[dict]:
    name = "pganalytics:ns/pganalytics-backend"
    old = state(STS, name, {"spec": {"replicas": 1}}, {"spec": {"replicas": 1}})
    new = state(STS, name, {"spec": {"replicas": 2}})
    component = {"type": CHART, "urn": f"urn:pulumi:dev::pganalytics::{CHART}::pganalytics"}
    return [
        {
            "resourcePreEvent": {
                "metadata": {"op": "same", "urn": component["urn"], "new": component}
            }
        },
        step("same", "kubernetes:core/v1:Service", "pganalytics:ns/svc", new=state("x", "y", {})),
        step("update", STS, name, old, new, detailed={"spec.replicas": {"diffKind": "update"}}),
    ]


def replacement(delete_first: bool) -> list[dict]:
    name = "pganalytics:ns/pganalytics-timescaledb"
    path = "spec.volumeClaimTemplates[0].spec.resources.requests.storage"

    def claim(size: str) -> dict:
        template = {"spec": {"resources": {"requests": {"storage": size}}}}
        return {"spec": {"volumeClaimTemplates": [template]}}

    old, new = state(STS, name, claim("2Gi")), state(STS, name, claim("3Gi"))
    diff = {path: {"diffKind": "update-replace", "inputDiff": True}}
    steps = [
        step("create-replacement", STS, name, old, new, [path], diff),
        step("replace", STS, name, old, new, [path], diff),
        step("delete-replaced", STS, name, old, None),
    ]
    return [steps[2], steps[1], steps[0]] if delete_first else steps


def build(events, status=0, stderr=""):
    errors, warnings = report.messages(events, stderr)
    return report.build("dev", status, report.digest_of(events), errors, warnings)


def text(events, **kw) -> str:
    return report.render(*build(events, **kw))


def test_an_update_shows_each_changed_property_old_and_new():
    out = text(replicas_change())
    assert "1 to update; 1 unchanged." in out  # the component is no resource of its own
    assert f"| update | `{STS}` | `pganalytics:ns/pganalytics-backend` |" in out
    assert "| `spec.replicas` | update | `1` | `2` |" in out


@pytest.mark.parametrize("delete_first", [True, False])
def test_a_replacement_names_its_reason_and_order(delete_first):
    out = text(replacement(delete_first))
    assert "1 to replace; 0 unchanged." in out
    reason = "`spec.volumeClaimTemplates[0].spec.resources.requests.storage`"
    assert f"Replaced because of {reason}" in out
    assert ("delete-before-replace" in out) is delete_first
    assert ("created before the old one is deleted" in out) is not delete_first
    assert f'| {reason} | update-replace | `"2Gi"` | `"3Gi"` |' in out


def test_secret_values_show_as_secret_only():
    name = "pganalytics:ns/pganalytics-backend"
    old = state("kubernetes:core/v1:ConfigMap", name, {"data": {"A": BLINDED, "B": "x"}})
    new = state("kubernetes:core/v1:ConfigMap", name, {"data": {"A": BLINDED, "B": "y"}})
    diff = {"data.A": {"diffKind": "update", "inputDiff": True}, "data.B": {"diffKind": "update"}}
    out = text([step("update", "kubernetes:core/v1:ConfigMap", name, old, new, None, diff)])
    assert "| `data.A` | update | [secret] | [secret] |" in out
    assert '| `data.B` | update | `"x"` | `"y"` |' in out
    assert report.SECRET_SIG not in out


def test_property_paths_with_quoted_keys_and_indexes():
    path = 'metadata.labels["app.kubernetes.io/name"]'
    assert report.parse_path(path) == ["metadata", "labels", "app.kubernetes.io/name"]
    assert report.parse_path("a.b[2].c") == ["a", "b", 2, "c"]
    tree = {"metadata": {"labels": {"app.kubernetes.io/name": "pga"}}}
    assert report.lookup(tree, report.parse_path(path)) == "pga"
    assert report.lookup({"a": "[secret]"}, ["a", "b"]) == "[secret]"


def test_a_failure_shows_the_engines_errors_and_the_policy_violations():
    events = [
        *replicas_change(),
        {"diagnosticEvent": {"severity": "debug", "message": "noise"}},
        {"diagnosticEvent": {"severity": "warning", "message": "a warning\n"}},
        {
            "policyEvent": {
                "resourceUrn": urn(STS, "pganalytics:ns/db"),
                "message": "image 'x:1' is not pinned by digest",
                "policyName": "images-pinned",
                "policyPackName": "pganalytics-platform",
                "enforcementLevel": "mandatory",
            }
        },
        {"diagnosticEvent": {"severity": "error", "message": "preview failed\n"}},
    ]
    out = text(events, status=255)
    assert "**The preview failed.** The engine said:" in out
    assert (
        f"policy pganalytics-platform/images-pinned (mandatory): {STS} pganalytics:ns/db: "
        "image 'x:1' is not pinned by digest" in out
    )
    assert "preview failed" in out and "noise" not in out
    assert "<summary>The engine's 1 warning</summary>" in out
    assert "Planned before the failure:" in out


def test_a_failure_before_the_engine_started_shows_its_stderr():
    out = text([], status=255, stderr="error: no stack named 'prod' found\n")
    assert "error: no stack named 'prod' found" in out


def test_a_long_report_is_cut_whole_resources_at_a_time_with_a_count():
    events = []
    for i in range(60):
        name = f"pganalytics:ns/cm-{i:02}"
        old = state(
            "kubernetes:core/v1:ConfigMap", name, {"data": {f"k{j}": "a" * 50 for j in range(5)}}
        )
        new = state(
            "kubernetes:core/v1:ConfigMap", name, {"data": {f"k{j}": "b" * 50 for j in range(5)}}
        )
        diff = {f"data.k{j}": {"diffKind": "update", "inputDiff": True} for j in range(5)}
        events.append(step("update", "kubernetes:core/v1:ConfigMap", name, old, new, None, diff))
    head, sections, tail = build(events)
    full = report.render(head, sections, tail)
    short = report.cut(head, sections, tail, 8000, "Full: the log.")
    assert len(short) <= 8000 < len(full)
    kept = short.count("#### ~ update")
    m = re.search(r"the property changes of (\d+) more resources \((\d+) property lines\)", short)
    assert m, short[-500:]
    assert int(m.group(1)) == 60 - kept and int(m.group(2)) == 5 * (60 - kept)
    assert "Full: the log." in short
    assert short.count("| update | `kubernetes:core/v1:ConfigMap`") == 60  # the table stays whole


def test_only_the_secret_leaves_of_the_stack_file_are_scrubbed(tmp_path):
    """`pulumi config --json` hides a partly secret object whole; which leaf is secret comes
    from the stack file's `secure:` markers, and every leaf when the file cannot tell."""
    fake = tmp_path / "bin"
    fake.mkdir()
    shown = {
        "pganalytics:chart": {
            "objectValue": {"imageTag": "3.3.0-s3cr3t", "namespace": "pga-prod"},
            "secret": True,
        },
        "pganalytics:kubeconfig": {
            "value": "apiVersion: v1\ntoken: abcdefghijklmnopqrstuvwxyz\n",
            "secret": True,
        },
        "pganalytics:protect": {"value": "true", "secret": False},
    }
    (fake / "pulumi").write_text(f"#!/bin/sh\ncat <<'EOF'\n{json.dumps(shown)}\nEOF\n")
    (fake / "pulumi").chmod(0o755)
    stack_file = tmp_path / "Pulumi.prod.yaml"
    stack_file.write_text(
        "config:\n  pganalytics:chart:\n    imageTag:\n      secure: v1:xx\n"
        "    namespace: pga-prod\n  pganalytics:kubeconfig:\n    secure: v1:yy\n"
    )
    env = {**os.environ, "PATH": f"{fake}{os.pathsep}{os.environ['PATH']}"}
    code = (
        "import sys, json; sys.path.insert(0, 'scripts'); import preview_report as r; "
        f"print(json.dumps(r.secret_config_values('prod', ['--config-file', {str(stack_file)!r}])))"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    found = set(json.loads(run.stdout))
    assert "3.3.0-s3cr3t" in found and "pga-prod" not in found
    assert "abcdefghijklmnopqrstuvwxyz" in found  # a token inside a multi-line secret
    assert "true" not in found
    # A file that does not hold the key as the engine got it (ESC, stale): every leaf.
    stack_file.write_text("environment:\n  - prod\n" + stack_file.read_text())
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert "pga-prod" in set(json.loads(run.stdout))
    assert report.scrub("image api:3.3.0-s3cr3t", ["3.3.0-s3cr3t"]) == "image api:[secret]"
