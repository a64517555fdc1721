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
    # Only this cluster (aws:SourceArn) and the backup ServiceAccount (session tags) may
    # assume it: components/targets/eks/identity.py, tested in tests/unit/test_targets_eks.py.
    assert trust["Statement"] == [
        {
            "Sid": "AllowEksAuthToAssumeRoleForPodIdentity",
            "Effect": "Allow",
            "Principal": {"Service": "pods.eks.amazonaws.com"},
            "Action": ["sts:AssumeRole", "sts:TagSession"],
            "Condition": {
                "StringEquals": {
                    "aws:SourceAccount": "123456789012",
                    "aws:RequestTag/kubernetes-namespace": NAMESPACE,
                    "aws:RequestTag/kubernetes-service-account": KSA,
                },
                "ArnEquals": {
                    "aws:SourceArn": "arn:aws:eks:eu-west-1:123456789012:cluster/pganalytics-prod"
                },
            },
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
        m["name"]: m["inputs"]["role"]
        for m in _of(result, "gcp:storage/bucketIAMMember:BucketIAMMember")
        if m["name"].startswith("backup-")  # cnpg-*: the database's own (tests/unit)
    }
    assert members == {
        "backup-objectcreator": "roles/storage.objectCreator",
        "backup-objectviewer": "roles/storage.objectViewer",
        "backup-restore-objectviewer": "roles/storage.objectViewer",
    }
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
    # The chart refuses egress to the metadata address unless acknowledged (GKE's metadata
    # server serves the workload identity's token).
    egress = values["networkPolicy"]
    assert egress["acknowledgeMetadataEgress"] is True
    assert {"ipBlock": {"cidr": "169.254.169.254/32"}} in egress["extraEgress"][0]["to"]


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
    container = one(result, "azure-native:storage:BlobContainer", "backup-container")["inputs"]
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


# An S3-compatible store of target existing, as the docs set it up.
MINIO = {
    "endpoint": "https://minio.example.com:9000",
    "bucketName": "pga-backups",
    "credentialsSecret": "pganalytics-backup-s3",
}


def test_existing_uploads_to_an_s3_compatible_endpoint_with_a_secret():
    config = stack_config("prod", "existing")
    config["pganalytics:backup"] = MINIO
    result = run_program("prod", config)
    assert result["error"] is None, result["error"]
    values = _chart_backup_values(result)
    s3 = values["destination"]["s3"]
    assert values["destination"]["bucket"] == "pga-backups"
    assert s3["endpoint"] == "https://minio.example.com:9000"
    assert s3["existingSecret"] == "pganalytics-backup-s3"
    assert s3["forcePathStyle"] is True
    assert values["networkPolicy"]["objectStorePorts"] == [9000]
    # A store of your own may be private: only the metadata range is left out of 0.0.0.0/0.
    assert values["networkPolicy"]["objectStoreExcept"] == ["169.254.0.0/16"]
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
    container = one(result, "azure-native:storage:BlobContainer", "backup-container")["inputs"]
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


# --- issue 18 item 6: write once, immutability, a read-only restore identity ----------------
# Plan tests under mocks: they prove what the program asks each cloud for. Whether the cloud
# enforces it (IAM, bucket policies, Object Lock, retention policies) only a real cloud shows;
# tests/backup/test_tamper.py runs the scripts against emulators.

RESTORE_KSA = "pganalytics-restore"


def test_aws_refuses_an_upload_that_could_replace_a_backup():
    """The bucket policy denies PutObject and CompleteMultipartUpload under the backups'
    prefix without If-None-Match, to every principal: S3's documented way to enforce
    conditional writes (https://docs.aws.amazon.com/AmazonS3/latest/userguide/
    conditional-writes-enforce.html); the multipart parts, which take no such header, are
    exempt through s3:ObjectCreationOperation. The chart sends the header."""
    result = matrix_case("prod", "aws")
    policy = json.loads(one(result, "aws:s3/bucketPolicy:BucketPolicy")["inputs"]["policy"])
    once = next(st for st in policy["Statement"] if st.get("Sid") == "WriteBackupsOnce")
    assert once["Effect"] == "Deny" and once["Principal"] == "*"
    assert once["Action"] == "s3:PutObject"
    bucket_arn = policy["Statement"][0]["Resource"][0]  # DenyInsecureTransport's
    assert once["Resource"] == f"{bucket_arn}/pganalytics/*", "the dumps' prefix only"
    assert once["Condition"] == {
        "Null": {"s3:if-none-match": "true"},
        "Bool": {"s3:ObjectCreationOperation": "true"},
    }
    assert _chart_backup_values(result)["destination"]["s3"]["writeOnce"] is True


@pytest.mark.parametrize(("stack", "mode"), [("prod", "governance"), ("enterprise", "compliance")])
def test_aws_locks_backups_in_place_without_replacing_the_bucket(stack, mode):
    """backup.lockDays (14 in prod and enterprise) becomes the bucket's Object Lock default
    retention through s3.BucketObjectLockConfiguration, which enables Object Lock on an
    existing versioned bucket in place; the Bucket's own objectLockEnabled is never set, as
    changing it replaces the bucket (pulumi-aws s3.Bucket: "Forces new resource")."""
    config = stack_config(stack, "aws")
    config["pganalytics:backup"] = {**config["pganalytics:backup"], "lockMode": mode}
    result = run_program(stack, config)
    assert result["error"] is None, result["error"]
    bucket = one(result, "aws:s3/bucket:Bucket", "backup-bucket")
    assert "objectLockEnabled" not in bucket["inputs"]
    assert bucket["protect"], "a replacement of the bucket would fail, not lose the backups"
    lock = one(result, "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration")
    assert lock["inputs"]["objectLockEnabled"] == "Enabled"
    assert lock["inputs"]["rule"]["defaultRetention"] == {"mode": mode.upper(), "days": 14}
    assert "aws:s3/bucketVersioning:BucketVersioning::backup-versioning" in lock["dependencies"]
    rules = one(result, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
    retention = next(r for r in rules["inputs"]["rules"] if r["id"] == "backup-retention")
    assert retention["expiration"]["days"] >= 14, "a locked backup would outlive its expiry"


def test_without_lock_days_nothing_is_locked():
    config = stack_config("prod", "aws")
    config["pganalytics:backup"] = {"lockDays": 0}
    result = run_program("prod", config)
    assert not _of(result, "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration")


def test_aws_restore_identity_only_reads_and_the_writer_cannot_delete():
    result = matrix_case("prod", "aws")
    access = json.loads(
        one(result, "aws:iam/rolePolicy:RolePolicy", "backup-restore-bucket-access")["inputs"][
            "policy"
        ]
    )
    actions = {a for st in access["Statement"] for a in st["Action"]}
    assert actions == {"s3:ListBucket", "s3:GetObject"}
    attached = one(result, "aws:iam/rolePolicy:RolePolicy", "backup-restore-bucket-access")
    assert attached["propertyDependencies"]["role"] == ["aws:iam/role:Role::backup-restore-role"]
    assoc = one(
        result,
        "aws:eks/podIdentityAssociation:PodIdentityAssociation",
        "backup-restore-pod-identity",
    )["inputs"]
    assert (assoc["namespace"], assoc["serviceAccount"]) == (NAMESPACE, RESTORE_KSA)
    writer = json.loads(
        one(result, "aws:iam/rolePolicy:RolePolicy", "backup-bucket-access")["inputs"]["policy"]
    )
    written = {a for st in writer["Statement"] for a in st["Action"]}
    assert not [a for a in written if "Delete" in a or "Retention" in a or "Bypass" in a]


@pytest.mark.parametrize(("lock_days", "days"), [(14, 14), (0, 7), (3, 7), (90, 90)])
def test_gcs_keeps_deleted_or_replaced_backups_for_the_lock_days(lock_days, days):
    """GCS soft delete: a deleted or overwritten object stays restorable, and cannot be
    deleted for good, for the policy's duration (7-90 days;
    https://cloud.google.com/storage/docs/soft-delete). No bucket retention policy: it cannot
    coexist with versioning (the provider's retention_policy) and it refuses the rewrites
    barman does under CloudNativePG's prefix."""
    config = stack_config("prod", "gcp")
    config["pganalytics:backup"] = {"lockDays": lock_days, "retentionDays": 90}
    result = run_program("prod", config)
    assert result["error"] is None, result["error"]
    bucket = one(result, "gcp:storage/bucket:Bucket", "backup-bucket")["inputs"]
    assert bucket["softDeletePolicy"]["retentionDurationSeconds"] == days * 24 * 3600
    assert "retentionPolicy" not in bucket and bucket["versioning"] == {"enabled": True}


def test_gcs_restore_identity_only_reads():
    result = matrix_case("prod", "gcp")
    sa = one(result, "gcp:serviceaccount/account:Account", "backup-restore-service-account")
    assert sa["inputs"]["accountId"] == "pganalytics-prod-rs"
    wi = one(result, "gcp:serviceaccount/iAMMember:IAMMember", "backup-restore-workload-identity")
    assert wi["inputs"]["member"] == (
        f"serviceAccount:pganalytics-test.svc.id.goog[{NAMESPACE}/{RESTORE_KSA}]"
    )
    assert wi["propertyDependencies"]["serviceAccountId"] == [
        "gcp:serviceaccount/account:Account::backup-restore-service-account"
    ]
    values = _chart_backup_values(result)
    restore = values["restore"]["serviceAccount"]["annotations"]["iam.gke.io/gcp-service-account"]
    backup = values["serviceAccount"]["annotations"]["iam.gke.io/gcp-service-account"]
    assert restore.endswith("iam.gserviceaccount.com") and restore != backup


def test_azure_writer_cannot_delete_and_the_container_is_immutable_for_the_lock_days():
    """The writer's custom role is Storage Blob Data Contributor without any delete; the
    container gets a container-level time-based retention policy, which Azure allows on an
    existing container (https://learn.microsoft.com/azure/storage/blobs/
    immutable-container-level-worm-policies); the container's immutableStorageWithVersioning,
    settable only when a container is created, is never set."""
    result = matrix_case("prod", "azure")
    role = one(result, "azure-native:authorization:RoleDefinition", "backup-writer-role")["inputs"]
    (permission,) = role["permissions"]
    assert not [a for a in permission["dataActions"] if "delete" in a.lower() or "move" in a]
    assert (
        "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/add/action"
        in (permission["dataActions"])
    )
    assert not [a for a in permission["actions"] if not a.endswith("/read")]
    writer = one(result, "azure-native:authorization:RoleAssignment", "backup-blob-writer")
    assert writer["propertyDependencies"]["roleDefinitionId"] == [
        "azure-native:authorization:RoleDefinition::backup-writer-role"
    ]
    reader = one(result, "azure-native:authorization:RoleAssignment", "backup-restore-blob-reader")
    assert reader["inputs"]["roleDefinitionId"].endswith("2a2b9908-6ea1-4ae2-8e65-a410df84e7d1")
    assert reader["propertyDependencies"]["principalId"] == [
        "azure-native:managedidentity:UserAssignedIdentity::backup-restore-identity"
    ]
    fic = one(
        result,
        "azure-native:managedidentity:FederatedIdentityCredential",
        "backup-restore-federated-credential",
    )["inputs"]
    assert fic["subject"] == f"system:serviceaccount:{NAMESPACE}:{RESTORE_KSA}"
    policy = one(result, "azure-native:storage:BlobContainerImmutabilityPolicy")["inputs"]
    assert policy["immutabilityPeriodSinceCreationInDays"] == 14
    assert policy["allowProtectedAppendWrites"] is False
    container = one(result, "azure-native:storage:BlobContainer", "backup-container")["inputs"]
    assert "immutableStorageWithVersioning" not in container
    values = _chart_backup_values(result)
    assert values["restore"]["serviceAccount"]["annotations"]["azure.workload.identity/client-id"]


def test_existing_locks_each_upload_and_restores_with_read_only_keys():
    config = stack_config("prod", "existing")
    config["pganalytics:backup"] = {
        **MINIO,
        "restoreCredentialsSecret": "pganalytics-restore-s3",
        "lockDays": 10,
        "lockMode": "compliance",
    }
    result = run_program("prod", config)
    assert result["error"] is None, result["error"]
    values = _chart_backup_values(result)
    assert values["destination"]["s3"]["objectLock"] == {"mode": "COMPLIANCE", "days": 10}
    assert values["destination"]["s3"]["writeOnce"] is True
    assert values["restore"]["existingSecret"] == "pganalytics-restore-s3"
