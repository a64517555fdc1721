"""The CloudNativePG database under mocks (issue 22): prod and enterprise run a CloudNativePG
cluster, dev the bundled pod; the operator and plugin installs; the basic-auth Secrets of the
roles; where each cloud's Cluster archives and with which identity; the protected switch from
bundled refused, the documented migration accepted."""

from __future__ import annotations

import json

import pytest

from tests.unit.harness import by_type, matrix_case, one, run_program, stack_config, unsecret

CHART = "kubernetes:helm.sh/v4:Chart"
RELEASE = "kubernetes:helm.sh/v3:Release"
SECRET = "kubernetes:core/v1:Secret"
TARGETS = ("aws", "gcp", "azure", "existing")


def values(result: dict) -> dict:
    assert result["error"] is None, result["error"]
    return unsecret(one(result, CHART)["inputs"]["values"])


@pytest.mark.parametrize("target", TARGETS)
def test_dev_keeps_the_bundled_pod(target):
    result = matrix_case("dev", target)
    v = values(result)
    assert "cloudnativepg" not in v and v.get("timescaledb", {}).get("enabled", True)
    assert not [r for r in by_type(result, RELEASE) if r["name"] == "cloudnative-pg"]


@pytest.mark.parametrize("stack", ["prod", "enterprise"])
@pytest.mark.parametrize("target", TARGETS)
def test_prod_and_enterprise_run_three_instances_with_the_operator(stack, target):
    result = matrix_case(stack, target)
    v = values(result)
    assert v["timescaledb"]["enabled"] is False
    cnpg = v["cloudnativepg"]
    assert cnpg["enabled"] is True and cnpg["instances"] == 3
    assert cnpg["clusterName"] == "pganalytics-db"
    assert cnpg["parameters"]["archive_timeout"] == "300s"
    releases = {r["name"]: r["inputs"] for r in by_type(result, RELEASE)}
    assert releases["cloudnative-pg"]["version"] == "0.29.0"
    assert releases["plugin-barman-cloud"]["version"] == "0.7.0"
    assert releases["cloudnative-pg"]["namespace"] == releases["plugin-barman-cloud"]["namespace"]
    # The plugin's certificates come from cert-manager.
    assert "cert-manager" in releases
    namespace = one(result, "kubernetes:core/v1:Namespace", "cnpg-namespace")["inputs"]
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    policy = one(result, "kubernetes:networking.k8s.io/v1:NetworkPolicy", "cnpg-network-policy")
    assert policy["inputs"]["spec"]["policyTypes"] == ["Ingress", "Egress"]


@pytest.mark.parametrize("stack", ["prod", "enterprise"])
def test_role_secrets_carry_the_credentials_passwords(stack):
    result = matrix_case(stack, "aws")
    secrets = {r["name"]: r for r in by_type(result, SECRET)}
    for name, role in (("pganalytics-cnpg-superuser", "postgres"),
                       ("pganalytics-cnpg-app", "pganalytics"),
                       ("pganalytics-cnpg-grafana", "pganalytics_grafana")):  # fmt: skip
        inputs = secrets[name]["inputs"]
        assert inputs["type"] == "kubernetes.io/basic-auth"
        assert inputs["metadata"]["labels"]["cnpg.io/reload"] == "true"
        assert unsecret(inputs["stringData"])["username"] == role
        # Registered as secret: never plaintext in the state or a preview.
        assert "__secret__" in json.dumps(inputs["stringData"])
    credentials = unsecret(secrets["credentials"]["inputs"]["stringData"])
    app = unsecret(secrets["pganalytics-cnpg-app"]["inputs"]["stringData"])
    assert app["password"] == credentials["database-password"]


IDENTITY = {
    "aws": ("aws:eks/podIdentityAssociation:PodIdentityAssociation", "cnpg-pod-identity"),
    "gcp": ("gcp:serviceaccount/iAMMember:IAMMember", "cnpg-workload-identity"),
    "azure": (
        "azure-native:managedidentity:FederatedIdentityCredential",
        "cnpg-federated-credential",
    ),
}


@pytest.mark.parametrize("target", ["aws", "gcp", "azure"])
def test_the_instances_archive_to_the_bucket_with_their_own_identity(target):
    result = matrix_case("prod", target)
    backup = values(result)["cloudnativepg"]["backup"]
    scheme = {"aws": "s3://", "gcp": "gs://", "azure": "https://"}[target]
    assert backup["enabled"] is True and backup["destinationPath"].startswith(scheme)
    # Azure: its own container `cnpg` (the backups container's retention policy refuses rewrites)
    assert backup["destinationPath"].endswith("/cnpg/archive" if target == "azure" else "/cnpg")
    assert backup["retentionDays"] == 30
    type_, name = IDENTITY[target]
    binding = one(result, type_, name)["inputs"]
    text = json.dumps(binding)
    # Bound to the Cluster's ServiceAccount (named after the Cluster) in the release namespace.
    assert "pganalytics-db" in text and "pganalytics-backup" not in text
    cnpg = values(result)["cloudnativepg"]
    if target == "aws":
        assert binding["serviceAccount"] == "pganalytics-db"
        policy = json.loads(one(result, "aws:iam/rolePolicy:RolePolicy", "cnpg-bucket-access")
                            ["inputs"]["policy"])  # fmt: skip
        objects = next(s for s in policy["Statement"] if "s3:PutObject" in s["Action"])
        assert "s3:DeleteObject" in objects["Action"] and objects["Resource"].endswith("/cnpg/*")
        assert backup["s3"] == {"inheritFromIAMRole": True, "region": "eu-west-1"}
        rules = one(result, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
        cnpg_rule = next(
            r for r in rules["inputs"]["rules"] if r["id"] == "cnpg-noncurrent-versions"
        )
        assert cnpg_rule["filter"] == {"prefix": "cnpg/"} and "expiration" not in cnpg_rule
    if target == "gcp":
        annotations = cnpg["serviceAccount"]["annotations"]
        assert "iam.gke.io/gcp-service-account" in annotations
        member = one(result, "gcp:storage/bucketIAMMember:BucketIAMMember", "cnpg-object-user")
        assert "/objects/cnpg/" in member["inputs"]["condition"]["expression"]
    if target == "azure":
        assert "azure.workload.identity/client-id" in cnpg["serviceAccount"]["annotations"]
        assert cnpg["podLabels"] == {"azure.workload.identity/use": "true"}
        container = one(result, "azure-native:storage:BlobContainer", "cnpg-container")
        assert container["inputs"]["containerName"] == "cnpg"
        role = one(
            result, "azure-native:authorization:RoleAssignment", "cnpg-blob-data-contributor"
        )
        assert role["inputs"]["roleDefinitionId"].endswith("ba92f5b4-2d11-453d-a403-e96b0029c9fe")


def test_operator_already_installed():
    config = stack_config("prod", "existing")
    config["pganalytics:database"] = {**config["pganalytics:database"],
                                      "operator": {"install": False}}  # fmt: skip
    result = run_program("prod", config)
    assert result["error"] is None, result["error"]
    assert not [r for r in by_type(result, RELEASE) if "cnpg" in r["name"] or
                r["name"] in ("cloudnative-pg", "plugin-barman-cloud")]  # fmt: skip
    assert values(result)["cloudnativepg"]["enabled"] is True


BUNDLED_LIVE = {"volumes": {"timescaledb": {"size": "100Gi", "storageClass": "pganalytics-ssd"}}}


def test_a_protected_switch_from_bundled_is_refused():
    config = stack_config("prod", "aws")
    result = run_program("prod", config, previous_outputs=BUNDLED_LIVE)
    assert result["error_type"] == "ConfigError", result["error"]
    assert (
        "pganalytics:database.mode switches this protected stack from the bundled"
        in (result["error"])
    )
    assert "migrateFromBundled" in result["error"]
    assert not result["resources"]


def test_the_documented_migration_lifts_the_bundled_protection():
    # Step 1: still bundled, migrateFromBundled set: the StatefulSet is no longer protected.
    config = stack_config("prod", "aws")
    config["pganalytics:database"] = {"mode": "bundled", "migrateFromBundled": True}
    result = run_program("prod", config, previous_outputs=BUNDLED_LIVE)
    assert result["error"] is None, result["error"]
    # Step 3: the switch goes through with the flag.
    config["pganalytics:database"] = {"mode": "cloudnativepg", "migrateFromBundled": True}
    result = run_program("prod", config, previous_outputs=BUNDLED_LIVE)
    assert result["error"] is None, result["error"]
    assert values(result)["cloudnativepg"]["enabled"] is True
