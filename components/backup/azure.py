"""Backups on Azure: a storage account in its own resource group (Microsoft-managed encryption
with infrastructure encryption, HTTPS and TLS 1.2 only, no public blob access, no shared keys:
Entra ID only), blob versioning and soft delete, a lifecycle policy for retention, one private
container (with backup.lockDays a time-based retention policy on it), a delete lock on prod;
and two user-assigned identities whose federated credentials each trust one ServiceAccount,
through the AKS OIDC issuer (Azure workload identity): the backup's, with a custom role that
writes and reads blobs but cannot delete one, and the restore's, which only reads."""

from __future__ import annotations

import pulumi
from pulumi_azure_native import authorization, managedidentity, resources, storage

from components.backup.base import (
    BACKUP_PREFIX,
    CNPG_PREFIX,
    BackupArgs,
    BackupDestination,
)
from components.targets.aks import builtin_role

CONTAINER = "backups"
# Built-in role: Storage Blob Data Reader (read and list blobs).
BLOB_DATA_READER = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"
# Built-in role: Storage Blob Data Contributor (read, write, delete blobs): the CloudNativePG
# instances', whose barman retention deletes what it expires.
BLOB_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
# The backup writer's custom role: Storage Blob Data Contributor without any delete
# (blobs/delete, deleteBlobVersion, permanentDelete), move or container management
# (https://learn.microsoft.com/azure/role-based-access-control/permissions/storage).
BLOBS = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs"
WRITER_ACTIONS = ["Microsoft.Storage/storageAccounts/blobServices/containers/read"]
WRITER_DATA_ACTIONS = [f"{BLOBS}/read", f"{BLOBS}/write", f"{BLOBS}/add/action"]
TOKEN_AUDIENCE = "api://AzureADTokenExchange"
CONTAINER_SOFT_DELETE_DAYS = 7


def lifecycle_policy(container: str, retention_days: int, version_days: int) -> dict:
    return {
        "rules": [
            {
                "name": "backup-retention",
                "enabled": True,
                "type": "Lifecycle",
                "definition": {
                    "filters": {
                        "blob_types": ["blockBlob"],
                        "prefix_match": [f"{container}/{BACKUP_PREFIX}/"],
                    },
                    "actions": {
                        "base_blob": {
                            "delete": {"days_after_modification_greater_than": retention_days}
                        },
                        "version": {"delete": {"days_after_creation_greater_than": version_days}},
                    },
                },
            }
        ]
    }


class AzureBlobBackup(BackupDestination):
    """Outputs: `bucket_name` (the container), `account_name`, `client_id`, `chart_values`."""

    def __init__(self, name: str, args: BackupArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("pganalytics:backup:AzureBlobBackup", name, args, opts)
        s = args.settings
        provider = args.target.azure_provider
        child, keep = self._options(provider)
        tags = self._tags()

        # Its own group: deleting the cluster's group never takes the backups with it.
        group = resources.ResourceGroup(
            "backup-resource-group",
            resource_group_name=f"{s.cluster_name}-backup-rg",
            location=s.region,
            tags=tags,
            opts=keep,
        )
        # pganalytics:backup.bucketName names the container here (the account is global).
        container = s.backup.bucket_name or CONTAINER
        account_name = s.backup.storage_account_name or self._suffix(12).apply(
            lambda x: f"pgabk{x}"
        )
        self.account = storage.StorageAccount(
            "backup-account",
            account_name=account_name,
            resource_group_name=group.name,
            location=s.region,
            kind="StorageV2",
            sku={"name": "Standard_GRS"},
            access_tier="Hot",
            allow_blob_public_access=False,
            allow_shared_key_access=False,
            default_to_o_auth_authentication=True,
            enable_https_traffic_only=True,
            minimum_tls_version="TLS1_2",
            encryption={
                "key_source": "Microsoft.Storage",
                "require_infrastructure_encryption": True,
                "services": {"blob": {"enabled": True, "key_type": "Account"}},
            },
            tags=tags,
            opts=keep,
        )
        storage.BlobServiceProperties(
            "backup-blob-service",
            account_name=self.account.name,
            resource_group_name=group.name,
            blob_services_name="default",
            is_versioning_enabled=True,
            delete_retention_policy={"enabled": True, "days": s.backup.version_retention_days},
            container_delete_retention_policy={
                "enabled": True,
                "days": CONTAINER_SOFT_DELETE_DAYS,
            },
            opts=child,
        )
        self.container = storage.BlobContainer(
            "backup-container",
            account_name=self.account.name,
            resource_group_name=group.name,
            container_name=container,
            public_access="None",
            opts=keep,
        )
        if s.backup.lock_days:
            # Container-level WORM, settable on a new or existing container (never the
            # container's immutableStorageWithVersioning, which only a new container takes and
            # would replace this one): a blob can be neither overwritten nor deleted until
            # lockDays after its creation, by anyone
            # (https://learn.microsoft.com/azure/storage/blobs/immutable-container-level-worm-policies).
            # The policy is created unlocked; locking it is a deliberate step
            # (docs/BACKUP_RESTORE.md). CloudNativePG writes to a container of its own.
            storage.BlobContainerImmutabilityPolicy(
                "backup-immutability",
                account_name=self.account.name,
                resource_group_name=group.name,
                container_name=self.container.name,
                immutability_policy_name="default",
                immutability_period_since_creation_in_days=s.backup.lock_days,
                allow_protected_append_writes=False,
                opts=child,
            )
        storage.ManagementPolicy(
            "backup-lifecycle",
            account_name=self.account.name,
            resource_group_name=group.name,
            management_policy_name="default",
            policy=lifecycle_policy(
                container, s.backup.retention_days, s.backup.version_retention_days
            ),
            opts=child,
        )
        if s.protect:
            authorization.ManagementLockAtResourceGroupLevel(
                "backup-delete-lock",
                lock_name="pganalytics-backups",
                level="CanNotDelete",
                notes="Holds the pgAnalytics backups (docs/BACKUP_RESTORE.md).",
                resource_group_name=group.name,
                opts=pulumi.ResourceOptions.merge(
                    child, pulumi.ResourceOptions(depends_on=[self.container])
                ),
            )

        # --- identities: the backup pods write, the restore Job only reads ------------------
        client = authorization.get_client_config_output(
            opts=pulumi.InvokeOptions(parent=self, provider=provider)
        )
        writer = authorization.RoleDefinition(
            "backup-writer-role",
            role_name=f"pgAnalytics backup writer ({s.cluster_name}-backup-rg)",
            description="Writes and reads pgAnalytics backups; cannot delete one.",
            role_type="CustomRole",
            scope=client.subscription_id.apply(lambda sub: f"/subscriptions/{sub}"),
            assignable_scopes=[group.id],
            permissions=[{"actions": WRITER_ACTIONS, "data_actions": WRITER_DATA_ACTIONS}],
            opts=child,
        )
        issuer = args.target.cluster.oidc_issuer_profile.apply(
            lambda p: p.issuer_url if p else None
        )
        common = {"group": group, "issuer": issuer, "tags": tags, "child": child}
        # "backup-blob-writer" replaces the assignment of Storage Blob Data Contributor (which
        # deletes) that this identity held before.
        self.identity = self._federated_identity(
            "backup", self.service_account_name, ("backup-blob-writer", writer.id), **common
        )
        reader = builtin_role(client.subscription_id, BLOB_DATA_READER)
        self.restore_identity = self._federated_identity(
            "backup-restore",
            self.restore_service_account_name,
            ("backup-restore-blob-reader", reader),
            **common,
        )

        self.bucket_name = self.container.name
        self.account_name = self.account.name
        self.client_id = self.identity.client_id
        if self.cnpg:
            # CloudNativePG's own container: the backups container's retention policy would
            # refuse barman's rewrites and deletes. Its identity: Storage Blob Data Contributor
            # on that container only, since barman's retention deletes what it expires.
            self.cnpg_container = storage.BlobContainer(
                "cnpg-container",
                account_name=self.account.name,
                resource_group_name=group.name,
                container_name=CNPG_PREFIX,
                public_access="None",
                opts=keep,
            )
            contributor = builtin_role(client.subscription_id, BLOB_DATA_CONTRIBUTOR)
            cnpg = self._federated_identity(
                "cnpg", self.cnpg_service_account, ("cnpg-blob-data-contributor", contributor),
                container=self.cnpg_container, **common,
            )  # fmt: skip
            destination = self.account.name.apply(
                lambda a: f"https://{a}.blob.core.windows.net/{CNPG_PREFIX}/archive"
            )
            self.cnpg_values = {
                "backup": self._cnpg_backup(
                    destination, "azure", retentionDays=s.backup.retention_days
                ),
                "serviceAccount": {
                    "annotations": {"azure.workload.identity/client-id": cnpg.client_id}
                },
                "podLabels": {"azure.workload.identity/use": "true"},
            }
        self.chart_values = {
            "destination": {
                "type": "azureblob",
                "bucket": self.bucket_name,
                "prefix": BACKUP_PREFIX,
                "azureblob": {"account": self.account_name},
            },
            "serviceAccount": {
                "annotations": {"azure.workload.identity/client-id": self.client_id}
            },
            "restore": {
                "serviceAccount": {
                    "annotations": {
                        "azure.workload.identity/client-id": self.restore_identity.client_id
                    }
                }
            },
            "podLabels": {"azure.workload.identity/use": "true"},
        }
        self._outputs()

    def _federated_identity(
        self, name, service_account, role, *, group, issuer, tags, child, container=None
    ):
        """A user-assigned identity `<clusterName>-<name>` whose federated credential trusts
        only `system:serviceaccount:<namespace>:<service_account>` (Azure workload identity),
        with `role` (assignment name, role definition id) on the container only, not the
        account."""
        identity = managedidentity.UserAssignedIdentity(
            f"{name}-identity",
            resource_group_name=group.name,
            resource_name_=f"{self.settings.cluster_name}-{name}",
            location=self.settings.region,
            tags=tags,
            opts=child,
        )
        managedidentity.FederatedIdentityCredential(
            f"{name}-federated-credential",
            resource_group_name=group.name,
            resource_name_=identity.name,
            federated_identity_credential_resource_name=f"pganalytics-{name.split('-')[-1]}",
            issuer=issuer,
            subject=pulumi.Output.from_input(self.namespace).apply(
                lambda ns: f"system:serviceaccount:{ns}:{service_account}"
            ),
            audiences=[TOKEN_AUDIENCE],
            opts=child,
        )
        assignment, definition = role
        authorization.RoleAssignment(
            assignment,
            principal_id=identity.principal_id,
            principal_type="ServicePrincipal",
            role_definition_id=definition,
            scope=(container or self.container).id,
            opts=child,
        )
        return identity
