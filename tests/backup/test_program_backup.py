"""The program's backup resources under Pulumi mocks (tests/unit/harness.py): per cloud, the
bucket is encrypted, versioned, retained by lifecycle rules, not public and protected on prod,
and the workload identity is bound to the backup ServiceAccount of the release namespace only;
the chart receives the destination. Mocks stand in for the cloud APIs: they prove what the
program asks for, not what a cloud accepts."""

from __future__ import annotations

import json

import pytest

from tests.unit.harness import matrix_case, one, run_program, stack_config, unsecret

NAMESPACE = "pganalytics"
KSA = "pganalytics-backup"


def _chart_backup_values(result) -> dict:
    chart = one(result, "kubernetes:helm.sh/v4:Chart", "pganalytics")
    return unsecret(chart["inputs"]["values"])["backup"]


def _of(result, type_):
    return [r for r in result["resources"] if r["type"] == type_]


@pytest.mark.parametrize("stack", ["prod", "enterprise"])
def test_aws_bucket_is_private_encrypted_versioned_and_retained(stack):
    result = matrix_case(stack, "aws")
    assert result["error"] is None, result["error"]
    bucket = one(result, "aws:s3/bucket:Bucket", "backup-bucket")
    assert bucket["protect"] and bucket["retainOnDelete"]
    assert bucket["inputs"]["forceDestroy"] is False
    name = bucket["inputs"]["bucket"]
    assert name.startswith(f"pganalytics-{stack}-backups-")

    block = one(result, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")["inputs"]
    assert all(
        block[k]
        for k in (
            "blockPublicAcls",
            "blockPublicPolicy",
            "ignorePublicAcls",
            "restrictPublicBuckets",
        )
    )
    ownership = one(result, "aws:s3/bucketOwnershipControls:BucketOwnershipControls")["inputs"]
    assert ownership["rule"]["objectOwnership"] == "BucketOwnerEnforced"
    sse = one(
        result,
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    )["inputs"]
    assert sse["rules"][0]["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "AES256"
    versioning = one(result, "aws:s3/bucketVersioning:BucketVersioning")["inputs"]
    assert versioning["versioningConfiguration"]["status"] == "Enabled"
    rules = one(result, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")[
        "inputs"
    ]["rules"]
    retention = next(r for r in rules if r["id"] == "backup-retention")
    assert retention["expiration"]["days"] == 30
    assert retention["noncurrentVersionExpiration"]["noncurrentDays"] == 7
    policy = json.loads(one(result, "aws:s3/bucketPolicy:BucketPolicy")["inputs"]["policy"])
    assert policy["Statement"][0]["Effect"] == "Deny"
    assert policy["Statement"][0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_aws_identity_is_bound_to_the_backup_service_account_only():
    result = matrix_case("prod", "aws")
    role = one(result, "aws:iam/role:Role", "backup-role")
    trust = json.loads(role["inputs"]["assumeRolePolicy"])
    assert trust["Statement"] == [
        {
            "Effect": "Allow",
            "Principal": {"Service": "pods.eks.amazonaws.com"},
            "Action": ["sts:AssumeRole", "sts:TagSession"],
        }
    ]
    # The cluster has others (the cluster autoscaler's): the backup's is found by name.
    assoc = one(
        result, "aws:eks/podIdentityAssociation:PodIdentityAssociation", "backup-pod-identity"
    )["inputs"]
    assert (assoc["namespace"], assoc["serviceAccount"]) == (NAMESPACE, KSA)
    assert assoc["clusterName"] == "pganalytics-prod"
    # Only one association uses this role: no other ServiceAccount gets it.
    uses = [
        a
        for a in _of(result, "aws:eks/podIdentityAssociation:PodIdentityAssociation")
        if a["inputs"].get("roleArn") == assoc["roleArn"]
    ]
    assert len(uses) == 1
    # By name too (the autoscaler's role has a policy of its own), attached to the backup role.
    access = one(result, "aws:iam/rolePolicy:RolePolicy", "backup-bucket-access")
    assert access["propertyDependencies"]["role"] == ["aws:iam/role:Role::backup-role"]
    policy = json.loads(access["inputs"]["policy"])
    actions = {a for st in policy["Statement"] for a in st["Action"]}
    assert "s3:PutObject" in actions and "s3:GetObject" in actions
    assert not any("Delete" in a for a in actions), "the job must not be able to delete backups"
    # The pod-identity agent add-on the association needs runs on the cluster.
    addons = {a["inputs"]["addonName"] for a in _of(result, "aws:eks/addon:Addon")}
    assert "eks-pod-identity-agent" in addons
    values = _chart_backup_values(result)
    assert values["destination"]["type"] == "s3"
    assert values["destination"]["bucket"].startswith("pganalytics-prod-backups-")
    assert values["destination"]["s3"]["region"] == "eu-west-1"
    assert values["destination"]["s3"]["existingSecret"] == ""  # workload identity, no keys


@pytest.mark.parametrize("stack", ["prod", "enterprise"])
def test_gcs_bucket_and_workload_identity(stack):
    result = matrix_case(stack, "gcp")
    assert result["error"] is None, result["error"]
    bucket = one(result, "gcp:storage/bucket:Bucket", "backup-bucket")
    b = bucket["inputs"]
    assert bucket["protect"] and bucket["retainOnDelete"]
    assert b["publicAccessPrevention"] == "enforced"
    assert b["uniformBucketLevelAccess"] is True
    assert b["versioning"] == {"enabled": True}
    assert b["forceDestroy"] is False
    ages = {r["condition"].get("age") for r in b["lifecycleRules"]}
    assert 30 in ages
    noncurrent = {r["condition"].get("daysSinceNoncurrentTime") for r in b["lifecycleRules"]}
    assert 7 in noncurrent
    members = {
        m["inputs"]["role"]: m["inputs"]["member"]
        for m in _of(result, "gcp:storage/bucketIAMMember:BucketIAMMember")
        if m["name"].startswith("backup-")  # cnpg-*: the database's own (tests/unit)
    }
    assert set(members) == {"roles/storage.objectCreator", "roles/storage.objectViewer"}
    wi = one(result, "gcp:serviceaccount/iAMMember:IAMMember", "backup-workload-identity")
    assert wi["inputs"]["role"] == "roles/iam.workloadIdentityUser"
    assert (
        wi["inputs"]["member"] == f"serviceAccount:pganalytics-test.svc.id.goog[{NAMESPACE}/{KSA}]"
    )
    cluster = one(result, "gcp:container/cluster:Cluster")["inputs"]
    assert cluster["workloadIdentityConfig"]["workloadPool"] == "pganalytics-test.svc.id.goog"
    values = _chart_backup_values(result)
    email = values["serviceAccount"]["annotations"]["iam.gke.io/gcp-service-account"]
    assert email.endswith("iam.gserviceaccount.com")
    assert values["destination"]["type"] == "gcs"


@pytest.mark.parametrize("stack", ["prod", "enterprise"])
def test_azure_storage_and_federated_identity(stack):
    result = matrix_case(stack, "azure")
    assert result["error"] is None, result["error"]
    account = one(result, "azure-native:storage:StorageAccount", "backup-account")
    a = account["inputs"]
    assert account["protect"]
    assert a["allowBlobPublicAccess"] is False
    assert a["allowSharedKeyAccess"] is False
    assert a["enableHttpsTrafficOnly"] is True
    assert a["minimumTlsVersion"] == "TLS1_2"
    assert a["encryption"]["requireInfrastructureEncryption"] is True
    assert len(a["accountName"]) <= 24 and a["accountName"].isalnum()
    service = one(result, "azure-native:storage:BlobServiceProperties")["inputs"]
    assert service["isVersioningEnabled"] is True
    container = one(result, "azure-native:storage:BlobContainer")["inputs"]
    assert container["publicAccess"] == "None"
    rule = one(result, "azure-native:storage:ManagementPolicy")["inputs"]["policy"]["rules"][0]
    actions = rule["definition"]["actions"]
    assert actions["baseBlob"]["delete"]["daysAfterModificationGreaterThan"] == 30
    assert actions["version"]["delete"]["daysAfterCreationGreaterThan"] == 7
    lock = one(result, "azure-native:authorization:ManagementLockAtResourceGroupLevel")
    assert lock["inputs"]["level"] == "CanNotDelete"
    fic = one(
        result,
        "azure-native:managedidentity:FederatedIdentityCredential",
        "backup-federated-credential",
    )["inputs"]
    assert fic["subject"] == f"system:serviceaccount:{NAMESPACE}:{KSA}"
    assert fic["audiences"] == ["api://AzureADTokenExchange"]
    assert fic["issuer"].startswith("https://")
    role = one(result, "azure-native:authorization:RoleAssignment", "backup-blob-data-contributor")
    assert role["inputs"]["roleDefinitionId"].endswith("ba92f5b4-2d11-453d-a403-e96b0029c9fe")
    cluster = one(result, "azure-native:containerservice:ManagedCluster")["inputs"]
    assert cluster["oidcIssuerProfile"]["enabled"] is True
    assert cluster["securityProfile"]["workloadIdentity"]["enabled"] is True
    values = _chart_backup_values(result)
    assert values["destination"]["type"] == "azureblob"
    assert values["podLabels"] == {"azure.workload.identity/use": "true"}
    assert values["serviceAccount"]["annotations"]["azure.workload.identity/client-id"]


@pytest.mark.parametrize("target", ["aws", "gcp", "azure"])
def test_dev_has_no_backup_resources(target):
    result = matrix_case("dev", target)
    assert not [r for r in result["resources"] if r["type"].startswith("pganalytics:backup")]
    assert result["outputs"]["backupBucket"]["value"] is None


def test_a_stack_without_protect_leaves_the_bucket_unprotected():
    config = stack_config("prod", "aws")
    config["pganalytics:protect"] = "false"
    result = run_program("prod", config)
    bucket = one(result, "aws:s3/bucket:Bucket", "backup-bucket")
    assert not bucket["protect"] and not bucket["retainOnDelete"]


def test_existing_uploads_to_an_s3_compatible_endpoint_with_a_secret():
    config = stack_config("prod", "existing")
    config["pganalytics:backup"] = {
        "endpoint": "https://minio.example.com:9000",
        "bucketName": "pga-backups",
        "credentialsSecret": "pganalytics-backup-s3",
    }
    result = run_program("prod", config)
    assert result["error"] is None, result["error"]
    values = _chart_backup_values(result)
    s3 = values["destination"]["s3"]
    assert values["destination"]["bucket"] == "pga-backups"
    assert s3["endpoint"] == "https://minio.example.com:9000"
    assert s3["existingSecret"] == "pganalytics-backup-s3"
    assert s3["forcePathStyle"] is True
    assert values["networkPolicy"]["objectStorePorts"] == [9000]
    assert not [
        r
        for r in result["resources"]
        if r["custom"] and r["type"].startswith(("aws:", "gcp:", "azure"))
    ]


def test_existing_without_endpoint_keeps_backups_on_the_volume():
    result = matrix_case("prod", "existing")
    assert result["error"] is None
    values = _chart_backup_values(result)
    assert values.get("destination", {}).get("type", "") == ""


# Bad backup keys are cases of tests/unit/test_bad_config.py (every refusal, and every fix it
# suggests, is checked there with the other keys).


def test_azure_bucket_name_names_the_container():
    config = stack_config("prod", "azure")
    config["pganalytics:backup"] = {
        **config["pganalytics:backup"],
        "bucketName": "pga-dumps",
        "storageAccountName": "pgadumps0prod",
    }
    result = run_program("prod", config)
    assert result["error"] is None, result["error"]
    container = one(result, "azure-native:storage:BlobContainer")["inputs"]
    assert container["containerName"] == "pga-dumps"
    account = one(result, "azure-native:storage:StorageAccount", "backup-account")["inputs"]
    assert account["accountName"] == "pgadumps0prod"
    rule = one(result, "azure-native:storage:ManagementPolicy")["inputs"]["policy"]["rules"][0]
    assert rule["definition"]["filters"]["prefixMatch"] == ["pga-dumps/pganalytics/"]
    assert _chart_backup_values(result)["destination"]["bucket"] == "pga-dumps"


def test_the_identity_follows_a_renamed_release():
    config = stack_config("prod", "gcp")
    config["pganalytics:chart"] = {"values": {"fullnameOverride": "analytics"}}
    result = run_program("prod", config)
    assert result["error"] is None, result["error"]
    wi = one(result, "gcp:serviceaccount/iAMMember:IAMMember", "backup-workload-identity")
    assert wi["inputs"]["member"].endswith(f"[{NAMESPACE}/analytics-backup]")
