"""`Settings`: the whole `pganalytics:` stack configuration, built from one model per config
object (cluster.py, workload.py) plus the top-level keys below. Each field carries its
default and its doc (the docstring under it); each rule sits next to the fields it concerns.
Pulumi.yaml's `config:` block, the README table and docs/CONFIGURATION.md are generated from
these models (`make docs`).

Validators see the stack, target, region and secret keys through the validation context, so
a per-cloud rule sits in the model of the field it checks. Adding a key = one field with its
docstring in one model (plus a validator when its type does not say it all), then `make docs`.
"""

from __future__ import annotations

import re
from typing import Literal

import yaml
from pydantic import Field, PrivateAttr, ValidationInfo, model_validator
from pydantic import field_validator as check

from components.settings.backup import Backup
from components.settings.base import (
    CHART_DIR,
    MASTER_CIDRS,
    PROGRAM_TAGS,
    TAG_RULES,
    Flag,
    Model,
    Text,
    cloud_of,
    ctx,
)
from components.settings.checks import (
    NAMESPACE,
    Problems,
    config_key,
    fail,
    free_range,
    network,
    overlaps,
)
from components.settings.cluster import (
    GKE_HYPERDISK_ALSO,
    GKE_HYPERDISK_ONLY,
    Cluster,
    ClusterAdmins,
    Endpoint,
    Network,
    NodePool,
    gke_family,
)
from components.settings.credentials import Credentials
from components.settings.database import Database
from components.settings.maintenance import Maintenance
from components.settings.workload import Chart, Ingress, Storage


def _chart_min_minor() -> int:
    """The oldest Kubernetes minor the chart supports (Chart.yaml kubeVersion: >=1.N)."""
    chart = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text()) or {}
    found = re.match(r"\s*>=\s*1\.([0-9]+)", str(chart.get("kubeVersion", "")))
    return int(found.group(1)) if found else 0


class Settings(Model):
    """Everything the program reads from the `pganalytics:` stack configuration."""

    target: Literal["aws", "gcp", "azure", "existing"] = "existing"
    """Where the cluster comes from: aws (EKS), gcp (GKE), azure (AKS) or existing (the current
    kubeconfig context, or pganalytics:kubeconfig)."""
    region: Text = ""
    """AWS region (eu-west-1), GCP region (europe-west1) or Azure location (westeurope);
    required on the clouds, unused on existing."""
    gcp_project: Text = ""
    """GCP project id; required when the target is gcp."""
    cluster_name: Text = ""
    """Name of the cluster and prefix of its cloud resources (2-40 lowercase letters, digits,
    -); empty: pganalytics-<stack>."""
    kubernetes_version: Text = ""
    """Kubernetes minor such as 1.34: EKS and AKS version, GKE minimum master version (the
    release channel upgrades it); not older than the chart's kubeVersion; empty: the cloud's
    default."""
    protect: Flag = False
    """Protect the stateful resources (cluster, KMS key, namespace, StorageClass, credentials,
    the chart's StatefulSets and volume claims) from deletion and replacement; true on prod
    and enterprise."""
    kubeconfig: Text = Field("", repr=False)
    """Target existing: a kubeconfig document, set with --secret; empty: the ambient
    kubeconfig (KUBECONFIG or ~/.kube/config)."""
    kube_context: Text = ""
    """Target existing: the kubeconfig context to use; empty: its current context."""
    tags: dict[str, Text] = Field(default_factory=dict)
    """Extra tags (AWS tags, GCP labels, Azure tags) on every cloud resource, merged with app,
    stack, managed-by and purpose; ASCII, within the target cloud's limits with those four
    included: AWS 50 tags, keys 128 and values 256 characters (not aws:); GCP 64 labels, keys
    and values 63 lowercase letters, digits, _ or -; Azure 50 tags, names 128 and values 256
    characters, names unique ignoring case."""
    node_pool: NodePool = Field(default_factory=dict)
    network: Network = Field(default_factory=dict)
    endpoint: Endpoint = Field(default_factory=dict)
    cluster: Cluster = Field(default_factory=dict)
    cluster_admins: ClusterAdmins = Field(default_factory=dict)
    maintenance: Maintenance = Field(default_factory=dict)
    ingress: Ingress = Field(default_factory=dict)
    storage: Storage = Field(default_factory=dict)
    backup: Backup = Field(default_factory=dict)
    chart: Chart = Field(default_factory=dict)
    credentials: Credentials = Field(default_factory=dict)
    database: Database = Field(default_factory=dict)

    _stack: str = PrivateAttr("")
    # Derived by the loader (secret_leaves.py), not a config key.
    _chart_secret_paths: tuple = PrivateAttr(())

    @check("region", "gcp_project")
    def _required(cls, value: str, info: ValidationInfo) -> str:
        cloud, target = cloud_of(info), ctx(info, "target")
        if info.field_name == "region" and cloud:
            pattern, example, what = cloud.region, cloud.region_example, f"a {cloud.name} region"
        elif info.field_name == "gcp_project" and target == "gcp":
            pattern, example, what = (
                r"[a-z][a-z0-9-]{4,28}[a-z0-9]",
                "my-gcp-project",
                "a GCP project id",
            )
        else:
            return value
        if not value:
            fail(f"is required for target {target}", example)
        if not re.fullmatch(pattern, value):
            fail(f"is not {what} (got {value!r})", example)
        return value

    @check("cluster_name")
    def _cluster_name(cls, value: str, info: ValidationInfo) -> str:
        stack = re.sub(r"[^a-z0-9]+", "-", ctx(info, "stack", "dev").lower())
        fallback = f"pganalytics-{stack.strip('-')}"[:40].rstrip("-")
        if not re.fullmatch(r"[a-z][a-z0-9-]{0,38}[a-z0-9]", value or fallback):
            fail(f"must be 2-40 lowercase letters, digits or '-' (got {value!r})", fallback)
        return value or fallback

    @check("kubernetes_version")
    def _version(cls, value: str, info: ValidationInfo) -> str:
        found, minimum = re.fullmatch(r"1\.([0-9]{2})(\.[0-9]+)?", value), _chart_min_minor()
        if value and not found:
            near = re.search(r"1\.[0-9]{2}", value)
            fail(f"must look like 1.34 (got {value!r})", near.group(0) if near else "1.34")
        if found and int(found.group(1)) < minimum:
            fix = f"pulumi config rm {NAMESPACE}:kubernetesVersion (the cloud's default)"
            fail(f"is older than the chart supports (1.{minimum} or newer; got {value})", fix=fix)
        # EKS takes a minor only; AKS refuses a patch while the `patch` auto-upgrade channel
        # (which the program sets) picks the patch. GKE takes an exact version it offers.
        cloud = {"aws": "EKS", "azure": "AKS (its patch auto-upgrade channel picks the patch)"}
        if found and found.group(2) and ctx(info, "target") in cloud:
            why = f"takes only major.minor on {cloud[ctx(info, 'target')]} (got {value!r})"
            fail(why, value.rsplit(".", 1)[0])
        return value

    @check("kubeconfig")
    def _kubeconfig(cls, value: str, info: ValidationInfo) -> str:
        fix = f'pulumi config set --secret {NAMESPACE}:kubeconfig "$(cat ~/.kube/config)"'
        if value and "kubeconfig" not in ctx(info, "secret_keys", ()):
            fail("holds credentials and must be stored encrypted", fix=fix)
        try:
            parsed = yaml.safe_load(value) if value else {"clusters": []}
        except yaml.YAMLError:
            parsed = None
        if not isinstance(parsed, dict) or "clusters" not in parsed:
            fail("is not a kubeconfig document (no 'clusters')", fix=fix)
        return value

    @check("tags")
    def _tags(cls, tags: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        """The limits of the target's cloud (existing: AWS's, the same tags go nowhere)."""
        rules, found = TAG_RULES.get(ctx(info, "target"), TAG_RULES["aws"]), Problems()
        rm = "pulumi config rm --path %s"
        total = len(set(tags) | set(PROGRAM_TAGS))
        if total > rules.count:
            own = ", ".join(PROGRAM_TAGS)
            why = f"are too many: with the program's own ({own}) a resource would carry "
            why += f"{total} {rules.noun}s, more than the {rules.count} the cloud allows"
            found.add("", why, fix=rm % config_key(f"tags.{list(tags)[-1]}"))
        folded: dict[str, str] = {}
        for key, value in tags.items():
            if not re.fullmatch(rules.key, key) or len(key) > rules.key_max:
                why = f"is not a {rules.noun} key this cloud accepts: 1-{rules.key_max} "
                found.add(key, why + rules.key_text, fix=rm % config_key(f"tags.{key}"))
            elif ctx(info, "target") == "azure" and key.lower() in folded:
                why = f"is the same Azure tag name as {folded[key.lower()]!r} (names ignore case)"
                found.add(key, why, fix=rm % config_key(f"tags.{key}"))
            elif rules.value_problem(value):
                found.add(key, rules.value_problem(value), rules.fixed_value(value))
            folded.setdefault(key.lower(), key)
        found.raise_any()
        return tags

    @model_validator(mode="after")
    def _across_objects(self, info: ValidationInfo) -> Settings:
        self._stack = ctx(info, "stack")
        self.cross_problems().raise_any()
        return self

    def cross_problems(self, failed: set[str] = frozenset()) -> Problems:
        """Rules spanning keys. Pydantic runs them once every key is valid; the loader also
        runs them on a partial Settings, skipping each rule that involves a `failed` key."""
        found, ok = Problems(), failed.isdisjoint
        gke = ok(("target", "endpoint", "cluster")) and self.target == "gcp"
        if gke and not self.endpoint.public_access and not self.cluster.private_nodes:
            why = "must be true on GKE when endpoint.publicAccess is false"
            found.add("cluster.privateNodes", why, True)
        if ok(("target", "network", "cluster")) and self.target == "gcp":
            # Fires only with cluster.masterCidr set: until then the network avoids its default.
            net, master = self.network, self.cluster.master_cidr
            ranges = {"cidr": net.cidr, "podCidr": net.pod_cidr, "serviceCidr": net.service_cidr}
            for key, value in ranges.items():
                if overlaps(network(master), [value]):
                    why = f"overlaps network.{key} ({master} and {value})"
                    found.add("cluster.masterCidr", why, free_range(MASTER_CIDRS, ranges.values()))
        found.extend(self._cluster_problems(ok))
        if ok(("chart", "ingress")) and self.chart.namespace == self.ingress.controller_namespace:
            fix = "pganalytics" if self.chart.namespace != "pganalytics" else "pganalytics-app"
            found.add("chart.namespace", "must differ from ingress.controllerNamespace", fix)
        chart = self.chart
        if (
            ok(("target", "chart"))
            and self.target == "existing"
            and chart.snapshots_enabled
            and not chart.snapshot_class_name
        ):
            # The program creates a VolumeSnapshotClass only where it knows the CSI driver.
            key = f"{NAMESPACE}:chart.values.volumeSnapshots.className"
            why = "is required on target existing when volumeSnapshots.enabled is true (the "
            why += "program creates a VolumeSnapshotClass only on aws, gcp and azure)"
            fix = f"pulumi config set --path {key} <class> (a class of the cluster: "
            fix += "kubectl get volumesnapshotclass), or pulumi config set --path "
            fix += f"{NAMESPACE}:chart.values.volumeSnapshots.enabled false"
            found.add("chart.values.volumeSnapshots.className", why, fix=fix)
        if ok(("database", "chart", "target", "backup", "nodePool", "cluster", "network")):
            self._database_problems(found)
        if ok(("kubeconfig", "kubeContext")) and self.kube_context and self.kubeconfig:
            # Worded as targets/existing.py words it for the ambient kubeconfig.
            parsed = yaml.safe_load(self.kubeconfig) or {}
            entries = parsed.get("contexts") or []
            names = sorted(str(c["name"]) for c in entries if isinstance(c, dict) and "name" in c)
            if self.kube_context not in names:
                why = f"names context {self.kube_context!r}, which {NAMESPACE}:kubeconfig does "
                why += f"not have (contexts: {', '.join(names) or 'none'})"
                current = parsed.get("current-context")
                if names:
                    found.add("kubeContext", why, current if current in names else names[0])
                else:
                    fix = (
                        f'pulumi config set --secret {NAMESPACE}:kubeconfig "$(cat ~/.kube/config)"'
                    )
                    found.add("kubeContext", why, fix=fix)
        return found

    def _cluster_problems(self, ok) -> Problems:
        """Cluster rules that span keys: node groups per zone, disk types per machine family,
        how GKE admins reach the cluster."""
        found, np = Problems(), self.node_pool
        if ok(("target", "nodePool", "network")) and self.target == "aws":
            zones = self.network.zone_count if self.network.create else len(self.network.subnet_ids)
            if zones and np.max_size < zones:
                why = f"must be at least the {zones} zones on EKS: one node group per zone, each "
                why += f"with at least one node (got {np.max_size})"
                found.add("nodePool.maxSize", why, zones)
        if ok(("target", "nodePool", "storage")) and self.target == "gcp":
            family, disk = gke_family(np.machine_type), self.storage.type
            if family in GKE_HYPERDISK_ONLY and not disk.startswith("hyperdisk-"):
                why = f"is {disk}, which {family} machines cannot attach (they take Hyperdisk "
                why += f"only; nodePool.machineType {np.machine_type})"
                found.add("storage.type", why, "hyperdisk-balanced")
            elif disk.startswith("hyperdisk-") and family not in (
                GKE_HYPERDISK_ONLY + GKE_HYPERDISK_ALSO
            ):
                why = f"is {disk}, which {family} machines cannot attach (nodePool.machineType "
                why += f"{np.machine_type})"
                found.add("storage.type", why, "pd-balanced")
        gke_admins = ok(("target", "clusterAdmins", "cluster")) and self.target == "gcp"
        groups = (
            [m for m in self.cluster_admins.gcp if m.startswith("group:")] if gke_admins else []
        )
        if groups and not self.cluster.rbac_security_group:
            why = "must name the Google Groups for RBAC group while clusterAdmins.gcp lists "
            why += f"a group ({groups[0]}): GKE sees group members only through it"
            found.add("cluster.rbacSecurityGroup", why, "gke-security-groups@example.com")
        return found

    def _database_problems(self, found: Problems) -> None:
        """database against the chart values, the backups and the node pool."""
        db, chart = self.database, self.chart
        bundled_on = chart.value("timescaledb", "enabled")
        if db.mode == "bundled" and bundled_on is False:
            why = "is bundled, but chart.values.timescaledb.enabled is false (an external database)"
            found.add("database.mode", why, "external")
        if (
            db.mode != "bundled"
            and bundled_on is True
            and "enabled" in (chart.values.get("timescaledb") or {})
        ):
            why = f"is {db.mode}, but chart.values.timescaledb.enabled turns the bundled one on"
            found.add("database.mode", why, fix=f"pulumi config rm --path {NAMESPACE}:chart."
                      "values.timescaledb.enabled")  # fmt: skip
        if not db.cloudnativepg:
            return
        backups = chart.value("backup", "enabled") is True and (
            self.is_cloud or bool(self.backup.endpoint)
        )
        if db.restore.from_cluster and not backups:
            why = ("needs the backups on (chart.values.backup.enabled, and on existing "
                   "backup.endpoint): the cluster is restored from the backup bucket")  # fmt: skip
            found.add("database.restore.fromCluster", why, fix=f"pulumi config set --path "
                      f"{NAMESPACE}:chart.values.backup.enabled true")  # fmt: skip
        zones = self._zones()
        if zones == 1 and db.instances > 1:
            why = (f"spreads {db.instances} instances across zones, but the node pool has one "
                   "zone (cluster.zonal): a zone loss takes them all")  # fmt: skip
            found.add("database.instances", why, fix=f"pulumi config set --path {NAMESPACE}:"
                      "cluster.zonal false (a regional cluster), or pulumi config set --path "
                      f"{NAMESPACE}:database.instances 1")  # fmt: skip
        if self.is_cloud and self.node_pool.max_size < db.instances:
            why = (f"needs a node per instance ({db.instances}), but nodePool.maxSize is "
                   f"{self.node_pool.max_size}")  # fmt: skip
            found.add("database.instances", why, fix_key="nodePool.maxSize", value=db.instances)

    def _zones(self) -> int | None:
        """Zones of the workload node pool where the config says it; None when unknown."""
        if self.target == "gcp":
            return 1 if self.cluster.zonal else 3
        if self.target == "aws":
            return self.network.zone_count
        return None

    @model_validator(mode="after")
    def _derived(self, info: ValidationInfo) -> Settings:
        self._chart_secret_paths = tuple(ctx(info, "chart_secret_paths", ()))
        return self

    @property
    def stack(self) -> str:
        return self._stack

    @property
    def chart_secret_paths(self) -> tuple:
        """Paths inside `chart.values` of the leaves set with --secret."""
        return self._chart_secret_paths

    @property
    def is_cloud(self) -> bool:
        return self.target != "existing"

    @property
    def api_url(self) -> str:
        return f"{self.ingress.scheme}://{self.ingress.api_host}" if self.ingress.api_host else ""

    @property
    def grafana_url(self) -> str:
        host = self.ingress.grafana_host
        return f"{self.ingress.scheme}://{host}" if host else ""

    @property
    def frontend_enabled(self) -> bool:
        """frontend.enabled of the merged chart values: pgAnalytics' web UI is deployed."""
        return self.chart.value("frontend", "enabled") is True

    @property
    def app_url(self) -> str:
        """URL of pgAnalytics' web UI, when it is deployed and has a host."""
        host = self.ingress.frontend_host
        return f"{self.ingress.scheme}://{host}" if host and self.frontend_enabled else ""
