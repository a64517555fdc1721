"""Day 2 on AKS under mocks: a two-step version bump, node changes without a name collision,
pools over zones sized from the live pools, Entra ID access with a kubelogin kubeconfig and a
bounded wait for Azure RBAC, Cilium NetworkPolicy, KMS, control-plane logs, add-ons,
maintenance windows and admins."""

from __future__ import annotations

import asyncio
import copy
import itertools
import json

import pytest

from components.targets.aks.rbac import RbacNotEffective, allows_data_action, wait_until
from components.targets.base import short_hash
from tests.unit.harness import by_type, one, run_program, stack_config
from tests.unit.plan import (
    changes,
    cloud_run,
    depends_on,
    ok,
    plan,
    property_source,
    provider_answer,
    refusal,
    sent_inputs,
)

CLUSTER = ("azure-native:containerservice:ManagedCluster", "cluster")
POOL = ("azure-native:containerservice:AgentPool", "user-pool")
ROLE = "azure-native:authorization:RoleAssignment"
RBAC_CLUSTER_ADMIN = "b1ff04bb-8a4e-4dc4-8eb5-8693973ce19b"
AGENT_POOL_TOKEN = "azure-native:containerservice:getAgentPool"
CLUSTER_ID = "cluster-id"


def aks(version: str | None = "1.34", stack: str = "prod", invokes=None, **fields) -> dict:
    """A run of `stack` on azure (see plan.cloud_run)."""
    return cloud_run("azure", version, stack, invokes or {}, **fields)


def outputs(result: dict) -> dict:
    return {k: v["value"] for k, v in result["outputs"].items()}


def live_pools(user: str, user_count: int, system_count: int = 2) -> dict:
    """AKS's answer for the recorded pools: their live node counts."""
    return {
        "__by__": "agentPoolName",
        "system": {"name": "system", "count": system_count, "minCount": 2, "maxCount": 3},
        user: {"name": user, "count": user_count, "minCount": 3, "maxCount": 9},
    }


def day2(base: dict, user_count: int, system_count: int = 2, **fields) -> dict:
    """The next `up` of a deployed prod stack whose pools run these counts now."""
    config = stack_config("prod", "azure")
    for path, value in fields.items():
        head, sub = path.split("__")
        config[f"pganalytics:{head}"] = {**config.get(f"pganalytics:{head}", {}), sub: value}
    user = one(base, *POOL)["inputs"]["agentPoolName"]
    invokes = {AGENT_POOL_TOKEN: live_pools(user, user_count, system_count)}
    return ok(run_program("prod", config, previous_outputs=outputs(base), invokes=invokes))


@pytest.fixture(scope="module")
def base():
    return ok(aks())


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
    assert pool["upgradeSettings"] == system["upgradeSettings"]
    assert pool["upgradeSettings"] == {"maxSurge": "1", "maxUnavailable": "0"}


def test_a_patch_version_is_refused_before_aks_refuses_it(base):
    """Item 2. The cluster is on the `patch` auto-upgrade channel, which picks the patch; AKS
    refuses a kubernetesVersion with one. The settings say so first, as they do for EKS."""
    result = aks("1.34.2")
    assert result["error_type"] == "ConfigError" and result["resources"] == []
    assert "pganalytics:kubernetesVersion takes only major.minor on AKS" in result["error"]
    assert "pulumi config set pganalytics:kubernetesVersion 1.34" in result["error"]
    # What 3d03071 would have sent, and what AKS answers to it.
    sent = {**one(base, *CLUSTER)["inputs"], "kubernetesVersion": "1.34.2"}
    assert refusal(CLUSTER[0], sent, {"kubernetesVersion"}) == (
        "a patch version (1.34.2) is not allowed with the patch upgrade channel"
    )
    assert refusal(CLUSTER[0], one(base, *CLUSTER)["inputs"], set()) is None


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("nodePool__machineType", "Standard_D8s_v5"),
        ("nodePool__diskSizeGb", 256),
        ("nodePool__spot", True),
        ("network__zoneCount", 2),
    ],
)
def test_node_change_creates_a_new_pool_before_deleting_the_old(base, field, value):
    """Item 8: the name hashes every field AKS cannot change on a pool (zones included)."""
    after = ok(aks(**{field: value}))
    steps = changes(plan(base, after))
    step = steps[POOL]
    assert step.op == "replace" and "agentPoolName" in step.changed
    # A new name, derived from what changed: create first, delete (drain) the old, no clash.
    assert step.create_before_delete and not step.collides
    old_name = one(base, *POOL)["inputs"]["agentPoolName"]
    new_name = one(after, *POOL)["inputs"]["agentPoolName"]
    assert old_name != new_name
    for name in (old_name, new_name):
        assert len(name) <= 12 and name.isalnum() and name[0].isalpha() and name.islower()
    # Nothing else is replaced (a Spot pool also opens the system pool to apps: an update).
    assert {k for k, s in steps.items() if s.op == "replace"} == {POOL}


def test_pools_spread_over_zones_and_a_changed_zone_list_never_collides(base):
    """Item 8. Without availabilityZones a pool's VMs may share one fault domain. The zones
    are fixed when AKS creates a pool, so they are part of its name; if the name did not
    change with them, the replacement would collide (plan.FORCE_NEW lists the fields AKS
    refuses to change on a pool)."""
    assert one(base, *POOL)["inputs"]["availabilityZones"] == ["1", "2", "3"]
    system = one(base, *CLUSTER)
    assert system["inputs"]["agentPoolProfiles"][0]["availabilityZones"] == ["1", "2", "3"]
    # An existing cluster's system pool keeps the zones it was created with.
    assert "agentPoolProfiles[0].availabilityZones" in system["ignoreChanges"]
    # The name without zones would collide with the pool it replaces.
    fewer = ok(aks(network__zoneCount=2))
    same_name = copy.deepcopy(fewer)
    for r in same_name["resources"]:
        if (r["type"], r["name"]) == POOL:
            r["inputs"]["agentPoolName"] = one(base, *POOL)["inputs"]["agentPoolName"]
    step = plan(base, same_name)[POOL]
    assert step.op == "replace" and step.changed == {"availabilityZones.2"} and step.collides


def test_raising_min_size_grows_the_live_pool_and_aks_accepts_it(base):
    """Item 1. azure-native PUTs the whole pool; with `count` left at the last `up`'s value
    (ignoreChanges), raising minSize above it is refused by AKS. The program sends the live
    count moved inside the new bounds instead."""
    before = day2(base, user_count=4)
    assert one(before, *POOL)["inputs"]["count"] == 4  # an unrelated `up` keeps it
    after = day2(base, user_count=4, nodePool__minSize=6, nodePool__desiredSize=6)
    assert one(after, *POOL)["inputs"]["count"] == 6
    assert provider_answer(before, after, POOL) is None
    # What the program did before: count ignored, the first `up`'s count sent -> refused.
    stale_after = copy.deepcopy(after)
    for r in stale_after["resources"]:
        if (r["type"], r["name"]) == POOL:
            r["ignoreChanges"] = ["count"]
    stale_before = copy.deepcopy(before)
    for r in stale_before["resources"]:
        if (r["type"], r["name"]) == POOL:
            r["inputs"]["count"] = 3
    sent = sent_inputs(stale_before, stale_after, POOL)
    assert refusal(POOL[0], sent, {"minCount"}) == (
        "InvalidParameter: count 3 must be within minCount 6 and maxCount 9"
    )


def test_a_bounds_change_keeps_the_live_counts(base):
    """Item 1: a maxSize change, or any other update of the pool, must not send a stale count
    (a shrink of what the autoscaler grew), on the user pool and the system pool."""
    before = day2(base, user_count=7, system_count=3)
    after = day2(base, user_count=7, system_count=3, nodePool__maxSize=12)
    assert one(after, *POOL)["inputs"]["count"] == 7
    assert one(after, *CLUSTER)["inputs"]["agentPoolProfiles"][0]["count"] == 3
    assert plan(before, after)[POOL].changed == {"maxCount"}
    assert provider_answer(before, after, POOL) is None
    assert "agentPoolProfiles[0].count" not in one(after, *CLUSTER)["ignoreChanges"]


def test_first_up_of_this_version_moves_the_user_pool_once_keeping_its_size():
    """Item 8 migration: the last update predates the record; its user pool has the name
    without zones. Its live count carries over to the zonal pool created next to it."""
    config = stack_config("prod", "azure")
    legacy = "u" + short_hash("Standard_D4s_v5", "100", "")  # 3d03071's name of the pool
    result = ok(
        run_program(
            "prod",
            config,
            previous_outputs={"target": "azure", "clusterName": "pganalytics-prod"},
            invokes={AGENT_POOL_TOKEN: live_pools(legacy, 5)},
        )
    )
    assert one(result, *POOL)["inputs"]["count"] == 5
    assert one(result, *POOL)["inputs"]["agentPoolName"] != legacy


def test_preview_polls_nothing_and_up_waits_for_azure_rbac_to_take_effect():
    """Item 3. `depends_on` only orders creation: the first `up` must wait until the cluster
    identity's roles are listed and the deployer's Kubernetes rights are effective. Modelled:
    the deployer's permissions appear on the second poll (Azure RBAC propagation)."""
    preview = ok(aks())
    assert preview["http"] == []
    no_rights = {"value": [{"actions": ["*"], "notActions": [], "dataActions": []}]}
    admin = {
        "value": [{"actions": [], "dataActions": ["Microsoft.ContainerService/managedClusters/*"]}]
    }
    listed = {
        "value": [
            {
                "properties": {
                    "roleDefinitionId": "/providers/Microsoft.Authorization/roleDefinitions/" + role
                }
            }
            for role in (
                "4d97b98b-1d4f-4787-a291-c67834d212e7",
                "12338af0-0e69-4776-bea7-57ae8d297424",
            )
        ]
    }
    http = {
        "/providers/Microsoft.Authorization/permissions": [no_rights, admin],
        "/providers/Microsoft.Authorization/roleAssignments": [listed],
    }
    config = stack_config("prod", "azure")
    up = ok(run_program("prod", config, preview=False, http=http))
    permissions = [c for c in up["http"] if "/permissions?" in c["url"]]
    assert len(permissions) == 2  # refused once, then effective
    assert permissions[0]["url"] == (
        f"https://management.azure.com{CLUSTER_ID}/providers/Microsoft.Authorization/"
        "permissions?api-version=2022-04-01"
    )
    assert all(c["authorized"] for c in up["http"])
    listings = [c for c in up["http"] if "/roleAssignments?" in c["url"]]
    assert len(listings) == 2  # the subnet's and the key vault's
    assert all("principalId%20eq%20" in c["url"] for c in listings)


def test_the_wait_for_azure_rbac_is_bounded_and_says_what_to_check():
    """Item 3: the bound. A permission that never appears ends the run after the timeout
    with a message naming it (no fixed sleep: a fake clock advances with each wait)."""
    now = [0.0]

    async def sleep(seconds):
        now[0] += seconds

    polls = []

    def never():
        polls.append(now[0])
        return False

    with pytest.raises(RbacNotEffective) as failed:
        asyncio.run(
            wait_until(
                never, "the thing", "check it", timeout=900, sleep=sleep, clock=lambda: now[0]
            )
        )
    assert "the thing did not take effect within 15 minutes; check it" in str(failed.value)
    assert polls[:5] == [0, 5, 15, 35, 65] and polls[-1] == 900
    appears = iter([False, False, True])
    assert (
        asyncio.run(wait_until(lambda: next(appears), "x", "y", sleep=sleep, clock=lambda: now[0]))
        == 3
    )


def test_effective_permissions_follow_azure_rbac_wildcards():
    action = (
        "Microsoft.ContainerService/managedClusters/apiextensions.k8s.io/"
        "customresourcedefinitions/write"
    )
    writer = [{"dataActions": ["Microsoft.ContainerService/managedClusters/*"]}]
    assert allows_data_action(writer, action)
    assert not allows_data_action([{"actions": ["*"], "dataActions": []}], action)
    denied = [{**writer[0], "notDataActions": ["Microsoft.ContainerService/*/write"]}]
    assert not allows_data_action(denied, action)
    # AKS RBAC Reader: reads only.
    reader = [{"dataActions": ["Microsoft.ContainerService/managedClusters/*/read"]}]
    assert not allows_data_action(reader, action)


def test_secrets_encryption_logs_add_ons_and_maintenance(base):
    """Items 10, 12 and 15: KMS with a Key Vault key (AKS docs, "Key Management Service
    etcd encryption"), control-plane logs (kube-audit-admin, kube-apiserver, ...) in a Log
    Analytics workspace with retention, the AVM's default add-ons, and maintenance
    configurations for the patch and NodeImage channels."""
    cluster = one(base, *CLUSTER)
    kms = cluster["inputs"]["securityProfile"]["azureKeyVaultKms"]
    assert kms["enabled"] is True and kms["keyId"].endswith("/keys/kubernetes-secrets/0a1b2c")
    assert "azure-native:authorization:RoleAssignment::cluster-key-user" in cluster["dependencies"]
    key_user = one(base, ROLE, "cluster-key-user")["inputs"]
    assert key_user["roleDefinitionId"].endswith("/12338af0-0e69-4776-bea7-57ae8d297424")
    vault = one(base, "azure-native:keyvault:Vault", "secrets-vault")
    assert vault["protect"] and vault["inputs"]["properties"]["enablePurgeProtection"] is True
    assert vault["inputs"]["properties"]["enableRbacAuthorization"] is True
    assert "defender" not in cluster["inputs"]["securityProfile"]

    workspace = one(base, "azure-native:operationalinsights:Workspace", "logs")["inputs"]
    assert workspace["retentionInDays"] == 90
    diag = one(base, "azure-native:monitor:DiagnosticSetting", "control-plane-logs")["inputs"]
    assert diag["resourceUri"] == CLUSTER_ID
    assert {entry["category"] for entry in diag["logs"]} >= {"kube-audit-admin", "kube-apiserver"}
    assert all(entry["enabled"] for entry in diag["logs"])

    addons = cluster["inputs"]["addonProfiles"]
    assert addons["azurepolicy"] == {"enabled": True}
    assert addons["azureKeyvaultSecretsProvider"]["enabled"] is True

    windows = {
        m["inputs"]["configName"]: m["inputs"]["maintenanceWindow"]
        for m in by_type(base, "azure-native:containerservice:MaintenanceConfiguration")
    }
    assert set(windows) == {"aksManagedAutoUpgradeSchedule", "aksManagedNodeOSUpgradeSchedule"}
    assert windows["aksManagedAutoUpgradeSchedule"]["schedule"] == {
        "weekly": {"dayOfWeek": "Saturday", "intervalWeeks": 1}
    }
    assert windows["aksManagedNodeOSUpgradeSchedule"]["schedule"]["weekly"]["dayOfWeek"] == (
        "Sunday"
    )
    assert windows["aksManagedAutoUpgradeSchedule"]["durationHours"] == 6

    frozen = ok(
        aks(
            cluster__defender=True,
            cluster__logRetentionDays=365,
            maintenance__exclusions=[
                {"name": "year-end", "start": "2026-12-20T00:00:00Z", "end": "2027-01-05T00:00:00Z"}
            ],
        )
    )
    defender = one(frozen, *CLUSTER)["inputs"]["securityProfile"]["defender"]
    assert defender["securityMonitoring"] == {"enabled": True}
    for m in by_type(frozen, "azure-native:containerservice:MaintenanceConfiguration"):
        assert m["inputs"]["maintenanceWindow"]["notAllowedDates"] == [
            {"start": "2026-12-20", "end": "2027-01-05"}
        ]
    workspace = one(frozen, "azure-native:operationalinsights:Workspace", "logs")["inputs"]
    assert workspace["retentionInDays"] == 365


def test_api_server_access_public_with_authorized_ranges_or_private(base):
    """AKS's apiServerAccessProfile: authorizedIPRanges filters the public endpoint only;
    "You can't use this feature with private clusters" (learn.microsoft.com/azure/aks/
    api-server-authorized-ip-ranges, Limitations), so a private cluster sends none and
    privateCidrs, which would filter nothing, is refused on azure (test_bad_config)."""
    public = one(base, *CLUSTER)["inputs"]["apiServerAccessProfile"]
    assert public["enablePrivateCluster"] is False
    assert (
        public["authorizedIPRanges"]
        == stack_config("prod", "azure")["pganalytics:endpoint"]["publicCidrs"]
    )
    private = ok(aks(endpoint__publicAccess=False))  # no privateCidrs needed on azure
    profile = one(private, *CLUSTER)["inputs"]["apiServerAccessProfile"]
    assert profile["enablePrivateCluster"] is True and "authorizedIPRanges" not in profile


def test_cilium_enforces_network_policy(base):
    net = one(base, *CLUSTER)["inputs"]["networkProfile"]
    assert (net["networkDataplane"], net["networkPolicy"]) == ("cilium", "cilium")


def test_entra_id_rbac_without_local_accounts_and_a_kubelogin_kubeconfig(base):
    cluster = one(base, *CLUSTER)["inputs"]
    assert cluster["disableLocalAccounts"] is True
    assert cluster["aadProfile"] == {
        "managed": True,
        "enableAzureRBAC": True,
        "tenantID": "11111111-1111-1111-1111-111111111111",
    }
    kubeconfig = json.loads(base["outputs"]["kubeconfig"]["value"])
    user = kubeconfig["users"][0]["user"]
    assert "token" not in user and "client-certificate-data" not in user
    exec_ = user["exec"]
    assert exec_["command"] == "kubelogin"
    assert exec_["args"][:3] == ["get-token", "--login", "azurecli"]
    assert "6dae42f8-4368-4678-94ff-3960e28e3630" in exec_["args"]
    assert exec_["interactiveMode"] == "Never"
    assert kubeconfig["clusters"][0]["cluster"]["server"] == "https://aks.example.com:443"
    assert base["outputs"]["kubeconfig"]["secret"]
    creds = [
        c
        for c in base["invokes"]
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
        assert r["inputs"]["scope"] == CLUSTER_ID
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


def test_without_admins_the_first_deployer_keeps_access(base):
    role = one(base, ROLE, "deployer-admin")
    assert role["inputs"]["principalId"] == "mock"
    assert "principalId" in role["ignoreChanges"]


def test_no_health_probe_annotations_under_local_traffic_policy(base):
    values = one(base, "kubernetes:helm.sh/v3:Release", "traefik")["inputs"]["values"]
    assert values["service"]["spec"]["externalTrafficPolicy"] == "Local"
    assert not [a for a in values["service"]["annotations"] if "health-probe" in a]


def test_make_default_demotes_the_aks_default_class():
    result = ok(aks(storage__makeDefault=True))
    patch = one(result, "kubernetes:storage.k8s.io/v1:StorageClassPatch")["inputs"]["metadata"]
    assert patch["name"] == "default"
    assert patch["annotations"]["storageclass.kubernetes.io/is-default-class"] == "false"
