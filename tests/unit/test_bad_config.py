"""Every bad configuration fails before any resource is registered, with ONE error that
names each offending `pganalytics:` key and says how to fix it.

Each case starts from a real stack file (Pulumi.<stack>.yaml over the Pulumi.yaml defaults),
changes a few keys and runs the program under mocks in a subprocess.
"""

from __future__ import annotations

import copy

import pytest

from tests.unit.harness import run_program, stack_config

DROP = object()


def _set(config: dict, dotted: str, value) -> None:
    """Sets `pganalytics:a.b` in a config dict the way `pulumi config set --path` does."""
    if ":" in dotted:  # a literal config key, e.g. aws:region or a key made without --path
        config[dotted] = value
        return
    head, _, rest = dotted.partition(".")
    key = f"pganalytics:{head}"
    if not rest:
        if value is DROP:
            config.pop(key, None)
        else:
            config[key] = value
        return
    obj = copy.deepcopy(config.get(key) or {})
    node = obj
    parts = rest.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    config[key] = obj


# id: (stack, target, {dotted key: value}, [substrings the message must contain], secret keys)
CASES = {
    "unknown-target": (
        "dev",
        None,
        {"target": "aws2"},
        ["pganalytics:target", "aws2", "pulumi config set pganalytics:target aws"],
    ),
    "typo-top-level-key": (
        "dev",
        None,
        {"nodepool": {"minSize": 2}},
        ["pganalytics:nodepool", "did you mean pganalytics:nodePool"],
    ),
    "typo-nested-key": (
        "prod",
        None,
        {"nodePool.minSzie": 2},
        [
            "pganalytics:nodePool.minSzie",
            "did you mean nodePool.minSize",
            "pulumi config rm --path pganalytics:nodePool.minSzie",
        ],
    ),
    "unknown-key-no-suggestion": (
        "dev",
        None,
        {"frobnicate": "1"},
        ["pganalytics:frobnicate", "pulumi config rm pganalytics:frobnicate"],
    ),
    "min-greater-than-max": (
        "prod",
        None,
        {"nodePool.minSize": 5, "nodePool.maxSize": 3},
        [
            "pganalytics:nodePool.minSize must be ≤ maxSize (got 5 > 3)",
            "pulumi config set --path pganalytics:nodePool.minSize 3",
        ],
    ),
    "zero-min-size": (
        "prod",
        None,
        {"nodePool.minSize": 0},
        [
            "pganalytics:nodePool.minSize must be at least 1 (got 0)",
            "pulumi config set --path pganalytics:nodePool.minSize 1",
        ],
    ),
    "negative-max-size": (
        "prod",
        None,
        {"nodePool.maxSize": -2},
        ["pganalytics:nodePool.maxSize must be at least 1 (got -2)"],
    ),
    "desired-outside-bounds": (
        "prod",
        None,
        {"nodePool.desiredSize": 20},
        [
            "pganalytics:nodePool.desiredSize",
            "between minSize and maxSize",
            "pulumi config set --path pganalytics:nodePool.desiredSize 9",
        ],
    ),
    "size-not-an-integer": (
        "prod",
        None,
        {"nodePool.minSize": "three"},
        [
            "pganalytics:nodePool.minSize must be an integer",
            "pulumi config set --path pganalytics:nodePool.minSize 1",
        ],
    ),
    "invalid-vpc-cidr": (
        "prod",
        None,
        {"network.cidr": "10.0.0.0/33"},
        [
            "pganalytics:network.cidr is not a valid CIDR",
            "pulumi config set --path pganalytics:network.cidr",
        ],
    ),
    "cidr-with-host-bits": (
        "prod",
        None,
        {"network.cidr": "10.20.1.0/16"},
        ["pganalytics:network.cidr", "10.20.0.0/16"],
    ),
    "overlapping-pod-cidr": (
        "prod",
        "gcp",
        {"network.podCidr": "10.20.128.0/17"},
        ["pganalytics:network.podCidr overlaps network.cidr"],
    ),
    "invalid-endpoint-cidr": (
        "prod",
        None,
        {"endpoint.publicCidrs": ["203.0.113.0/24", "1.2.3.4/40"]},
        [
            "pganalytics:endpoint.publicCidrs[1] is not a valid CIDR",
            "--path pganalytics:endpoint.publicCidrs[1]",
        ],
    ),
    "endpoint-unreachable": (
        "prod",
        None,
        {"endpoint.publicAccess": False, "endpoint.privateAccess": False},
        ["pganalytics:endpoint.privateAccess must be true"],
    ),
    "aws-machine-type-format": (
        "prod",
        "aws",
        {"nodePool.machineType": "e2-standard-4"},
        [
            "pganalytics:nodePool.machineType is not a AWS machine type",
            "pulumi config set --path pganalytics:nodePool.machineType m6i.large",
        ],
    ),
    "gcp-machine-type-format": (
        "enterprise",
        "gcp",
        {"nodePool.machineType": "m6i.large"},
        ["pganalytics:nodePool.machineType is not a GCP machine type"],
    ),
    "azure-machine-type-format": (
        "prod",
        "azure",
        {"nodePool.machineType": "D4s_v5"},
        ["pganalytics:nodePool.machineType is not a Azure machine type", "Standard_D4s_v5"],
    ),
    "missing-region": (
        "prod",
        "aws",
        {"region": ""},
        [
            "pganalytics:region is required for target aws",
            "pulumi config set pganalytics:region eu-west-1",
        ],
    ),
    "region-of-another-cloud": (
        "enterprise",
        "gcp",
        {"region": "eu-west-1"},
        [
            "pganalytics:region is not a GCP region",
            "pulumi config set pganalytics:region europe-west1",
        ],
    ),
    "missing-gcp-project": (
        "enterprise",
        "gcp",
        {"gcpProject": ""},
        ["pganalytics:gcpProject is required for target gcp"],
    ),
    "tls-without-email": (
        "prod",
        None,
        {"ingress.acmeEmail": ""},
        [
            "pganalytics:ingress.acmeEmail is required when ingress.tls is true",
            "pulumi config set --path pganalytics:ingress.acmeEmail ops@example.com",
        ],
    ),
    "tls-without-domain": (
        "prod",
        None,
        {"ingress.domain": ""},
        ["pganalytics:ingress.domain is required"],
    ),
    "tls-on-nip-io": (
        "dev",
        None,
        {"ingress.tls": True, "ingress.acmeEmail": "ops@example.com"},
        ["pganalytics:ingress.domain must be a public domain"],
    ),
    "bad-acme-email": (
        "prod",
        None,
        {"ingress.acmeEmail": "ops-at-example"},
        ["pganalytics:ingress.acmeEmail is not an e-mail address"],
    ),
    "bad-acme-issuer": (
        "prod",
        None,
        {"ingress.acmeIssuer": "prod"},
        ["pganalytics:ingress.acmeIssuer must be staging or production"],
    ),
    "unknown-ingress-controller": (
        "dev",
        None,
        {"ingress.controller": "nginx"},
        ["pganalytics:ingress.controller must be traefik or none"],
    ),
    "chart-override-wrong-type": (
        "prod",
        None,
        {"chart.values": {"backend": {"replicaCount": "three"}}},
        [
            "pganalytics:chart.values.backend.replicaCount is rejected by the chart schema",
            "pulumi config rm --path pganalytics:chart.values.backend.replicaCount",
        ],
    ),
    "chart-override-unknown-key": (
        "dev",
        None,
        {"chart.values": {"backend": {"replicas": 2}}},
        ["pganalytics:chart.values.backend.replicas is rejected by the chart schema"],
    ),
    "chart-override-latest-tag": (
        "dev",
        None,
        {"chart.values": {"grafana": {"image": {"tag": "latest"}}}},
        ["pganalytics:chart.values.grafana.image.tag"],
    ),
    "missing-values-file": (
        "dev",
        None,
        {"chart.valuesFile": "values-staging.yaml"},
        [
            "pganalytics:chart.valuesFile names values-staging.yaml",
            "pulumi config set --path pganalytics:chart.valuesFile",
        ],
    ),
    "image-tag-latest": (
        "prod",
        None,
        {"chart.imageTag": "latest"},
        ["pganalytics:chart.imageTag must be an exact image tag"],
    ),
    "bad-reclaim-policy": (
        "prod",
        None,
        {"storage.reclaimPolicy": "retain"},
        [
            "pganalytics:storage.reclaimPolicy must be Delete or Retain",
            "pulumi config set --path pganalytics:storage.reclaimPolicy Retain",
        ],
    ),
    "disk-type-of-another-cloud": (
        "enterprise",
        "gcp",
        {"storage.type": "gp3"},
        ["pganalytics:storage.type must be one of pd-balanced"],
    ),
    "protect-not-a-boolean": (
        "prod",
        None,
        {"protect": "yes"},
        ["pganalytics:protect must be true or false", "pulumi config set pganalytics:protect true"],
    ),
    "existing-subnets-too-few": (
        "prod",
        "aws",
        {"network.create": False, "network.subnetIds": ["subnet-0123456789abcdef0"]},
        ["pganalytics:network.subnetIds needs at least two private subnets"],
    ),
    "bad-kubernetes-version": (
        "prod",
        None,
        {"kubernetesVersion": "v1.34"},
        ["pganalytics:kubernetesVersion must look like 1.34"],
    ),
    "gke-release-channel": (
        "enterprise",
        "gcp",
        {"cluster.releaseChannel": "stable"},
        ["pganalytics:cluster.releaseChannel must be RAPID, REGULAR, STABLE or EXTENDED"],
    ),
    "ambient-provider-config": (
        "prod",
        None,
        {"aws:region": "us-east-1"},
        ["aws:region is ignored", "pulumi config set pganalytics:region"],
    ),
    "nested-key-set-without-path": (
        "prod",
        None,
        {"pganalytics:nodePool.maxSize": "6"},
        [
            "pganalytics:nodePool.maxSize was set without --path",
            "pulumi config rm pganalytics:nodePool.maxSize && "
            "pulumi config set --path pganalytics:nodePool.maxSize 6",
        ],
    ),
    "list-given-a-string": (
        "prod",
        None,
        {"endpoint.publicCidrs": "203.0.113.0/24"},
        [
            "pganalytics:endpoint.publicCidrs must be a list",
            "pulumi config set --path 'pganalytics:endpoint.publicCidrs[0]' 0.0.0.0/0",
        ],
    ),
    "object-given-a-scalar": (
        "prod",
        None,
        {"nodePool": "big"},
        ["pganalytics:nodePool must be an object"],
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_config_fails_before_any_resource(case):
    stack, target, changes, expected = CASES[case]
    config = stack_config(stack, target)
    for key, value in changes.items():
        _set(config, key, value)
    result = run_program(stack, config)
    assert result["error_type"] == "ConfigError", result["error"]
    message = result["error"]
    for text in expected:
        assert text in message, f"{text!r} not in:\n{message}"
    assert "; fix: " in message
    assert result["resources"] == [], "resources were registered before the config was checked"


def test_kubeconfig_must_be_secret():
    config = stack_config("dev")
    kubeconfig = (
        "apiVersion: v1\ncurrent-context: c\nclusters: [{name: c, cluster: {server: 'https://c'}}]\n"
        "contexts: [{name: c, context: {cluster: c}}]\nusers: []\n"
    )
    config["pganalytics:kubeconfig"] = kubeconfig
    result = run_program("dev", config)
    assert result["error_type"] == "ConfigError"
    assert (
        "pganalytics:kubeconfig holds credentials and must be stored encrypted" in result["error"]
    )
    assert "pulumi config set --secret pganalytics:kubeconfig" in result["error"]
    assert result["resources"] == []
    # The same value set with --secret is accepted.
    ok = run_program("dev", config, secret_keys=("pganalytics:kubeconfig",))
    assert ok["error"] is None, ok["error"]
    assert ok["outputs"]["kubeconfig"]["secret"]


def test_all_problems_are_reported_in_one_error():
    config = stack_config("prod", "aws")
    for key, value in {
        "chart.values": {"backend": {"replicaCount": -1}},
        "nodePool.minSize": 5,
        "nodePool.maxSize": 3,
        "network.cidr": "nope",
        "ingress.acmeEmail": "",
        "regoin": "eu-west-1",
    }.items():
        _set(config, key, value)
    result = run_program("prod", config)
    message = result["error"]
    assert message.startswith("invalid configuration for stack 'prod' (5 problems)")
    for key in (
        "nodePool.minSize",
        "network.cidr",
        "ingress.acmeEmail",
        "regoin",
        "chart.values.backend.replicaCount",
    ):
        assert f"pganalytics:{key}" in message
    assert "did you mean pganalytics:region" in message
    assert result["resources"] == []


def test_there_are_at_least_25_cases():
    assert len(CASES) >= 25


def test_messages_never_quote_a_secret_value():
    config = stack_config("prod", "aws")
    config["pganalytics:chart"] = {"values": {"backend": {"replicaCount": "s3cr3t-value"}}}
    result = run_program("prod", config, secret_keys=("pganalytics:chart",))
    assert result["error_type"] == "ConfigError"
    assert "pganalytics:chart.values.backend.replicaCount" in result["error"]
    assert "s3cr3t-value" not in result["error"]
    assert result["resources"] == []
