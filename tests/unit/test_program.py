"""The program under Pulumi mocks, for every shipped stack (dev, prod, enterprise) on every
target (aws, gcp, azure, existing): 12 runs built from the real Pulumi.<stack>.yaml with only
`pganalytics:target` switched (plus that cloud's region / GCP project).

Asserts the resource graph: cluster resources and their key inputs per cloud, the
StorageClass, the ingress controller and cert-manager, the chart's merged values, secrets
kept secret, and the chart's dependency edges. Run: .venv/bin/pytest tests/unit -n 2
"""

from __future__ import annotations

import json

import pytest
import yaml

from tests.conftest import credential_keys
from tests.unit.harness import (
    ROOT,
    STACKS,
    TARGETS,
    by_type,
    matrix_case,
    one,
    stack_config,
    unsecret,
)

CASES = [(s, t) for s in STACKS for t in TARGETS]
CLOUD_CASES = [(s, t) for s, t in CASES if t != "existing"]
CHART = "kubernetes:helm.sh/v4:Chart"
RELEASE = "kubernetes:helm.sh/v3:Release"
STORAGE_CLASS = "kubernetes:storage.k8s.io/v1:StorageClass"
SECRET_KEYS = credential_keys()
# Node pool bounds each shipped stack asks for (Pulumi.<stack>.yaml).
BOUNDS = {"dev": (1, 2, 1), "prod": (3, 9, 3), "enterprise": (3, 12, 3)}
SCALING = ("minSize", "maxSize", "desiredSize")
PROTECTED = {"dev": False, "prod": True, "enterprise": True}
ZONES = {"dev": 2, "prod": 3, "enterprise": 3}
TLS = {"dev": False, "prod": True, "enterprise": True}


def run(stack, target):
    result = matrix_case(stack, target)
    assert result["error"] is None, result["error"]
    return result


def chart_values(result):
    return unsecret(one(result, CHART)["inputs"]["values"])


def stack_values_file(stack):
    return yaml.safe_load((ROOT / "charts" / "pganalytics" / f"values-{stack}.yaml").read_text())


# --- every run --------------------------------------------------------------------------


@pytest.mark.parametrize(("stack", "target"), CASES)
def test_program_runs_and_exports_outputs(stack, target):
    result = run(stack, target)
    outputs = result["outputs"]
    assert set(outputs) == {
        "target",
        "clusterName",
        "kubeconfig",
        "namespace",
        "apiUrl",
        "grafanaUrl",
        "appUrl",
        "ingressAddress",
        "backupBucket",
        "estimatedMonthlyCost",
        "credentialRotation",
        "volumes",
        "clusterRecord",
    }
    assert outputs["target"]["value"] == target
    cost = outputs["estimatedMonthlyCost"]["value"]
    assert cost["estimate"] is True and cost["currency"] == "USD" and "tableDate" in cost
    # A partial estimate has no total, only the sum of what is priced.
    assert cost["complete"] == (not cost["missing"]) == (cost["total"] is not None)
    assert outputs["kubeconfig"]["secret"], "kubeconfig must be a secret output"
    assert outputs["namespace"]["value"] == "pganalytics"
    scheme = "https" if TLS[stack] else "http"
    assert outputs["apiUrl"]["value"].startswith(f"{scheme}://api.")
    assert outputs["grafanaUrl"]["value"].startswith(f"{scheme}://grafana.")
    # the web UI: on in prod and enterprise (values-<stack>.yaml), optional in dev
    app = outputs["appUrl"]["value"]
    assert app.startswith(f"{scheme}://app.") if stack != "dev" else app == ""
    assert outputs["ingressAddress"]["value"] == "lb.example.com"
    if target != "existing":
        assert outputs["clusterName"]["value"] == f"pganalytics-{stack}"
        kubeconfig = outputs["kubeconfig"]["value"]
        assert kubeconfig and "clusters" in kubeconfig


@pytest.mark.parametrize(("stack", "target"), CASES)
def test_components_follow_conventions(stack, target):
    result = run(stack, target)
    components = [r for r in result["resources"] if not r["custom"]]
    for comp in components:
        if comp["type"] == CHART:
            continue
        parts = comp["type"].split(":")
        assert parts[0] == "pganalytics" and len(parts) == 3, comp["type"]
    # Every custom resource lives under one of our components (children with parent=self).
    for r in result["resources"]:
        if r["custom"] or r["type"] == CHART:
            assert not r["parent"].startswith("pulumi:pulumi:Stack"), r


@pytest.mark.parametrize(("stack", "target"), CASES)
def test_cloud_resources_use_explicit_providers(stack, target):
    result = run(stack, target)
    prefixes = {"aws": "aws:", "gcp": "gcp:", "azure": "azure-native:"}
    for r in result["resources"]:
        if r["type"].startswith("pulumi:providers:"):
            continue
        for cloud, prefix in prefixes.items():
            if r["type"].startswith(prefix):
                assert target == cloud, f"{r['type']} registered on target {target}"
                assert r["provider"] == {"azure": "azure"}.get(cloud, cloud), r
        if r["type"].startswith("kubernetes:"):
            assert r["provider"] == "k8s", f"{r['type']} {r['name']} uses the default provider"
    if target == "existing":
        assert not [
            r
            for r in result["resources"]
            if r["type"].split(":")[0] in ("aws", "gcp", "azure-native")
        ]


# --- credentials ------------------------------------------------------------------------


@pytest.mark.parametrize(("stack", "target"), CASES)
def test_credentials_are_generated_and_secret(stack, target):
    result = run(stack, target)
    passwords = by_type(result, "random:index/randomPassword:RandomPassword")
    assert {p["name"] for p in passwords} == SECRET_KEYS - {"encryption-key", "grafana-admin-user"}
    for p in passwords:
        assert p["inputs"]["special"] is False, "passwords must be alphanumeric"
        assert "result" in p["additionalSecretOutputs"]
        assert "keepers" not in p["inputs"], "keepers would rotate credentials on update"
        assert p["protect"] == PROTECTED[stack]
    key = one(result, "random:index/randomBytes:RandomBytes", "encryption-key")
    assert key["inputs"]["length"] == 32
    assert "base64" in key["additionalSecretOutputs"]

    secret = one(result, "kubernetes:core/v1:Secret", "credentials")
    assert secret["inputs"]["metadata"]["name"] == "pganalytics-credentials"
    assert secret["inputs"]["metadata"]["namespace"] == "pganalytics"
    string_data = secret["inputs"]["stringData"]
    assert set(string_data) == {"__secret__"}, "the Secret's data must be registered as secret"
    assert set(string_data["__secret__"]) == SECRET_KEYS
    assert "stringData" in secret["additionalSecretOutputs"]
    assert "data" in secret["additionalSecretOutputs"]

    # No generated value appears anywhere outside a secret marker.
    values = [v for k, v in string_data["__secret__"].items() if k != "grafana-admin-user"]
    for r in result["resources"]:
        if r is secret:
            continue
        plain = json.dumps(_strip_secrets(r["inputs"]))
        for v in values:
            assert v not in plain, f"{r['type']} {r['name']} holds a credential in plaintext"
    for name, out in result["outputs"].items():
        if not out["secret"]:
            for v in values:
                assert v not in json.dumps(out["value"]), f"output {name} leaks a credential"


def _strip_secrets(value):
    if isinstance(value, dict):
        if set(value) == {"__secret__"}:
            return "<secret>"
        return {k: _strip_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_strip_secrets(v) for v in value]
    return value


# --- platform ---------------------------------------------------------------------------


@pytest.mark.parametrize(("stack", "target"), CASES)
def test_namespace_has_pod_security_labels(stack, target):
    result = run(stack, target)
    ns = one(result, "kubernetes:core/v1:Namespace", "app-namespace")
    labels = ns["inputs"]["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert labels["pod-security.kubernetes.io/audit"] == "restricted"
    assert labels["pod-security.kubernetes.io/warn"] == "restricted"
    assert ns["protect"] == PROTECTED[stack]


@pytest.mark.parametrize(("stack", "target"), CASES)
def test_ingress_controller_is_traefik(stack, target):
    result = run(stack, target)
    traefik = one(result, RELEASE, "traefik")
    inputs = traefik["inputs"]
    assert inputs["chart"] == "traefik"
    assert inputs["repositoryOpts"]["repo"] == "https://traefik.github.io/charts"
    assert inputs["version"], "chart version must be pinned"
    values = inputs["values"]
    assert values["ingressClass"]["name"] == "traefik"
    assert values["service"]["type"] == "LoadBalancer"
    annotations = values["service"]["annotations"]
    if target == "aws":
        assert annotations["service.beta.kubernetes.io/aws-load-balancer-type"] == "nlb"
    else:
        # GCP and Azure probe the healthCheckNodePort under externalTrafficPolicy Local, so
        # probe annotations would do nothing there.
        assert annotations == {}
    if target != "existing":
        assert values["service"]["spec"]["externalTrafficPolicy"] == "Local"
    assert not [r for r in result["resources"] if "ingress-nginx" in json.dumps(r["inputs"])]


@pytest.mark.parametrize(("stack", "target"), CASES)
def test_cert_manager_only_with_tls(stack, target):
    result = run(stack, target)
    releases = {r["name"] for r in by_type(result, RELEASE)}
    issuers = by_type(result, "kubernetes:cert-manager.io/v1:ClusterIssuer")
    if TLS[stack]:
        cm = one(result, RELEASE, "cert-manager")
        assert cm["inputs"]["repositoryOpts"]["repo"] == "https://charts.jetstack.io"
        assert cm["inputs"]["values"]["crds"]["enabled"] is True
        assert len(issuers) == 1
        acme = issuers[0]["inputs"]["spec"]["acme"]
        assert acme["email"] == "ops@example.com"
        assert acme["server"] == "https://acme-v02.api.letsencrypt.org/directory"
        assert "kubernetes:helm.sh/v3:Release::cert-manager" in issuers[0]["dependencies"]
    else:
        assert "cert-manager" not in releases
        assert issuers == []


# --- storage ----------------------------------------------------------------------------

PROVISIONERS = {
    "aws": ("ebs.csi.aws.com", {"type": "gp3", "encrypted": "true", "fsType": "ext4"}),
    "gcp": ("pd.csi.storage.gke.io", {"type": "pd-balanced"}),
    "azure": (
        "disk.csi.azure.com",
        {"skuName": "Premium_LRS", "kind": "managed", "cachingMode": "ReadOnly"},
    ),
}


@pytest.mark.parametrize(("stack", "target"), CLOUD_CASES)
def test_storage_class_per_cloud(stack, target):
    result = run(stack, target)
    sc = one(result, STORAGE_CLASS)
    inputs = sc["inputs"]
    provisioner, params = PROVISIONERS[target]
    assert inputs["provisioner"] == provisioner
    assert inputs["parameters"] == params
    assert inputs["metadata"]["name"] == "pganalytics-ssd"
    # Not the cluster default (storage.makeDefault is false): the chart names the class.
    assert inputs["metadata"]["annotations"] == {}
    assert inputs["volumeBindingMode"] == "WaitForFirstConsumer"
    assert inputs["allowVolumeExpansion"] is True
    assert inputs["reclaimPolicy"] == ("Retain" if PROTECTED[stack] else "Delete")
    assert sc["protect"] == sc["retainOnDelete"] == PROTECTED[stack]
    assert sc["deleteBeforeReplace"] is True
    assert chart_values(result)["global"]["storageClass"] == "pganalytics-ssd"


@pytest.mark.parametrize("stack", STACKS)
def test_existing_cluster_uses_its_default_storage_class(stack):
    result = run(stack, "existing")
    assert by_type(result, STORAGE_CLASS) == []
    assert chart_values(result)["global"]["storageClass"] == ""


# --- clusters ---------------------------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_eks_cluster(stack):
    result = run(stack, "aws")
    cluster = one(result, "aws:eks/cluster:Cluster")
    inputs = cluster["inputs"]
    assert inputs["name"] == f"pganalytics-{stack}"
    assert inputs["encryptionConfig"]["resources"] == ["secrets"]
    assert inputs["encryptionConfig"]["provider"]["keyArn"]
    assert set(inputs["enabledClusterLogTypes"]) == {
        "api",
        "audit",
        "authenticator",
        "controllerManager",
        "scheduler",
    }
    assert inputs["accessConfig"]["authenticationMode"] == "API"
    assert inputs["vpcConfig"]["endpointPrivateAccess"] is True
    endpoint = stack_config(stack, "aws")["pganalytics:endpoint"]
    assert inputs["vpcConfig"]["publicAccessCidrs"] == endpoint["publicCidrs"]
    assert "0.0.0.0/0" not in endpoint["publicCidrs"]
    assert len(inputs["vpcConfig"]["subnetIds"]) >= 2
    assert cluster["protect"] == PROTECTED[stack]
    assert inputs.get("deletionProtection", False) == PROTECTED[stack]
    if stack != "dev":
        assert inputs["version"] == "1.34"

    assert inputs["upgradePolicy"]["supportType"] == "STANDARD"
    policies = {
        r["name"]: r["inputs"]["policyArn"]
        for r in by_type(result, "aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    }
    assert policies["cluster-policy"] == "arn:aws:iam::aws:policy/AmazonEKSClusterPolicy"
    assert policies["ebs-csi-policy"] == (
        "arn:aws:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"
    )
    assert one(result, "aws:eks/accessPolicyAssociation:AccessPolicyAssociation")["inputs"][
        "policyArn"
    ] == ("arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy")
    key = one(result, "aws:kms/key:Key")
    assert key["inputs"]["enableKeyRotation"] is True
    assert (
        one(result, "aws:eks/accessPolicyAssociation:AccessPolicyAssociation")["inputs"][
            "principalArn"
        ]
        == "arn:aws:iam::123456789012:role/Deployer"
    )

    # One node group per zone, whose bounds add up to the pool's (issue 21, item 11).
    lo, hi, desired = BOUNDS[stack]
    groups = by_type(result, "aws:eks/nodeGroup:NodeGroup")
    assert len(groups) == (2 if stack == "dev" else 3)
    totals = [sum(g["inputs"]["scalingConfig"][k] for g in groups) for k in SCALING]
    assert totals == [lo, hi, desired]
    for ng in groups:
        assert ng["inputs"]["capacityType"] == ("SPOT" if stack == "dev" else "ON_DEMAND")
        spot_siblings = ["m6a.xlarge", "m5.xlarge", "m5a.xlarge"] if stack == "dev" else []
        assert ng["inputs"]["instanceTypes"] == ["m6i.xlarge", *spot_siblings]
        assert ng["ignoreChanges"] == []  # the size sent is the live one (item 1)

    ebs = one(result, "aws:eks/addon:Addon", "ebs-csi-driver")
    assert ebs["inputs"]["addonName"] == "aws-ebs-csi-driver"
    assert ebs["inputs"]["podIdentityAssociations"][0]["serviceAccount"] == "ebs-csi-controller-sa"
    assert "aws:eks/addon:Addon::pod-identity-agent" in ebs["dependencies"]

    zones = 2 if stack == "dev" else 3
    subnets = by_type(result, "aws:ec2/subnet:Subnet")
    assert len([s for s in subnets if s["name"].startswith("private-")]) == zones
    nats = by_type(result, "aws:ec2/natGateway:NatGateway")
    assert len(nats) == (1 if stack == "dev" else zones)

    kubeconfig = json.loads(result["outputs"]["kubeconfig"]["value"])
    exec_ = kubeconfig["users"][0]["user"]["exec"]
    assert exec_["command"] == "aws" and exec_["args"][:2] == ["eks", "get-token"]


@pytest.mark.parametrize("stack", STACKS)
def test_gke_cluster(stack):
    result = run(stack, "gcp")
    cluster = one(result, "gcp:container/cluster:Cluster")
    inputs = cluster["inputs"]
    assert inputs["removeDefaultNodePool"] is True
    assert inputs["workloadIdentityConfig"]["workloadPool"] == "pganalytics-test.svc.id.goog"
    assert inputs["enableShieldedNodes"] is True
    assert inputs["releaseChannel"]["channel"] == ("REGULAR" if stack == "dev" else "STABLE")
    assert inputs["ipAllocationPolicy"]["clusterSecondaryRangeName"] == "pods"
    assert inputs["location"] == ("europe-west1-b" if stack == "dev" else "europe-west1")
    if stack == "dev":
        assert "privateClusterConfig" not in inputs
    else:
        assert inputs["privateClusterConfig"]["enablePrivateNodes"] is True
        assert one(result, "gcp:compute/routerNat:RouterNat")
    assert inputs.get("deletionProtection", False) == PROTECTED[stack]
    assert cluster["protect"] == PROTECTED[stack]

    lo, hi, _ = BOUNDS[stack]
    pool = one(result, "gcp:container/nodePool:NodePool")
    auto = pool["inputs"]["autoscaling"]
    assert (auto["totalMinNodeCount"], auto["totalMaxNodeCount"]) == (lo, hi)
    node = pool["inputs"]["nodeConfig"]
    assert node["machineType"] == "e2-standard-4"
    assert node["spot"] is (stack == "dev")
    assert node["workloadMetadataConfig"]["mode"] == "GKE_METADATA"
    assert node["shieldedInstanceConfig"]["enableSecureBoot"] is True

    subnet = one(result, "gcp:compute/subnetwork:Subnetwork")
    assert {r["rangeName"] for r in subnet["inputs"]["secondaryIpRanges"]} == {"pods", "services"}

    kubeconfig = json.loads(result["outputs"]["kubeconfig"]["value"])
    assert kubeconfig["users"][0]["user"]["exec"]["command"] == "gke-gcloud-auth-plugin"


@pytest.mark.parametrize("stack", STACKS)
def test_aks_cluster(stack):
    result = run(stack, "azure")
    cluster = one(result, "azure-native:containerservice:ManagedCluster")
    inputs = cluster["inputs"]
    net = inputs["networkProfile"]
    assert (net["networkPlugin"], net["networkPluginMode"]) == ("azure", "overlay")
    assert inputs["oidcIssuerProfile"]["enabled"] is True
    assert inputs["securityProfile"]["workloadIdentity"]["enabled"] is True
    assert inputs["identity"]["type"] == "UserAssigned"
    system = inputs["agentPoolProfiles"][0]
    assert system["mode"] == "System"
    assert cluster["protect"] == PROTECTED[stack]
    assert inputs["sku"]["tier"] == ("Free" if stack == "dev" else "Standard")

    lo, hi, desired = BOUNDS[stack]
    pool = one(result, "azure-native:containerservice:AgentPool")["inputs"]
    assert pool["mode"] == "User"
    assert pool["enableAutoScaling"] is True
    assert (pool["minCount"], pool["maxCount"], pool["count"]) == (lo, hi, desired)
    assert pool["scaleSetPriority"] == ("Spot" if stack == "dev" else "Regular")
    assert pool["vmSize"] == "Standard_D4s_v5"
    assert one(result, "azure-native:network:VirtualNetwork")
    assert one(result, "azure-native:authorization:RoleAssignment", "cluster-network-contributor")
    assert "clusters" in result["outputs"]["kubeconfig"]["value"]


# --- the release ------------------------------------------------------------------------


@pytest.mark.parametrize(("stack", "target"), CASES)
def test_chart_values_are_merged_per_stack(stack, target):
    result = run(stack, target)
    chart = one(result, CHART)
    inputs = chart["inputs"]
    assert inputs["chart"] == str(ROOT / "charts" / "pganalytics")
    assert inputs["resourcePrefix"] == "pganalytics"
    assert inputs["name"] == "pganalytics"
    assert inputs["namespace"] == "pganalytics"
    values = chart_values(result)
    expected = stack_values_file(stack)
    # values-<stack>.yaml wins over defaults...
    assert values["backend"]["replicaCount"] == expected["backend"]["replicaCount"]
    assert (
        values["timescaledb"]["persistence"]["size"]
        == expected["timescaledb"]["persistence"]["size"]
    )
    # ...and the target-derived values win over values-<stack>.yaml.
    config = stack_config(stack, target)
    domain = config["pganalytics:ingress"]["domain"]
    ingress = values["ingress"]
    assert ingress["enabled"] is True
    assert ingress["className"] == "traefik"
    assert ingress["api"]["host"] == f"api.{domain}"
    assert ingress["grafana"]["host"] == f"grafana.{domain}"
    assert ingress["tls"]["enabled"] is TLS[stack]
    assert ingress["tls"]["clusterIssuer"] == ("letsencrypt-prod" if TLS[stack] else "")
    scheme = "https" if TLS[stack] else "http"
    assert values["backend"]["config"]["apiBaseUrl"] == f"{scheme}://api.{domain}"
    # FRONTEND_URL is the UI's own host where the values file turns the frontend on (prod,
    # enterprise); without the UI the API's address stands in.
    ui_host = "app" if expected.get("frontend", {}).get("enabled") else "api"
    assert values["backend"]["config"]["frontendUrl"] == f"{scheme}://{ui_host}.{domain}"
    if ui_host == "app":
        assert ingress["frontend"]["host"] == f"app.{domain}"
    assert values["networkPolicy"]["ingressControllerNamespace"] == "traefik"
    for path in (
        ("backend", "auth"),
        ("timescaledb", "auth"),
        ("redis", "auth"),
        ("grafana", "admin"),
    ):
        assert values[path[0]][path[1]]["existingSecret"] == "pganalytics-credentials"


@pytest.mark.parametrize(("stack", "target"), CASES)
def test_chart_dependencies_are_only_the_real_ones(stack, target):
    result = run(stack, target)
    chart = one(result, CHART)
    expected = {
        "kubernetes:core/v1:Namespace::app-namespace",
        "kubernetes:core/v1:Secret::credentials",
    }
    expected |= {
        "aws": {
            *(f"aws:eks/nodeGroup:NodeGroup::node-group-{i}" for i in range(ZONES[stack])),
            "aws:eks/addon:Addon::ebs-csi-driver",
            "aws:eks/addon:Addon::vpc-cni",
        },
        "gcp": {"gcp:container/nodePool:NodePool::node-pool"},
        "azure": {"azure-native:containerservice:AgentPool::user-pool"},
        "existing": set(),
    }[target]
    if target != "existing":
        expected.add(f"{STORAGE_CLASS}::storage-class")
    if TLS[stack]:
        expected.add("kubernetes:cert-manager.io/v1:ClusterIssuer::cluster-issuer")
    if stack != "dev" and target != "existing":
        # Backups (issue 11): the bucket and identity binding exist before a backup job runs.
        kind = {"aws": "S3Backup", "gcp": "GcsBackup", "azure": "AzureBlobBackup"}[target]
        component = f"pganalytics:backup:{kind}::backup"
        expected |= {
            f"{r['type']}::{r['name']}" for r in result["resources"] if r["parent"] == component
        }
    if stack != "dev":
        # CloudNativePG (issue 22): the operator with its CRDs and the Barman Cloud plugin.
        expected |= {
            "kubernetes:helm.sh/v3:Release::cloudnative-pg",
            "kubernetes:helm.sh/v3:Release::plugin-barman-cloud",
        }
    assert set(chart["dependencies"]) == expected
    # Never the load balancer: the app deploys while the address is still pending.
    assert not any("traefik" in d for d in chart["dependencies"])
    # One transform callback per child, whatever the number of steps it runs (skip_await and
    # orphan_on_delete always, protect_state on protected stacks: tests/unit/test_protection.py).
    assert chart["transforms"] == 1


@pytest.mark.parametrize("stack", STACKS)
def test_stateful_resources_protected_per_stack(stack):
    result = run(stack, "aws")
    protected = {(r["type"], r["name"]) for r in result["resources"] if r.get("protect")}
    must = {
        ("aws:eks/cluster:Cluster", "cluster"),
        ("aws:kms/key:Key", "secrets-key"),
        ("kubernetes:core/v1:Namespace", "app-namespace"),
        ("kubernetes:core/v1:Secret", "credentials"),
        (STORAGE_CLASS, "storage-class"),
    }
    if PROTECTED[stack]:
        assert must <= protected
    else:
        assert protected == set()


def test_skip_await_marks_only_claims_ingresses_and_services():
    import pulumi

    from components.chart_transforms import SKIP_AWAIT_ANNOTATION as SKIP_AWAIT
    from components.chart_transforms import skip_await

    def args(type_, props):
        return pulumi.ResourceTransformArgs(
            custom=True, type_=type_, name="x", props=props, opts=pulumi.ResourceOptions()
        )

    ingress = {"metadata": {"name": "api", "annotations": {"a": "b"}}, "spec": {}}
    hit = skip_await(args("kubernetes:networking.k8s.io/v1:Ingress", ingress))
    assert hit is not None
    assert hit.props["metadata"]["annotations"] == {"a": "b", SKIP_AWAIT: "true"}
    assert hit.props["metadata"]["name"] == "api" and hit.props["spec"] == {}
    assert ingress["metadata"]["annotations"] == {"a": "b"}  # the input is not mutated
    for type_ in ("kubernetes:core/v1:Service", "kubernetes:core/v1:PersistentVolumeClaim"):
        bare = skip_await(args(type_, {}))
        assert bare is not None and bare.props["metadata"]["annotations"] == {SKIP_AWAIT: "true"}
    for type_ in (
        "kubernetes:apps/v1:StatefulSet",
        "kubernetes:apps/v1:Deployment",
        "kubernetes:apps/v1:DaemonSet",
        "kubernetes:batch/v1:Job",
    ):
        assert skip_await(args(type_, {"metadata": {}})) is None, type_


def test_controller_none_uses_the_clusters_own_ingress_controller():
    from tests.unit.harness import run_program

    config = stack_config("dev", "existing")
    config["pganalytics:ingress"] = {
        "controller": "none",
        "className": "nginx-internal",
        "controllerNamespace": "ingress",
        "domain": "apps.example.com",
    }
    config["pganalytics:storage"] = {"className": "local-path"}
    result = run_program("dev", config)
    assert result["error"] is None, result["error"]
    assert by_type(result, RELEASE) == []
    assert by_type(result, "kubernetes:core/v1:Service") == []
    values = chart_values(result)
    assert values["ingress"]["className"] == "nginx-internal"
    assert values["ingress"]["api"]["host"] == "api.apps.example.com"
    assert values["networkPolicy"]["ingressControllerNamespace"] == "ingress"
    assert values["global"]["storageClass"] == "local-path"
    assert result["outputs"]["ingressAddress"]["value"] == ""


def test_existing_cluster_with_a_secret_kubeconfig_and_overrides():
    from tests.unit.harness import run_program

    config = stack_config("prod", "existing")
    config["pganalytics:kubeconfig"] = (
        "apiVersion: v1\nkind: Config\ncurrent-context: team\n"
        "clusters: [{name: t, cluster: {server: 'https://k8s.team.example:6443'}}]\n"
        "contexts: [{name: team, context: {cluster: t, user: u}}]\nusers: []\n"
    )
    config["pganalytics:chart"] = {
        "values": {"backend": {"replicaCount": 4}},
        "imageRegistry": "registry.example.com/mirror",
        "imageTag": "3.3.1",
    }
    result = run_program("prod", config, secret_keys=("pganalytics:kubeconfig",))
    assert result["error"] is None, result["error"]
    provider = one(result, "pulumi:providers:kubernetes")
    assert set(provider["inputs"]["kubeconfig"]) == {"__secret__"}
    assert result["outputs"]["clusterName"]["value"] == "team"
    values = chart_values(result)
    assert values["backend"]["replicaCount"] == 4  # stack config wins over values-prod.yaml
    assert values["global"]["imageRegistry"] == "registry.example.com/mirror"
    assert values["backend"]["image"]["tag"] == values["collector"]["image"]["tag"] == "3.3.1"
