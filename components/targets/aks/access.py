"""Who reaches an AKS cluster and with which rights: built-in role ids, the kubelogin
kubeconfig, and what the RBAC wait checks (rbac.py)."""

from __future__ import annotations

import pulumi
import yaml

from components.targets.base import exec_kubeconfig

# Built-in role: Network Contributor (the cluster identity manages LBs in our subnet).
NETWORK_CONTRIBUTOR = "4d97b98b-1d4f-4787-a291-c67834d212e7"
# Built-in role: Azure Kubernetes Service RBAC Cluster Admin (the Kubernetes API, all of it).
AKS_RBAC_CLUSTER_ADMIN = "b1ff04bb-8a4e-4dc4-8eb5-8693973ce19b"
# Built-in role: Key Vault Crypto User (wrap and unwrap with the KMS key).
KEY_VAULT_CRYPTO_USER = "12338af0-0e69-4776-bea7-57ae8d297424"
# A data action only cluster admins hold: the deployer's Kubernetes access is effective.
CLUSTER_ADMIN_DATA_ACTION = (
    "Microsoft.ContainerService/managedClusters/apiextensions.k8s.io/"
    "customresourcedefinitions/write"
)
# The Entra application every AKS cluster's API server accepts tokens for.
AKS_AAD_SERVER_ID = "6dae42f8-4368-4678-94ff-3960e28e3630"
AZURE_READ_HINT = (
    "give the preview Azure credentials (az login, or the ARM_* / OIDC variables on CI) with "
    "Microsoft.ContainerService/managedClusters/agentPools/read"
)
RBAC_HINT = (
    "Azure RBAC usually takes effect within minutes; check the assignment in the portal "
    "(Access control) and run `pulumi up` again"
)


def builtin_role(subscription_id: pulumi.Output[str], role: str) -> pulumi.Output[str]:
    """The ID of an Azure built-in role definition (`role`: its GUID) in the subscription."""
    return subscription_id.apply(
        lambda sub: f"/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{role}"
    )


def aks_kubeconfig(name: str, server: str, ca_data: str, tenant_id: str) -> str:
    """A kubeconfig that gets Entra ID tokens from kubelogin through the Azure CLI's login:
    `az login` on a laptop, `azure/login` with OIDC (workload identity federation) on CI."""
    return exec_kubeconfig(
        name,
        server,
        ca_data,
        {
            "command": "kubelogin",
            "args": [
                "get-token",
                "--login",
                "azurecli",
                "--server-id",
                AKS_AAD_SERVER_ID,
                "--tenant-id",
                tenant_id,
            ],
            "installHint": "Install kubelogin: az aks install-cli "
            "(or https://azure.github.io/kubelogin/install.html)",
        },
    )


def _cluster_of(kubeconfig_text: str) -> tuple[str, str]:
    """Server and CA of the (only) cluster in a kubeconfig AKS returned."""
    doc = yaml.safe_load(kubeconfig_text)
    cluster = doc["clusters"][0]["cluster"]
    return cluster["server"], cluster.get("certificate-authority-data", "")
