"""Backups on Azure: a storage account in its own resource group (Microsoft-managed encryption
with infrastructure encryption, HTTPS and TLS 1.2 only, no public blob access, no shared keys:
Entra ID only), blob versioning and soft delete, a lifecycle policy for retention, one private
container, a delete lock on prod; and a user-assigned identity whose federated credential
trusts only the backup ServiceAccount, through the AKS OIDC issuer (Azure workload identity)."""

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
# Built-in role: Storage Blob Data Contributor (read, write, list blobs).
BLOB_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
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

        # --- identity: only <namespace>/<fullname>-backup may use it --------------------------
        issuer = args.target.cluster.oidc_issuer_profile.apply(
            lambda p: p.issuer_url if p else None
        )
        client = authorization.get_client_config_output(
            opts=pulumi.InvokeOptions(parent=self, provider=provider)
        )
        self.identity = self._container_identity(
            "backup", self.service_account_name, args, child, group, issuer, client, tags
        )

        self.bucket_name = self.container.name
        self.account_name = self.account.name
        self.client_id = self.identity.client_id
        if self.cnpg:
            self._cnpg_identity(args, child, group, issuer, client, tags)
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
            "podLabels": {"azure.workload.identity/use": "true"},
        }
        self._outputs()

    def _container_identity(self, name, ksa, args, child, group, issuer, client, tags):
        """A user-assigned identity `<clusterName>-<name>` federated with one ServiceAccount of
        the release namespace (Azure workload identity), Storage Blob Data Contributor on the
        container only, not the account. Children `<name>-identity`,
        `<name>-federated-credential`, `<name>-blob-data-contributor`."""
        identity = managedidentity.UserAssignedIdentity(
            f"{name}-identity",
            resource_group_name=group.name,
            resource_name_=f"{args.settings.cluster_name}-{name}",
            location=args.settings.region,
            tags=tags,
            opts=child,
        )
        managedidentity.FederatedIdentityCredential(
            f"{name}-federated-credential",
            resource_group_name=group.name,
            resource_name_=identity.name,
            federated_identity_credential_resource_name=f"pganalytics-{name}",
            issuer=issuer,
            subject=pulumi.Output.from_input(args.namespace).apply(
                lambda ns: f"system:serviceaccount:{ns}:{ksa}"
            ),
            audiences=[TOKEN_AUDIENCE],
            opts=child,
        )
        authorization.RoleAssignment(
            f"{name}-blob-data-contributor",
            principal_id=identity.principal_id,
            principal_type="ServicePrincipal",
            role_definition_id=builtin_role(client.subscription_id, BLOB_DATA_CONTRIBUTOR),
            scope=self.container.id,
            opts=child,
        )
        return identity

    def _cnpg_identity(self, args, child, group, issuer, client, tags) -> None:
        """The Cluster's ServiceAccount gets its own identity on the container (barman's
        retention deletes what it expires)."""
        s = args.settings
        identity = self._container_identity(
            "cnpg", self.cnpg_service_account, args, child, group, issuer, client, tags
        )
        destination = pulumi.Output.all(self.account.name, self.container.name).apply(
            lambda a: f"https://{a[0]}.blob.core.windows.net/{a[1]}/{CNPG_PREFIX}"
        )
        self.cnpg_values = {
            "backup": self._cnpg_backup(
                destination, "azure", retentionDays=s.backup.retention_days
            ),
            "serviceAccount": {
                "annotations": {"azure.workload.identity/client-id": identity.client_id}
            },
            "podLabels": {"azure.workload.identity/use": "true"},
        }
