"""Day 2 on AKS under mocks: a two-step version bump, node changes without a name collision,
Entra ID access with a kubelogin kubeconfig, Cilium NetworkPolicy, admins."""

from __future__ import annotations

import itertools
import json

import pytest

from tests.unit.harness import by_type, one
from tests.unit.plan import changes, cloud_run, depends_on, ok, plan, property_source

CLUSTER = ("azure-native:containerservice:ManagedCluster", "cluster")
POOL = ("azure-native:containerservice:AgentPool", "user-pool")
ROLE = "azure-native:authorization:RoleAssignment"
RBAC_CLUSTER_ADMIN = "b1ff04bb-8a4e-4dc4-8eb5-8693973ce19b"


def aks(version: str | None = "1.34", stack: str = "prod", invokes=None, **fields) -> dict:
    """A run of `stack` on azure (see plan.cloud_run)."""
    return cloud_run("azure", version, stack, invokes or {}, **fields)


@pytest.fixture(scope="module")
def versions():
    return [ok(aks(v)) for v in ("1.33", "1.34", "1.35")]


def test_two_version_bumps_update_control_plane_and_system_pool_then_user_pool(versions):
    for before, after in itertools.pairwise(versions):
        steps = changes(plan(before, after))
        assert {k: s.op for k, s in steps.items()} == {CLUSTER: "update", POOL: "update"}
        # The control plane and the system pool move in one cluster update...
        assert steps[CLUSTER].changed == {
            "kubernetesVersion",
            "agentPoolProfiles.0.orchestratorVersion",
        }
        # ...then the user pool, to the version the cluster reports.
        assert steps[POOL].changed == {"orchestratorVersion"}
        cluster = one(after, *CLUSTER)["inputs"]
        assert one(after, *POOL)["inputs"]["orchestratorVersion"] == cluster["kubernetesVersion"]
        assert property_source(after, POOL, "orchestratorVersion") == [
            "azure-native:containerservice:ManagedCluster::cluster"
        ]
        assert depends_on(after, POOL, CLUSTER)
    pool = one(versions[-1], *POOL)["inputs"]
    system = one(versions[-1], *CLUSTER)["inputs"]["agentPoolProfiles"][0]
    assert (
        pool["upgradeSettings"]
        == system["upgradeSettings"]
        == {
            "maxSurge": "1",
            "maxUnavailable": "0",
        }
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [("machineType", "Standard_D8s_v5"), ("diskSizeGb", 256), ("spot", True)],
)
def test_node_change_creates_a_new_pool_before_deleting_the_old(field, value):
    before = ok(aks())
    after = ok(aks(**{f"nodePool__{field}": value}))
    steps = changes(plan(before, after))
    step = steps[POOL]
    assert step.op == "replace" and "agentPoolName" in step.changed
    # A new name, derived from what changed: create first, delete (drain) the old, no clash.
    assert step.create_before_delete and not step.collides
    old_name = one(before, *POOL)["inputs"]["agentPoolName"]
    new_name = one(after, *POOL)["inputs"]["agentPoolName"]
    assert old_name != new_name
    for name in (old_name, new_name):
        assert len(name) <= 12 and name.isalnum() and name[0].isalpha() and name.islower()
    # Nothing else is replaced (a Spot pool also opens the system pool to apps: an update).
    assert {k for k, s in steps.items() if s.op == "replace"} == {POOL}


def test_scaling_bounds_change_in_place_under_the_same_name():
    before = ok(aks())
    after = ok(aks(nodePool__maxSize=12))
    steps = changes(plan(before, after))
    assert {k: s.op for k, s in steps.items()} == {POOL: "update"}
    assert steps[POOL].changed == {"maxCount"}
    assert one(after, *POOL)["inputs"]["enableAutoScaling"] is True


def test_cilium_enforces_network_policy():
    net = one(ok(aks()), *CLUSTER)["inputs"]["networkProfile"]
    assert (net["networkDataplane"], net["networkPolicy"]) == ("cilium", "cilium")


def test_entra_id_rbac_without_local_accounts_and_a_kubelogin_kubeconfig():
    result = ok(aks())
    cluster = one(result, *CLUSTER)["inputs"]
    assert cluster["disableLocalAccounts"] is True
    assert cluster["aadProfile"] == {
        "managed": True,
        "enableAzureRBAC": True,
        "tenantID": "11111111-1111-1111-1111-111111111111",
    }
    kubeconfig = json.loads(result["outputs"]["kubeconfig"]["value"])
    user = kubeconfig["users"][0]["user"]
    assert "token" not in user and "client-certificate-data" not in user
    exec_ = user["exec"]
    assert exec_["command"] == "kubelogin"
    assert exec_["args"][:3] == ["get-token", "--login", "azurecli"]
    assert "6dae42f8-4368-4678-94ff-3960e28e3630" in exec_["args"]
    assert exec_["interactiveMode"] == "Never"
    assert kubeconfig["clusters"][0]["cluster"]["server"] == "https://aks.example.com:443"
    assert result["outputs"]["kubeconfig"]["secret"]
    creds = [
        c
        for c in result["invokes"]
        if c["token"] == "azure-native:containerservice:listManagedClusterUserCredentials"
    ]
    assert creds and creds[0]["args"]["format"] == "exec"


ADMINS = ["22222222-2222-2222-2222-222222222222", "33333333-3333-3333-3333-333333333333"]


def test_admins_get_rbac_cluster_admin_the_same_whoever_runs_up():
    result = ok(aks(clusterAdmins__azure=ADMINS))
    roles = [r for r in by_type(result, ROLE) if r["name"].startswith("admin-")]
    assert sorted(r["inputs"]["principalId"] for r in roles) == ADMINS
    for r in roles:
        assert r["inputs"]["roleDefinitionId"].endswith(f"/roleDefinitions/{RBAC_CLUSTER_ADMIN}")
        assert r["inputs"]["scope"] == "cluster-id"
    assert by_type(result, ROLE) and not [
        r for r in by_type(result, ROLE) if r["name"] == "deployer-admin"
    ]
    other = ok(
        aks(
            clusterAdmins__azure=ADMINS,
            invokes={
                "azure-native:authorization:getClientConfig": {
                    "subscriptionId": "00000000-0000-0000-0000-000000000000",
                    "tenantId": "11111111-1111-1111-1111-111111111111",
                    "clientId": "ci",
                    "objectId": "44444444-4444-4444-4444-444444444444",
                }
            },
        )
    )
    assert changes(plan(result, other)) == {}
    provider = one(result, "pulumi:providers:kubernetes")
    assert {f"{ROLE}::{r['name']}" for r in roles} <= set(provider["dependencies"])


def test_without_admins_the_first_deployer_keeps_access():
    role = one(ok(aks()), ROLE, "deployer-admin")
    assert role["inputs"]["principalId"] == "mock"
    assert "principalId" in role["ignoreChanges"]


def test_no_health_probe_annotations_under_local_traffic_policy():
    values = one(ok(aks()), "kubernetes:helm.sh/v3:Release", "traefik")["inputs"]["values"]
    assert values["service"]["spec"]["externalTrafficPolicy"] == "Local"
    assert not [a for a in values["service"]["annotations"] if "health-probe" in a]


def test_make_default_demotes_the_aks_default_class():
    result = ok(aks(storage__makeDefault=True))
    patch = one(result, "kubernetes:storage.k8s.io/v1:StorageClassPatch")["inputs"]["metadata"]
    assert patch["name"] == "default"
    assert patch["annotations"]["storageclass.kubernetes.io/is-default-class"] == "false"
