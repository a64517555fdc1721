"""The CloudNativePG database of the chart (cloudnativepg.*, templates/cnpg-*.yaml) as the
program renders it for prod and enterprise (database.mode cloudnativepg): the objects, how every
client reaches the database, the connection budget against the Pooler, and the refusals.
The CRDs' own acceptance of these objects is the cluster tier's (tests/cluster/test_cnpg.py)."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import CNPG_VALUES, PROGRAM_VALUES, HelmError, deep_merge, find, render

P = "pga-pganalytics"
CLUSTER = "pganalytics-db"


def cnpg(stack: str = "prod", **extra: Any) -> list[dict]:
    return render(f"values-{stack}.yaml", values=deep_merge(PROGRAM_VALUES, CNPG_VALUES, extra))


def one(objs: list[dict], kind: str) -> dict:
    found = [o for o in objs if o["kind"] == kind]
    assert len(found) == 1, [o["metadata"]["name"] for o in found]
    return found[0]


def env_of(container: dict) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container.get("env", [])}


@pytest.mark.parametrize("stack", ["prod", "enterprise"])
def test_cluster_spreads_three_instances_and_preloads_timescaledb(stack):
    objs = cnpg(stack)
    spec = one(objs, "Cluster")["spec"]
    assert spec["instances"] == 3
    assert spec["affinity"] == {"enablePodAntiAffinity": True, "podAntiAffinityType": "required",
                                "topologyKey": "kubernetes.io/hostname"}  # fmt: skip
    (spread,) = spec["topologySpreadConstraints"]
    assert spread["topologyKey"] == "topology.kubernetes.io/zone"
    assert spread["labelSelector"]["matchLabels"]["cnpg.io/cluster"] == CLUSTER
    assert spec["enablePDB"] is True
    assert spec["postgresql"]["shared_preload_libraries"] == ["timescaledb", "pg_stat_statements"]
    assert spec["postgresql"]["parameters"]["archive_timeout"] == "300s"
    assert spec["storage"]["storageClass"] == "pganalytics-ssd"
    assert not any(o["kind"] == "StatefulSet" and "timescaledb" in o["metadata"]["name"]
                   for o in objs)  # fmt: skip


def test_image_comes_from_a_catalog_with_the_major_mirror_and_digest():
    digest = "sha256:" + "a" * 64
    objs = cnpg(cloudnativepg={"image": {"digest": digest}})
    catalog, cluster = one(objs, "ImageCatalog"), one(objs, "Cluster")["spec"]
    assert cluster["imageCatalogRef"]["name"] == catalog["metadata"]["name"]
    assert cluster["imageCatalogRef"]["major"] == 16
    assert catalog["spec"]["images"] == [{
        "major": 16,
        "image": f"registry.example.com/mirror/timescale/timescaledb-ha:pg16.6-ts2.17.2@{digest}",
    }]  # fmt: skip
    assert (cluster["postgresUID"], cluster["postgresGID"]) == (1000, 1000)
    pooler = one(objs, "Pooler")["spec"]["pgbouncer"]
    # values-prod.yaml pins the PgBouncer image by digest (docs/KUBERNETES_DEPLOYMENT.md).
    assert pooler["image"] == (
        "registry.example.com/mirror/cloudnative-pg/pgbouncer:1.25.1"
        "@sha256:e6ddfe22d845e603825e235dd8334b21ecd125abea2a2172478f556b8dee2bb8"
    )


def test_roles_read_the_program_secrets():
    spec = one(cnpg(), "Cluster")["spec"]
    assert spec["superuserSecret"] == {"name": "pganalytics-cnpg-superuser"}
    assert spec["bootstrap"]["initdb"]["secret"] == {"name": "pganalytics-cnpg-app"}
    roles = {r["name"]: r for r in spec["managed"]["roles"]}
    assert roles["pganalytics"]["passwordSecret"] == {"name": "pganalytics-cnpg-app"}
    # The app role is in no role: the bootstrap Job takes pg_monitor back from it, and the
    # operator would grant it again on every reconcile if the Cluster listed it.
    assert not roles["pganalytics"].get("inRoles")
    assert not roles["pganalytics"]["superuser"] and not roles["pganalytics"]["createrole"]
    assert roles["pganalytics_grafana"]["passwordSecret"] == {"name": "pganalytics-cnpg-grafana"}
    initdb = spec["bootstrap"]["initdb"]
    assert "CREATE EXTENSION IF NOT EXISTS timescaledb" in initdb["postInitTemplateSQL"]
    assert initdb["postInitApplicationSQL"] == ["CREATE DATABASE metrics OWNER pganalytics"]


def test_wal_archive_and_base_backups_go_through_the_plugin():
    objs = cnpg()
    store, scheduled = one(objs, "ObjectStore"), one(objs, "ScheduledBackup")
    cluster = one(objs, "Cluster")["spec"]
    (plugin,) = cluster["plugins"]
    assert plugin == {"name": "barman-cloud.cloudnative-pg.io", "isWALArchiver": True,
                      "parameters": {"barmanObjectName": store["metadata"]["name"]}}  # fmt: skip
    conf = store["spec"]["configuration"]
    assert conf["destinationPath"] == "s3://pganalytics-prod-backups-a1b2c3d4/cnpg"
    assert conf["s3Credentials"] == {"inheritFromIAMRole": True}
    assert store["spec"]["retentionPolicy"] == "30d"
    assert store["spec"]["instanceSidecarConfiguration"]["env"] == [
        {"name": "AWS_DEFAULT_REGION", "value": "eu-west-1"}
    ]
    assert scheduled["spec"]["method"] == "plugin"
    assert scheduled["spec"]["cluster"] == {"name": CLUSTER}
    assert len(scheduled["spec"]["schedule"].split()) == 6


@pytest.mark.parametrize(
    ("provider", "credentials"),
    [("gcs", {"googleCredentials": {"gkeEnvironment": True}}),
     ("azure", {"azureCredentials": {"inheritFromAzureAD": True}})],
)  # fmt: skip
def test_workload_identity_per_cloud(provider, credentials):
    annotations = {"iam.gke.io/gcp-service-account": "db@p.iam.gserviceaccount.com"}
    objs = cnpg(cloudnativepg={
        "backup": {"provider": provider, "destinationPath": "gs://b/cnpg"},
        "serviceAccount": {"annotations": annotations},
        "podLabels": {"azure.workload.identity/use": "true"},
    })  # fmt: skip
    conf = one(objs, "ObjectStore")["spec"]["configuration"]
    assert {k: v for k, v in conf.items() if k.endswith("Credentials")} == credentials
    spec = one(objs, "Cluster")["spec"]
    assert spec["serviceAccountTemplate"]["metadata"]["annotations"] == annotations
    assert spec["inheritedMetadata"]["labels"]["azure.workload.identity/use"] == "true"


def test_no_backup_no_archive():
    objs = cnpg(cloudnativepg={"backup": {"enabled": False}})
    assert "plugins" not in one(objs, "Cluster")["spec"]
    assert not [o for o in objs if o["kind"] in ("ObjectStore", "ScheduledBackup")]


def test_recovery_bootstraps_from_the_object_store():
    recovery = {"enabled": True, "sourceClusterName": CLUSTER, "targetTime": "2026-01-01T02:15:00Z"}
    objs = cnpg(cloudnativepg={"clusterName": "pganalytics-db-2", "recovery": recovery})
    spec = one(objs, "Cluster")["spec"]
    assert "initdb" not in spec["bootstrap"]
    assert spec["bootstrap"]["recovery"] == {
        "source": "origin", "recoveryTarget": {"targetTime": "2026-01-01T02:15:00Z"}}  # fmt: skip
    (origin,) = spec["externalClusters"]
    assert origin["plugin"]["parameters"]["serverName"] == CLUSTER
    assert one(objs, "Pooler")["spec"]["cluster"] == {"name": "pganalytics-db-2"}


def test_api_and_ml_go_through_the_pooler_everything_else_to_the_primary():
    objs = cnpg("enterprise")
    pooler = one(objs, "Pooler")
    assert pooler["spec"]["pgbouncer"]["poolMode"] == "transaction"
    assert pooler["spec"]["pgbouncer"]["parameters"]["max_prepared_statements"] == "200"
    name = pooler["metadata"]["name"]
    api = find(objs, "StatefulSet", f"{P}-backend")["spec"]["template"]["spec"]["containers"][0]
    urls = env_of(api)
    for key in ("DATABASE_URL", "TIMESCALE_URL"):
        assert f"@{name}:5432/" in urls[key] and urls[key].endswith("&binary_parameters=yes")
    ml = find(objs, "Deployment", f"{P}-ml-service")["spec"]["template"]["spec"]["containers"][0]
    ml_url = env_of(ml)["DATABASE_URL"]
    assert f"@{name}:5432/" in ml_url and "binary_parameters" not in ml_url  # libpq refuses it
    job = one(objs, "Job")["spec"]["template"]["spec"]["containers"][0]
    assert env_of(job)["PGHOST"] == f"{CLUSTER}-rw" and env_of(job)["PGUSER"] == "postgres"
    assert env_of(job)["PGSSLMODE"] == "require" and env_of(job)["OWNS_SERVER"] == "true"
    datasource = find(objs, "ConfigMap", f"{P}-grafana-provisioning")["data"]["datasources.yaml"]
    assert f"url: {CLUSTER}-rw:5432" in datasource.replace('"', "")


def test_network_policies_open_the_operator_and_pooler_flows():
    objs = cnpg()
    policies = {o["metadata"]["name"]: o["spec"] for o in objs if o["kind"] == "NetworkPolicy"}
    db = policies[CLUSTER]
    operator = db["ingress"][0]["from"][0]["namespaceSelector"]["matchLabels"]
    assert operator == {"kubernetes.io/metadata.name": "cnpg-system"}
    assert {p["port"] for p in db["ingress"][0]["ports"]} == {8000, 5432}
    pooler = policies[f"{CLUSTER}-pooler"]
    sources = [p["podSelector"]["matchLabels"]["app.kubernetes.io/component"]
               for p in pooler["ingress"][0]["from"]]  # fmt: skip
    assert sources == ["backend"]
    backend = policies[f"{P}-backend"]
    to_db = [r for r in backend["egress"] if any(p.get("port") == 5432 for p in r["ports"])]
    selectors = [t["podSelector"]["matchLabels"] for r in to_db for t in r["to"]]
    assert {"cnpg.io/poolerName": f"{CLUSTER}-pooler"} in selectors


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"cloudnativepg": {"pooler": {"maxClientConn": 500}}},
         "cloudnativepg.pooler.maxClientConn"),
        ({"cloudnativepg": {"parameters": {"max_connections": "50"}}},
         "cloudnativepg.parameters.max_connections"),
        ({"cloudnativepg": {"recovery": {"enabled": True}}}, "recovery.sourceClusterName"),
        ({"cloudnativepg": {"recovery": {"enabled": True, "sourceClusterName": CLUSTER}}},
         "must differ"),
        ({"timescaledb": {"enabled": True}}, "set timescaledb.enabled=false"),
        ({"cloudnativepg": {"auth": {"appSecret": ""}}}, "cloudnativepg.auth.appSecret"),
        ({"cloudnativepg": {"minSyncReplicas": 1, "maxSyncReplicas": 3}}, "maxSyncReplicas"),
        ({"cloudnativepg": {"backup": {"destinationPath": ""}}}, "destinationPath is required"),
        ({"cloudnativepg": {"enableSuperuserAccess": False}}, "enableSuperuserAccess"),
    ],
)  # fmt: skip
def test_refused(extra, message):
    with pytest.raises(HelmError, match=message):
        cnpg(**extra)


def test_schema_refuses_an_unknown_pool_mode_and_key():
    with pytest.raises(HelmError, match="poolMode"):
        cnpg(cloudnativepg={"pooler": {"poolMode": "statement"}})
    with pytest.raises(HelmError, match=r"instancez|additional"):
        cnpg(cloudnativepg={"instancez": 3})


def test_collectors_monitor_the_cluster_as_the_monitoring_role():
    """Security item 8 with CloudNativePG: the collector of the chart's database logs in as
    the read-only monitoring role the bootstrap Job makes (pg_monitor), with its own password
    from the program's credentials Secret, never as the app role. The chart's database is named
    by timescaledb.auth under CloudNativePG too (not externalDatabase)."""
    objs = cnpg(timescaledb={"auth": {"monitorUsername": "team_monitor"}})
    job = next(o for o in objs if o["kind"] == "Job" and "bootstrap" in o["metadata"]["name"])
    boot = job["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in boot["env"]}
    assert env["MONITOR_USER"]["value"] == "team_monitor"
    assert env["MONITOR_PASSWORD"]["valueFrom"]["secretKeyRef"]["key"] == "monitor-password"
    assert env["OWNS_SERVER"]["value"] == "true"
    collectors = [
        c
        for o in objs
        if o["kind"] in ("Deployment", "DaemonSet", "StatefulSet")
        and "collector" in o["metadata"]["name"]
        for c in o["spec"]["template"]["spec"]["containers"]
    ]
    assert collectors
    rendered = str(collectors) + str([o for o in objs if o["kind"] == "ConfigMap"])
    assert "team_monitor" in rendered
    for c in collectors:
        keys = {
            e["valueFrom"]["secretKeyRef"]["key"]
            for e in c.get("env", [])
            if "secretKeyRef" in e.get("valueFrom", {})
        }
        assert "database-password" not in keys, c["name"]
