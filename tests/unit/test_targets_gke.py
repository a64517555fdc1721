"""Day 2 on GKE under mocks: a two-step version bump, node changes, the version/channel
check at preview, Dataplane V2, the control-plane range, maintenance windows, Secrets
encryption, Hyperdisk families, private endpoints and cluster-scoped admins."""

from __future__ import annotations

import copy
import itertools

import pytest

from tests.unit.harness import by_type, one
from tests.unit.plan import changes, cloud_run, depends_on, ok, plan, refusal

CLUSTER = ("gcp:container/cluster:Cluster", "cluster")
POOL = ("gcp:container/nodePool:NodePool", "node-pool")
ENGINE = "gcp:container/getEngineVersions:getEngineVersions"
BINDING = ("kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding", "cluster-admins")
IAM = "gcp:projects/iAMMember:IAMMember"
RBAC = "rbac.authorization.k8s.io"


def gke(version: str | None = "1.34", stack: str = "prod", invokes=None, **fields) -> dict:
    """A run of `stack` on gcp (see plan.cloud_run)."""
    return cloud_run("gcp", version, stack, invokes or {}, **fields)


def as_before(result: dict, resource: tuple[str, str], **inputs) -> dict:
    """`result` as an earlier program registered `resource`: these inputs differ (None:
    absent)."""
    old = copy.deepcopy(result)
    for r in old["resources"]:
        if (r["type"], r["name"]) == resource:
            for path, value in inputs.items():
                if value is None:
                    r["inputs"].pop(path, None)
                else:
                    r["inputs"][path] = value
    return old


@pytest.fixture(scope="module")
def base():
    return ok(gke())


@pytest.fixture(scope="module")
def versions():
    # RAPID offers 1.35 in the mocked location; STABLE (the prod stack's channel) does not.
    return [ok(gke(v, cluster__releaseChannel="RAPID")) for v in ("1.33", "1.34", "1.35")]


def test_two_version_bumps_move_the_master_and_the_channel_moves_the_pool(versions):
    """Item 5. The pool is channel-managed: it sets no `version`, which would fight
    auto-upgrade (pulumi-gcp NodePool docs: "they will fight each other for what the node
    version should be"). A bump moves the master; GKE upgrades the nodes to it in the next
    maintenance window."""
    for before, after in itertools.pairwise(versions):
        steps = changes(plan(before, after))
        assert {k: s.op for k, s in steps.items()} == {CLUSTER: "update"}
        assert steps[CLUSTER].changed == {"minMasterVersion"}
    pool = one(versions[-1], *POOL)["inputs"]
    assert "version" not in pool and pool["management"]["autoUpgrade"] is True
    assert refusal(POOL[0], pool, set()) is None
    # What the program did before: the master's version on an auto-upgraded pool.
    assert refusal(POOL[0], {**pool, "version": "1.35.2-gke.1000"}, set()) == (
        "version and management.autoUpgrade both set: they fight over the node version"
    )
    # Surge: one node added before one is taken away, never the whole pool at once.
    assert pool["upgradeSettings"] == {"strategy": "SURGE", "maxSurge": 1, "maxUnavailable": 0}


def test_existing_pools_and_clusters_take_the_change_without_a_replacement(base):
    """The first `up` after this change: the pool drops `version` (Optional + Computed: the
    state keeps it, no diff) and the cluster gains the default pool's node config, which
    would force a new cluster and is therefore ignored once the cluster exists."""
    before = as_before(base, POOL, version="1.34.2-gke.1000")
    before = as_before(before, CLUSTER, nodeConfig=None)
    steps = changes(plan(before, base))
    assert POOL not in steps
    assert CLUSTER not in steps
    assert "nodeConfig" in one(base, *CLUSTER)["ignoreChanges"]


def test_the_temporary_default_pool_runs_as_the_node_service_account(base):
    """Item 7: without node_config GKE starts the default pool as the Compute Engine default
    service account (Editor on the project; refused where organizations disable it)."""
    config = one(base, *CLUSTER)["inputs"]["nodeConfig"]
    pool = one(base, *POOL)["inputs"]["nodeConfig"]
    assert config["serviceAccount"] == pool["serviceAccount"]
    assert config["serviceAccount"].startswith("pganalytics-prod-nodes@")
    assert config["workloadMetadataConfig"] == {"mode": "GKE_METADATA"}
    roles = {d for d in one(base, *CLUSTER)["dependencies"] if "IAMMember::node-sa-" in d}
    assert len(roles) == 5  # the node roles exist before any node starts


@pytest.mark.parametrize(
    ("field", "value", "op", "changed"),
    [
        # In place: GKE migrates the nodes with the pool's surge settings.
        ("machineType", "e2-standard-8", "update", {"nodeConfig.machineType"}),
        ("diskSizeGb", 200, "update", {"nodeConfig.diskSizeGb"}),
        # Spot cannot change in place: a new pool first, then the old one goes.
        ("spot", True, "replace", {"nodeConfig.spot"}),
    ],
)
def test_node_change_is_a_surge_update_or_create_before_delete(base, field, value, op, changed):
    after = ok(gke(**{f"nodePool__{field}": value}))
    steps = changes(plan(base, after))
    assert set(steps) == {POOL}
    assert steps[POOL].op == op and steps[POOL].changed == changed
    if op == "replace":
        assert steps[POOL].create_before_delete and not steps[POOL].collides
    pool = one(after, *POOL)["inputs"]
    assert "name" not in pool and "namePrefix" not in pool  # the provider names the pool


def test_hyperdisk_only_families_boot_from_and_store_on_hyperdisk(base):
    """Item 6: N4, C4 and C4A machines attach Hyperdisk only (Compute Engine machine series
    docs); a pd-* boot disk or StorageClass would fail to attach."""
    assert one(base, *POOL)["inputs"]["nodeConfig"]["diskType"] == "pd-balanced"
    refused = gke(nodePool__machineType="n4-standard-8")
    assert refused["error_type"] == "ConfigError"
    assert (
        "pganalytics:storage.type is pd-balanced, which n4 machines cannot attach"
        in (refused["error"])
    )
    assert (
        "pulumi config set --path pganalytics:storage.type hyperdisk-balanced" in (refused["error"])
    )
    result = ok(gke(nodePool__machineType="c4a-standard-4", storage__type="hyperdisk-balanced"))
    assert one(result, *POOL)["inputs"]["nodeConfig"]["diskType"] == "hyperdisk-balanced"
    sc = one(result, "kubernetes:storage.k8s.io/v1:StorageClass")["inputs"]
    assert sc["parameters"] == {"type": "hyperdisk-balanced"}
    # e2 cannot attach Hyperdisk at all.
    wrong = gke(storage__type="hyperdisk-balanced")
    assert "pganalytics:storage.type is hyperdisk-balanced, which e2 machines" in wrong["error"]


def test_autoscaling_bounds_are_the_whole_pool(base):
    auto = one(base, *POOL)["inputs"]["autoscaling"]
    assert (auto["totalMinNodeCount"], auto["totalMaxNodeCount"]) == (3, 9)
    assert "initialNodeCount" in one(base, *POOL)["ignoreChanges"]


def test_maintenance_window_and_exclusions(base):
    """Item 10: without a maintenancePolicy GKE may upgrade at any hour. The default window
    (Saturday and Sunday 02:00-08:00 UTC) gives GKE the 48 hours in 32 days it requires."""
    policy = one(base, *CLUSTER)["inputs"]["maintenancePolicy"]
    assert policy["recurringWindow"] == {
        "startTime": "2025-01-04T02:00:00Z",
        "endTime": "2025-01-04T08:00:00Z",
        "recurrence": "FREQ=WEEKLY;BYDAY=SA,SU",
    }
    freeze = [
        {"name": "year-end", "start": "2026-12-20T00:00:00Z", "end": "2027-01-05T00:00:00Z"},
        {
            "name": "minor-hold",
            "start": "2026-06-01T00:00:00Z",
            "end": "2026-09-01T00:00:00Z",
            "scope": "NO_MINOR_UPGRADES",
        },
    ]
    result = ok(gke(maintenance__exclusions=freeze, maintenance__startTime="22:30"))
    policy = one(result, *CLUSTER)["inputs"]["maintenancePolicy"]
    assert policy["recurringWindow"]["endTime"] == "2025-01-05T04:30:00Z"  # past midnight
    assert policy["maintenanceExclusions"] == [
        {
            "exclusionName": "year-end",
            "startTime": "2026-12-20T00:00:00Z",
            "endTime": "2027-01-05T00:00:00Z",
        },
        {
            "exclusionName": "minor-hold",
            "startTime": "2026-06-01T00:00:00Z",
            "endTime": "2026-09-01T00:00:00Z",
            "exclusionOptions": {"scope": "NO_MINOR_UPGRADES"},
        },
    ]
    short = gke(maintenance__days=["Sunday"], maintenance__durationHours=4)
    assert "pganalytics:maintenance.durationHours gives GKE 16 hours in 32 days" in short["error"]
    assert "pulumi config set --path pganalytics:maintenance.durationHours 12" in short["error"]


def test_secrets_are_encrypted_with_a_rotating_cloud_kms_key(base):
    """Item 12: application-layer Secrets encryption needs a key in the cluster's region and
    the GKE service agent as its encrypter/decrypter (GKE docs, "Encrypt secrets at the
    application layer")."""
    cluster = one(base, *CLUSTER)
    assert cluster["inputs"]["databaseEncryption"] == {
        "state": "ENCRYPTED",
        "keyName": "secrets-key-id",
    }
    key = one(base, "gcp:kms/cryptoKey:CryptoKey", "secrets-key")
    assert key["inputs"]["rotationPeriod"] == "7776000s" and key["protect"]
    ring = one(base, "gcp:kms/keyRing:KeyRing", "secrets-keyring")
    assert ring["inputs"]["location"] == "europe-west1" and ring["protect"]
    member_type = "gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember"
    member = one(base, member_type, "secrets-key-gke")
    assert member["inputs"]["role"] == "roles/cloudkms.cryptoKeyEncrypterDecrypter"
    assert member["inputs"]["member"] == (
        "serviceAccount:service-123456789012@container-engine-robot.iam.gserviceaccount.com"
    )
    assert depends_on(base, CLUSTER, (member_type, "secrets-key-gke"))


def test_dataplane_v2_enforces_network_policy(base):
    assert one(base, *CLUSTER)["inputs"]["datapathProvider"] == "ADVANCED_DATAPATH"


def test_private_endpoint_keeps_the_deploy_networks_authorized(base):
    """Item 4: a private endpoint used to get an empty authorized-networks list, so nothing
    outside the node subnet could deploy."""
    assert one(base, *CLUSTER)["inputs"]["masterAuthorizedNetworksConfig"] == {
        "cidrBlocks": [{"cidrBlock": "203.0.113.0/24", "displayName": "allowed-0"}]
    }
    result = ok(gke(endpoint__publicAccess=False, endpoint__privateCidrs=["10.99.0.0/24"]))
    cluster = one(result, *CLUSTER)["inputs"]
    assert cluster["privateClusterConfig"]["enablePrivateEndpoint"] is True
    assert cluster["masterAuthorizedNetworksConfig"] == {
        "cidrBlocks": [{"cidrBlock": "10.99.0.0/24", "displayName": "private-0"}]
    }
    refused = gke(endpoint__publicAccess=False)
    assert (
        "pganalytics:endpoint.privateCidrs must list the networks that deploy" in (refused["error"])
    )


def test_version_not_in_the_channel_is_refused_at_preview():
    result = gke("1.35")  # prod: STABLE, whose newest is 1.34 in the mocked location
    assert result["error_type"] == "ConfigError"
    assert result["resources"] == [] or all(
        r["type"].startswith(("pulumi:providers:", "pganalytics:")) for r in result["resources"]
    )
    message = result["error"]
    assert "pganalytics:kubernetesVersion 1.35 is not in the STABLE channel yet" in message
    assert "newest there: 1.34.1-gke.1000" in message
    assert "pulumi config set pganalytics:kubernetesVersion 1.34" in message
    assert "pulumi config set --path pganalytics:cluster.releaseChannel RAPID" in message
    calls = [c for c in result["invokes"] if c["token"] == ENGINE]
    assert calls[0]["args"] == {"location": "europe-west1", "project": "pganalytics-test"}


def test_exact_version_must_be_offered():
    assert gke("1.34.1")["error"] is None  # 1.34.1-gke.1000 is offered
    result = gke("1.34.0")
    assert "1.34.0 is not a version GKE offers in europe-west1" in result["error"]


def test_version_check_without_credentials_says_what_to_do():
    result = gke(invokes={ENGINE: {"__error__": "could not find default credentials"}})
    assert result["error_type"] == "CloudCheckError"
    assert "could not read the GKE versions of europe-west1" in result["error"]
    assert "gcloud auth application-default login" in result["error"]


def test_master_cidr_is_configurable_and_checked():
    result = ok(gke(cluster__masterCidr="172.16.8.0/28"))
    private = one(result, *CLUSTER)["inputs"]["privateClusterConfig"]
    assert private["masterIpv4CidrBlock"] == "172.16.8.0/28"
    for bad, words in (
        ("172.16.8.0/24", "must be an IPv4 /28"),
        ("8.8.8.0/28", "must be a private (RFC 1918) range"),
        ("10.20.0.16/28", "overlaps network.cidr (10.20.0.16/28 and 10.20.0.0/16)"),
    ):
        failed = gke(cluster__masterCidr=bad)
        assert failed["error_type"] == "ConfigError"
        assert f"pganalytics:cluster.masterCidr {words}" in failed["error"], failed["error"]
        assert (
            "pulumi config set --path pganalytics:cluster.masterCidr 172.16.0.32/28"
            in (failed["error"])
        )


MEMBERS = [
    "group:platform-admins@example.com",
    "serviceAccount:ci@proj.iam.gserviceaccount.com",
]
GROUPS_FOR_RBAC = "gke-security-groups@example.com"


def test_admins_are_cluster_admin_on_this_cluster_only():
    """Item 13: roles/container.admin on the project reaches every cluster in it. Admins get
    cluster-admin through a ClusterRoleBinding on this cluster, plus clusterViewer (fetch the
    credentials) on the project; groups through Google Groups for RBAC."""
    result = ok(gke(clusterAdmins__gcp=MEMBERS, cluster__rbacSecurityGroup=GROUPS_FOR_RBAC))
    bindings = [b for b in by_type(result, IAM) if b["name"].startswith("admin-")]
    assert sorted(b["inputs"]["member"] for b in bindings) == sorted(MEMBERS)
    assert {b["inputs"]["role"] for b in bindings} == {"roles/container.clusterViewer"}
    crb = one(result, *BINDING)["inputs"]
    assert crb["roleRef"]["name"] == "cluster-admin"
    assert crb["subjects"] == [
        {"kind": "Group", "name": "platform-admins@example.com", "apiGroup": RBAC},
        {"kind": "User", "name": "ci@proj.iam.gserviceaccount.com", "apiGroup": RBAC},
    ]
    assert one(result, *CLUSTER)["inputs"]["authenticatorGroupsConfig"] == {
        "securityGroup": GROUPS_FOR_RBAC
    }
    # Removing one member removes only its binding and updates the subjects.
    fewer = ok(gke(clusterAdmins__gcp=MEMBERS[1:], cluster__rbacSecurityGroup=GROUPS_FOR_RBAC))
    steps = changes(plan(result, fewer))
    assert sorted(s.op for s in steps.values()) == ["delete", "update"]
    # A project-wide container.admin binding of the previous version is replaced, new first.
    name = bindings[0]["name"]
    old = as_before(result, (IAM, name), role="roles/container.admin")
    step = plan(old, result)[(IAM, name)]
    assert step.op == "replace" and step.create_before_delete


def test_group_admins_need_google_groups_for_rbac():
    result = gke(clusterAdmins__gcp=MEMBERS)
    assert result["error_type"] == "ConfigError"
    assert (
        "pganalytics:cluster.rbacSecurityGroup must name the Google Groups for RBAC group"
        in (result["error"])
    )


def test_bad_admin_principal_is_a_config_error():
    result = gke(clusterAdmins__gcp=["platform-admins@example.com"])
    assert result["error_type"] == "ConfigError"
    assert (
        "pganalytics:clusterAdmins.gcp[0] is not user:, group: or serviceAccount:<email>"
        in (result["error"])
    )


def test_make_default_demotes_the_gke_default_class(base):
    assert by_type(base, "kubernetes:storage.k8s.io/v1:StorageClassPatch") == []
    result = ok(gke(storage__makeDefault=True))
    patch = one(result, "kubernetes:storage.k8s.io/v1:StorageClassPatch")["inputs"]["metadata"]
    assert patch["name"] == "standard-rwo"
    assert patch["annotations"]["storageclass.kubernetes.io/is-default-class"] == "false"
    sc = one(result, "kubernetes:storage.k8s.io/v1:StorageClass")["inputs"]["metadata"]
    assert sc["annotations"] == {"storageclass.kubernetes.io/is-default-class": "true"}
