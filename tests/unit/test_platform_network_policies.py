"""The namespaces of the ingress controller and of cert-manager get NetworkPolicies (issue 18,
item 10): a default deny, then only the flows each controller needs; egress to the internet and
the API server leaves out the link-local range, which holds the cloud metadata address."""

from __future__ import annotations

import pytest

from components.platform import CERT_MANAGER_WEBHOOK_PORT, TRAEFIK_ENTRYPOINT_PORTS
from tests.unit.harness import by_type, run_program, stack_config

NETPOL = "kubernetes:networking.k8s.io/v1:NetworkPolicy"


@pytest.fixture(scope="module")
def policies() -> dict[str, dict]:
    result = run_program("prod", stack_config("prod", "aws"))
    assert result["error"] is None, result["error"]
    return {r["name"]: r["inputs"] for r in by_type(result, NETPOL)}


def _ports(rule: dict) -> set[int]:
    return {p["port"] for p in rule.get("ports", [])}


@pytest.mark.parametrize("controller", ["traefik", "cert-manager"])
def test_each_controller_namespace_denies_by_default(policies, controller):
    deny = policies[f"{controller}-default-deny"]
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    allow = policies[f"{controller}-allow-controller"]
    assert allow["metadata"]["namespace"] == deny["metadata"]["namespace"]
    for rule in allow["spec"]["egress"]:
        for peer in rule.get("to", []):
            if "ipBlock" in peer:
                assert peer["ipBlock"] == {"cidr": "0.0.0.0/0", "except": ["169.254.0.0/16"]}
    assert any(_ports(r) == {53} for r in allow["spec"]["egress"])


def test_traefik_takes_clients_on_its_entrypoints_only(policies):
    spec = policies["traefik-allow-controller"]["spec"]
    assert spec["ingress"] == [
        {"ports": [{"protocol": "TCP", "port": p} for p in TRAEFIK_ENTRYPOINT_PORTS]}
    ]
    app = [
        r
        for r in spec["egress"]
        if any("namespaceSelector" in p for p in r["to"]) and not r.get("ports")
    ]
    assert app == [
        {
            "to": [
                {
                    "namespaceSelector": {
                        "matchLabels": {"kubernetes.io/metadata.name": "pganalytics"}
                    }
                }
            ]
        }
    ]


def test_cert_manager_serves_its_webhook_and_reaches_acme(policies):
    spec = policies["cert-manager-allow-controller"]["spec"]
    assert spec["ingress"] == [{"ports": [{"protocol": "TCP", "port": CERT_MANAGER_WEBHOOK_PORT}]}]
    assert {80, 443} in [_ports(r) for r in spec["egress"]]
