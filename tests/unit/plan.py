"""What `pulumi preview` would plan between two runs of the program under mocks.

Mocks show what the program registers, not what the providers' Diff says. So a step is
derived the way the engine derives it from the same facts:

- inputs compared path by path, minus the paths a resource lists in ignoreChanges;
- a changed path the provider cannot update in place (FORCE_NEW below, taken from the pinned
  providers' documentation: "forces a new resource" / "Changing this forces ...", and the
  Kubernetes provider's `clusterIdentifier` rule), or one listed in replaceOnChanges, makes a
  replacement; otherwise an update;
- a resource on a replaced provider is replaced too;
- a replacement is create-before-delete unless deleteBeforeReplace is set. Whether the
  create can succeed next to the old resource depends on its name: a name the program sets
  and that does not change collides; a provider-generated name, or one that changes with the
  replacing input, does not (`collides` says which).

What only a real cloud shows (drain behaviour, API-side validation) is out of reach here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Inputs each provider cannot change in place (dotted paths into the inputs).
FORCE_NEW: dict[str, set[str]] = {
    # pulumi-aws 7.51.1 (terraform-provider-aws): eks_cluster, eks_node_group, eks_addon ...
    "aws:eks/cluster:Cluster": {"name", "roleArn", "bootstrapSelfManagedAddons"},
    "aws:eks/nodeGroup:NodeGroup": {
        "amiType",
        "capacityType",
        "clusterName",
        "diskSize",
        "instanceTypes",
        "launchTemplate.id",
        "launchTemplate.name",
        "nodeGroupName",
        "nodeGroupNamePrefix",
        "nodeRoleArn",
        "remoteAccess",
        "subnetIds",
    },
    "aws:eks/addon:Addon": {"addonName", "clusterName"},
    "aws:eks/accessEntry:AccessEntry": {"clusterName", "principalArn", "type"},
    "aws:eks/accessPolicyAssociation:AccessPolicyAssociation": {
        "clusterName",
        "principalArn",
        "policyArn",
    },
    "aws:eks/podIdentityAssociation:PodIdentityAssociation": {
        "clusterName",
        "namespace",
        "serviceAccount",
    },
    # pulumi-gcp 10.2.0: machineType, diskType and diskSizeGb of a node pool update in place
    # (ForceNew false since terraform-provider-google 5.10); spot does not.
    "gcp:container/cluster:Cluster": {
        "name",
        "location",
        "network",
        "subnetwork",
        "datapathProvider",
        "privateClusterConfig.masterIpv4CidrBlock",
        "ipAllocationPolicy",
        # The default pool's node config (google_container_cluster: node_config forces a new
        # cluster); the program sets it for the short-lived default pool only.
        "nodeConfig",
    },
    "gcp:container/nodePool:NodePool": {
        "name",
        "namePrefix",
        "cluster",
        "location",
        "nodeConfig.spot",
        "nodeConfig.serviceAccount",
        "nodeConfig.oauthScopes",
    },
    "gcp:projects/iAMMember:IAMMember": {"member", "role", "project"},
    # pulumi-azure-native 3.29.0: the names in a resource's ARM id are part of its identity.
    "azure-native:containerservice:ManagedCluster": {
        "resourceName",
        "resourceGroupName",
        "location",
        "dnsPrefix",
    },
    # AKS refuses these on an existing pool ("Changing property '...' is not allowed"): a
    # change needs a new pool (Azure docs, "Resize node pools": create, cordon, drain, delete).
    "azure-native:containerservice:AgentPool": {
        "agentPoolName",
        "resourceName",
        "resourceGroupName",
        "availabilityZones",
        "vmSize",
        "osDiskSizeGB",
        "osDiskType",
        "vnetSubnetID",
        "scaleSetPriority",
    },
    "azure-native:authorization:RoleAssignment": {"principalId", "roleDefinitionId", "scope"},
    # pulumi-kubernetes: "the provider will only be replaced when clusterIdentifier changes".
    "pulumi:providers:kubernetes": {"clusterIdentifier"},
}

# Optional inputs the provider computes when absent (schema: Optional + Computed): dropping
# one keeps the value in state, so it is no change. terraform-provider-google
# container_node_pool `version`: "Optional: true, Computed: true".
COMPUTED: dict[str, set[str]] = {
    "gcp:container/nodePool:NodePool": {"version"},
}

# The input that carries a resource's own name, where the program may set one.
NAME_INPUT = {
    "aws:eks/nodeGroup:NodeGroup": "nodeGroupName",
    "gcp:container/nodePool:NodePool": "name",
    "azure-native:containerservice:AgentPool": "agentPoolName",
    "kubernetes:storage.k8s.io/v1:StorageClass": "metadata.name",
}


@dataclass
class Step:
    op: str  # same | update | replace | create | delete
    changed: set[str] = field(default_factory=set)
    create_before_delete: bool = True
    collides: bool = False


def _flatten(value, prefix: str = "") -> dict[str, object]:
    if isinstance(value, dict):
        if set(value) == {"__secret__"}:
            return _flatten(value["__secret__"], prefix)
        out: dict[str, object] = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else k))
        return out or {prefix: {}}
    if isinstance(value, list):
        out = {}
        for i, v in enumerate(value):
            out.update(_flatten(v, f"{prefix}.{i}"))
        return out or {prefix: []}
    return {prefix: value}


def _under(path: str, roots) -> bool:
    return any(path == r or path.startswith(r + ".") for r in roots)


# How tests/unit/runner.py records an input not known at preview.
UNKNOWN = "<unknown>"


def changed_paths(before: dict, after: dict, ignore: list[str]) -> set[str]:
    """Paths whose value differs. An input unknown at preview counts as changed, as the engine
    diffs it against the known value in state: two unknowns are not "the same" (a mock that
    lacks an output the provider computes shows up as a change, not as nothing)."""
    a, b = _flatten(before["inputs"]), _flatten(after["inputs"])
    ignored = [i.replace("[", ".").replace("]", "") for i in ignore]
    computed = COMPUTED.get(after.get("type", ""), set())
    return {
        p
        for p in set(a) | set(b)
        if (a.get(p, "<absent>") != b.get(p, "<absent>") or b.get(p) == UNKNOWN)
        and not _under(p, ignored)
        and not (p not in b and _under(p, computed))
    }


def key(r: dict) -> tuple[str, str]:
    return (r["type"], r["name"])


def plan(before: dict, after: dict) -> dict[tuple[str, str], Step]:
    """Steps from run `before` to run `after` (runner results), by (type, name)."""
    old = {key(r): r for r in before["resources"] if not r["read"]}
    new = {key(r): r for r in after["resources"] if not r["read"]}
    steps: dict[tuple[str, str], Step] = {}
    for k in old.keys() - new.keys():
        steps[k] = Step("delete")
    for k in new.keys() - old.keys():
        steps[k] = Step("create")
    replaced_providers: set[str] = set()
    for k in old.keys() & new.keys():
        r = new[k]
        changed = changed_paths(old[k], r, r.get("ignoreChanges", []))
        force = FORCE_NEW.get(r["type"], set()) | set(r.get("replaceOnChanges", []))
        if changed and _any_under(changed, force):
            steps[k] = Step(
                "replace", changed, create_before_delete=not r.get("deleteBeforeReplace")
            )
            if r["type"].startswith("pulumi:providers:"):
                replaced_providers.add(r["name"])
        else:
            steps[k] = Step("update" if changed else "same", changed)
    for k in old.keys() & new.keys():
        r = new[k]
        if r.get("provider") in replaced_providers and steps[k].op != "replace":
            steps[k] = Step("replace", steps[k].changed | {"<provider>"}, True)
    for k, step in steps.items():
        if step.op == "replace" and step.create_before_delete and k[0] in NAME_INPUT:
            field_ = NAME_INPUT[k[0]]
            name_before = _flatten(old[k]["inputs"]).get(field_)
            name_after = _flatten(new[k]["inputs"]).get(field_)
            # A fixed name that stays the same cannot exist twice.
            step.collides = name_after is not None and name_after == name_before
    return steps


def _any_under(paths: set[str], roots: set[str]) -> bool:
    return any(_under(p, roots) for p in paths)


def _get(node, path: str, default=None):
    for part in path.split("."):
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return default
    return node


def _put(node, path: str, value) -> None:
    *parents, last = path.split(".")
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value


def sent_inputs(before: dict, after: dict, resource: tuple[str, str]) -> dict:
    """The inputs the engine hands the provider for an update of `resource`: the new ones,
    except that a path in ignoreChanges keeps its value from the old state (Pulumi docs,
    "ignoreChanges": the old value is used in place of the new one)."""
    import copy

    new = next(r for r in after["resources"] if key(r) == resource and not r["read"])
    old = next(r for r in before["resources"] if key(r) == resource and not r["read"])
    sent = copy.deepcopy(new["inputs"])
    for ignored in new.get("ignoreChanges", []):
        path = ignored.replace("[", ".").replace("]", "")
        kept = _get(old["inputs"], path)
        if kept is not None:
            _put(sent, path, kept)
    return sent


def _int(value):
    """Numbers arrive as floats from the wire (protobuf): 3.0 -> 3."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def refusal(type_: str, sent: dict, changed: set[str]) -> str | None:
    """What the cloud answers to an update request, where its API refuses one; None when it
    accepts. Each rule restates the provider's or the cloud's documented behaviour:

    - EKS UpdateNodegroupConfig: terraform-provider-aws sends the whole scaling_config block
      when any of it changed, and EKS refuses a desired size outside [min, max] ("Minimum
      capacity N can't be greater than desired size"; terraform-aws-eks issues #748, #2508,
      #3306; the provider's own docs suggest ignoreChanges on desiredSize, which is what sends
      the stale size).
    - AKS agent pools: azure-native PUTs the whole pool on any update, and AKS refuses a count
      outside [minCount, maxCount] while the autoscaler is on (agent pool API: "count must be
      within minCount and maxCount").
    - AKS clusters on the `patch` auto-upgrade channel: the channel picks the patch, and AKS
      refuses a kubernetesVersion with one (AKS docs, "Automatically upgrade an AKS cluster":
      with the patch channel, specify the version as major.minor).
    - GKE node pools: `version` together with management.autoUpgrade "will fight each other
      for what the node version should be" (pulumi-gcp NodePool docs): refused here as a
      plan that never settles.
    """
    if type_ == "aws:eks/nodeGroup:NodeGroup" and _any_under(changed, {"scalingConfig"}):
        scaling = sent.get("scalingConfig") or {}
        low, high, want = (_int(scaling.get(k)) for k in ("minSize", "maxSize", "desiredSize"))
        if want is None or low > want:
            return f"Minimum capacity {low} can't be greater than desired size {want}"
        if want > high:
            return f"Desired capacity {want} can't be greater than max size {high}"
    if type_ == "azure-native:containerservice:AgentPool" and sent.get("enableAutoScaling"):
        low, high, count = (_int(sent.get(k)) for k in ("minCount", "maxCount", "count"))
        if count is None or not low <= count <= high:
            return (
                f"InvalidParameter: count {count} must be within minCount {low} and maxCount {high}"
            )
    channel = (sent.get("autoUpgradeProfile") or {}).get("upgradeChannel")
    version = str(sent.get("kubernetesVersion") or "")
    aks = type_ == "azure-native:containerservice:ManagedCluster"
    if aks and channel == "patch" and version.count(".") >= 2:
        return f"a patch version ({version}) is not allowed with the patch upgrade channel"
    auto_upgrade = (sent.get("management") or {}).get("autoUpgrade")
    if type_ == "gcp:container/nodePool:NodePool" and sent.get("version") and auto_upgrade:
        return "version and management.autoUpgrade both set: they fight over the node version"
    return None


def provider_answer(before: dict, after: dict, resource: tuple[str, str]) -> str | None:
    """The cloud's answer to the update `plan` derives for `resource` (None: accepted)."""
    step = plan(before, after)[resource]
    if step.op != "update":
        return None
    return refusal(resource[0], sent_inputs(before, after, resource), step.changed)


def changes(steps: dict[tuple[str, str], Step]) -> dict[tuple[str, str], Step]:
    """Only the steps that do something."""
    return {k: s for k, s in steps.items() if s.op != "same"}


def depends_on(result: dict, resource: tuple[str, str], on: tuple[str, str]) -> bool:
    """Whether `resource` waits for `on` (a dependency the engine orders by)."""
    r = next(x for x in result["resources"] if key(x) == resource and not x["read"])
    return f"{on[0]}::{on[1]}" in r["dependencies"]


def property_source(result: dict, resource: tuple[str, str], prop: str) -> list[str]:
    """The resources an input's value comes from (Output wiring)."""
    r = next(x for x in result["resources"] if key(x) == resource and not x["read"])
    return r["propertyDependencies"].get(prop, [])


def cloud_run(cloud: str, version: str | None, stack: str, invokes: dict, **fields) -> dict:
    """A mock run of `stack` on `cloud` at `version`; fields like nodePool__spot=True set
    pganalytics:nodePool.spot (the shape of the per-cloud plan tests)."""
    from tests.unit.harness import run_program, stack_config

    config = stack_config(stack, cloud)
    if version:
        config["pganalytics:kubernetesVersion"] = version
    for path, value in fields.items():
        head, sub = path.split("__")
        config[f"pganalytics:{head}"] = {**config.get(f"pganalytics:{head}", {}), sub: value}
    return run_program(stack, config, invokes=invokes)


def ok(result: dict) -> dict:
    """The run itself, after checking that the program did not fail."""
    assert result["error"] is None, result["error"]
    return result
