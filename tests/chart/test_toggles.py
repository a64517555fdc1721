"""Each toggle renders what it promises; NetworkPolicies allow exactly the real flows."""

from __future__ import annotations

import pytest
import yaml

from . import app_contract as contract
from .conftest import PROGRAM_VALUES, RELEASE, by_kind, component, find, pod_template, render

P = f"{RELEASE}-pganalytics"


def _workload(objs, comp):
    return next(o for o in objs if pod_template(o) is not None and component(o) == comp)


def _container(objs, comp, name=None):
    spec = pod_template(_workload(objs, comp))["spec"]
    return next(c for c in spec["containers"] if name is None or c["name"] == name)


def _env(container):
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def test_persistence_off(rendered):
    objs = rendered["persistence-off"]
    assert not by_kind(objs, "PersistentVolumeClaim")
    for sts in by_kind(objs, "StatefulSet"):
        assert "volumeClaimTemplates" not in sts["spec"]
        vols = {v["name"]: v for v in pod_template(sts)["spec"]["volumes"]}
        if component(sts) in ("timescaledb", "redis"):
            assert "emptyDir" in vols["data"]
    grafana = pod_template(_workload(objs, "grafana"))["spec"]
    assert "emptyDir" in {v["name"]: v for v in grafana["volumes"]}["storage"]


def test_persistence_per_component_storage_class():
    objs = render(
        values={
            "global": {"storageClass": "fast"},
            "grafana": {"persistence": {"storageClass": "slow"}},
        }
    )
    assert find(objs, "PersistentVolumeClaim", f"{P}-grafana")["spec"]["storageClassName"] == "slow"
    tsdb = find(objs, "StatefulSet", f"{P}-timescaledb")
    assert tsdb["spec"]["volumeClaimTemplates"][0]["spec"]["storageClassName"] == "fast"


def test_external_database(rendered):
    objs = rendered["external-database"]
    assert not [o for o in objs if component(o) == "timescaledb"]
    env = _env(_container(objs, "backend", "backend"))
    assert (
        env["DATABASE_URL"]
        == "postgres://pganalytics:$(DATABASE_PASSWORD)@pg.example.internal:5432/pganalytics?sslmode=require"
    )
    assert env["TIMESCALE_URL"].endswith("@pg.example.internal:5432/metrics?sslmode=require")
    assert env["DATABASE_PASSWORD"]["secretKeyRef"] == {
        "name": f"{P}-external-database",
        "key": "database-password",
    }
    init = pod_template(_workload(objs, "backend"))["spec"]["initContainers"][0]
    assert {e["name"]: e["value"] for e in init["env"]}["WAIT_HOST"] == "pg.example.internal"
    ds = find(objs, "ConfigMap", f"{P}-grafana-provisioning")["data"]["datasources.yaml"]
    source = yaml.safe_load(ds)["datasources"][0]
    assert source["url"] == "pg.example.internal:5432"
    assert source["secureJsonData"]["password"] == "$GF_PGANALYTICS_DB_PASSWORD"
    job = by_kind(objs, "Job")[0]
    jenv = _env(pod_template(job)["spec"]["containers"][0])
    assert jenv["PGUSER"] == "dbadmin" and jenv["OWNS_SERVER"] == "false"
    assert jenv["PGPASSWORD"]["secretKeyRef"] == {
        "name": "ext-db-admin",
        "key": "postgres-password",
    }


def test_external_database_existing_secret(rendered):
    objs = rendered["external-database-secret"]
    env = _env(_container(objs, "backend", "backend"))
    assert env["DATABASE_PASSWORD"]["secretKeyRef"] == {
        "name": "ext-db",
        "key": "database-password",
    }
    assert not [s for s in by_kind(objs, "Secret") if "database" in s["metadata"]["name"]]


def test_ingress_off_by_default(rendered):
    objs = rendered["default"]
    assert not by_kind(objs, "Ingress") and not by_kind(objs, "HTTPRoute")
    cm = find(objs, "ConfigMap", f"{P}-backend")["data"]
    assert "API_BASE_URL" not in cm, "no public URL to announce"


def test_tls_on(rendered):
    objs = rendered["tls-on"]
    api = find(objs, "Ingress", f"{P}-api")
    assert api["metadata"]["annotations"]["cert-manager.io/cluster-issuer"] == "le"
    assert api["spec"]["tls"] == [
        {"hosts": ["api.pganalytics.local"], "secretName": f"{P}-api-tls"}
    ]
    assert (
        find(objs, "ConfigMap", f"{P}-backend")["data"]["API_BASE_URL"]
        == "https://api.pganalytics.local"
    )
    gf = _env(_container(objs, "grafana"))
    assert gf["GF_SERVER_ROOT_URL"] == "https://grafana.pganalytics.local/"


def test_collector_targets(rendered):
    """One collector per declared target; the chart's own database by default, with its two
    databases listed (an empty POSTGRES_DATABASES collects only `postgres`)."""
    default = rendered["default"]
    assert not by_kind(default, "DaemonSet")
    bundled = find(default, "Deployment", f"{P}-collector-bundled")
    env = _env(pod_template(bundled)["spec"]["containers"][0])
    assert env["POSTGRES_HOST"] == f"{P}-timescaledb" and env["POSTGRES_PORT"] == "5432"
    assert env["POSTGRES_DATABASES"] == "pganalytics,metrics"
    assert env["POSTGRES_USER"] == "pganalytics"
    assert env["POSTGRES_PASSWORD"]["secretKeyRef"] == {
        "name": f"{P}-timescaledb",
        "key": "database-password",
    }
    objs = rendered["collector-targets"]
    orders = find(objs, "Deployment", f"{P}-collector-orders")
    oenv = _env(pod_template(orders)["spec"]["containers"][0])
    assert (oenv["POSTGRES_HOST"], oenv["POSTGRES_PORT"]) == ("orders-db.example.internal", "6432")
    assert oenv["POSTGRES_DATABASES"] == "orders,postgres" and oenv["COLLECTOR_NAME"] == "orders"
    assert oenv["POSTGRES_PASSWORD"]["secretKeyRef"] == {
        "name": "orders-monitor",
        "key": "password",
    }
    node = find(objs, "DaemonSet", f"{P}-collector-node-pg")
    nenv = _env(pod_template(node)["spec"]["containers"][0])
    assert nenv["POSTGRES_HOST"]["fieldRef"]["fieldPath"] == "status.hostIP"
    assert nenv["COLLECTOR_NAME"] == "node-pg-$(NODE_NAME)"
    assert (
        len(
            [
                o
                for o in objs
                if o["kind"] in ("Deployment", "DaemonSet") and component(o) == "collector"
            ]
        )
        == 3
    )
    pols = by_kind(objs, "NetworkPolicy")
    labels = pod_template(orders)["metadata"]["labels"]
    assert _allowed(pols, labels, "Egress", {"ip": True}, 6432)
    assert not _allowed(pols, labels, "Egress", {"ip": True}, 6379)


def test_collector_off(rendered):
    objs = rendered["collector-off"]
    assert not [o for o in objs if component(o) == "collector"]


def test_network_policy_off(rendered):
    assert not by_kind(rendered["networkpolicy-off"], "NetworkPolicy")


def test_existing_secret_off_generates_each_secret_once(rendered):
    objs = rendered["default"]
    names = sorted(s["metadata"]["name"] for s in by_kind(objs, "Secret"))
    assert names == [f"{P}-backend", f"{P}-grafana", f"{P}-timescaledb"]


def test_ml_service_on(rendered):
    objs = rendered["ml-service"]
    ml = find(objs, "Deployment", f"{P}-ml-service")
    env = _env(pod_template(ml)["spec"]["containers"][0])
    assert env["CELERY_BROKER"] == f"redis://:$(REDIS_PASSWORD)@{P}-redis:6379/0"
    assert env["CELERY_BACKEND"] == f"redis://:$(REDIS_PASSWORD)@{P}-redis:6379/1"
    assert "$(DATABASE_PASSWORD)" in env["DATABASE_URL"]
    cm = find(objs, "ConfigMap", f"{P}-backend")["data"]
    assert cm["ML_SERVICE_ENABLED"] == "true"
    assert cm["ML_SERVICE_URL"] == f"http://{P}-ml-service:8081"
    assert (
        find(rendered["default"], "ConfigMap", f"{P}-backend")["data"]["ML_SERVICE_ENABLED"]
        == "false"
    )
    redis = find(objs, "StatefulSet", f"{P}-redis")
    conf = find(objs, "ConfigMap", f"{P}-redis")["data"]["redis.conf"]
    assert "appendonly yes" in conf and "include /run/redis/auth.conf" in conf
    assert redis["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"


def test_frontend_on(rendered):
    objs = rendered["frontend"]
    env = _env(_container(objs, "frontend"))
    assert env == {
        "PORT": "3000",
        "VITE_API_BACKEND_HOST": f"{P}-backend",
        "VITE_API_BACKEND_PORT": "8080",
        "VITE_API_BACKEND_PROTOCOL": "http",
    }
    assert set(env) <= contract.FRONTEND_ENV
    api = find(objs, "Ingress", f"{P}-api")
    assert [r["host"] for r in api["spec"]["rules"]] == ["api.pganalytics.local", "app.example.org"]
    assert (
        find(objs, "ConfigMap", f"{P}-backend")["data"]["FRONTEND_URL"] == "http://app.example.org"
    )


def test_httproutes_on(rendered):
    objs = rendered["httproute"]
    routes = by_kind(objs, "HTTPRoute")
    assert {r["metadata"]["name"] for r in routes} == {f"{P}-api", f"{P}-grafana", f"{P}-frontend"}
    for r in routes:
        assert r["spec"]["parentRefs"] == [{"name": "gw", "namespace": "gateway-system"}]
        ref = r["spec"]["rules"][0]["backendRefs"][0]
        svc = find(objs, "Service", ref["name"])
        assert ref["port"] in {p["port"] for p in svc["spec"]["ports"]}


def test_namespace_on(rendered):
    ns = by_kind(rendered["namespace-on"], "Namespace")
    assert len(ns) == 1 and ns[0]["metadata"]["name"] == "pganalytics"
    assert ns[0]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_backup_on(rendered):
    objs = rendered["backup"]
    cj = find(objs, "CronJob", f"{P}-backup")
    spec = pod_template(cj)["spec"]
    env = _env(spec["containers"][0])
    assert env["PGPASSWORD"]["secretKeyRef"]["name"] == f"{P}-timescaledb"
    dumps = next(v for v in spec["volumes"] if v["name"] == "dumps")
    assert dumps["persistentVolumeClaim"]["claimName"] == f"{P}-backup"
    find(objs, "PersistentVolumeClaim", f"{P}-backup")


def test_autoscaling_drops_replicas(rendered):
    sts = find(rendered["prod"], "StatefulSet", f"{P}-backend")
    assert "replicas" not in sts["spec"]
    hpa = find(rendered["prod"], "HorizontalPodAutoscaler", f"{P}-backend")
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 10)
    hpa = find(rendered["enterprise"], "HorizontalPodAutoscaler", f"{P}-backend")
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (5, 20)
    assert find(rendered["dev"], "StatefulSet", f"{P}-backend")["spec"]["replicas"] == 1


def test_single_replica_pdb_never_blocks_a_drain(rendered):
    pdb = find(rendered["single-replica-pdb"], "PodDisruptionBudget", f"{P}-backend")
    assert pdb["spec"]["maxUnavailable"] == 1 and "minAvailable" not in pdb["spec"]


def test_stack_profiles(rendered):
    dev = rendered["dev"]
    c = _container(dev, "backend", "backend")
    assert c["resources"]["limits"]["memory"] == "256Mi"
    assert find(dev, "ConfigMap", f"{P}-backend")["data"]["LOG_LEVEL"] == "debug"
    prod = rendered["prod"]
    assert _container(prod, "backend", "backend")["resources"]["limits"]["memory"] == "1Gi"
    spread = pod_template(_workload(prod, "backend"))["spec"]["topologySpreadConstraints"]
    assert {t["topologyKey"] for t in spread} == {
        "topology.kubernetes.io/zone",
        "kubernetes.io/hostname",
    }
    assert all(
        t["labelSelector"]["matchLabels"]["app.kubernetes.io/component"] == "backend"
        for t in spread
    )
    ent = rendered["enterprise"]
    c = _container(ent, "backend", "backend")
    assert (c["resources"]["requests"]["memory"], c["resources"]["limits"]["memory"]) == (
        "1Gi",
        "2Gi",
    )
    cm = find(ent, "ConfigMap", f"{P}-backend")["data"]
    # 3.3.0 reads no LDAP/SAML/OAuth/Vault settings: enterprise needs no Secret nobody creates.
    assert cm["LDAP_ENABLED"] == cm["SAML_ENABLED"] == cm["OAUTH_ENABLED"] == "false"
    assert cm["ENCRYPTION_KEY_BACKEND"] == "local"
    env = _env(c)
    assert not {"LDAP_BIND_PASSWORD", "OAUTH_PROVIDERS", "VAULT_TOKEN"} & set(env)
    for o in ent:
        tmpl = pod_template(o)
        for ctr in (
            (tmpl["spec"].get("containers", []) + tmpl["spec"].get("initContainers", []))
            if tmpl
            else []
        ):
            for e in ctr.get("env", []):
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                assert not ref or ref["name"].startswith(f"{P}-"), (o["metadata"]["name"], ref)
    ml = _env(_container(ent, "ml-service"))
    assert ml["FLASK_ENV"] == contract.ML_REQUIRED_ENV["FLASK_ENV"]
    find(ent, "CronJob", f"{P}-backup")


# --- NetworkPolicy evaluation ---------------------------------------------------------------


def _selects(selector, labels):
    return all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items())


def _peer_matches(peer, src):
    """src: {"ns": namespace, "labels": pod labels} or {"ip": True} for an external address."""
    if "ipBlock" in peer:
        return src.get("ip", False)
    if src.get("ip"):
        return False
    if "namespaceSelector" in peer:
        ns_ok = _selects(peer["namespaceSelector"], {"kubernetes.io/metadata.name": src["ns"]})
    else:
        ns_ok = src["ns"] == "pganalytics"
    return ns_ok and _selects(peer.get("podSelector", {}), src["labels"])


def _port_ok(rule, port, protocol="TCP"):
    ports = rule.get("ports")
    return not ports or any(
        p.get("port") == port and p.get("protocol", "TCP") == protocol for p in ports
    )


def _allowed(policies, pod_labels, direction, peer, port, protocol="TCP"):
    key, field = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    selecting = [
        p
        for p in policies
        if _selects(p["spec"]["podSelector"], pod_labels) and direction in p["spec"]["policyTypes"]
    ]
    if not selecting:
        return True
    for p in selecting:
        for rule in p["spec"].get(key) or []:
            peers = rule.get(field)
            if (not peers or any(_peer_matches(x, peer) for x in peers)) and _port_ok(
                rule, port, protocol
            ):
                return True
    return False


def _labels(objs, comp):
    return pod_template(_workload(objs, comp))["metadata"]["labels"]


def _flow(objs, src, dst, port):
    pols = by_kind(objs, "NetworkPolicy")
    s = {"ns": "pganalytics", "labels": _labels(objs, src)} if isinstance(src, str) else src
    d = {"ns": "pganalytics", "labels": _labels(objs, dst)}
    egress = True if not isinstance(src, str) else _allowed(pols, s["labels"], "Egress", d, port)
    return egress and _allowed(pols, d["labels"], "Ingress", s, port)


TRAEFIK = {"ns": "traefik", "labels": {"app.kubernetes.io/name": "traefik"}}
OTHER_NS = {"ns": "elsewhere", "labels": {}}


@pytest.mark.parametrize("name", ["program-prod", "program-enterprise", "program-dev"])
def test_network_flows(rendered, name):
    objs = rendered[name]
    allowed = [
        (TRAEFIK, "backend", 8080),
        (TRAEFIK, "grafana", 3000),
        ("backend", "timescaledb", 5432),
        ("collector", "backend", 8080),
        ("collector", "timescaledb", 5432),
        ("grafana", "timescaledb", 5432),
        ("bootstrap", "timescaledb", 5432),
    ]
    denied = [
        (OTHER_NS, "backend", 8080),
        (TRAEFIK, "timescaledb", 5432),
        ("collector", "grafana", 3000),
        ("grafana", "backend", 8080),
        ("backend", "grafana", 3000),
        ("collector", "backend", 5432),
        ("bootstrap", "backend", 8080),
        (OTHER_NS, "timescaledb", 5432),
    ]
    if name == "program-enterprise":
        allowed += [
            ("ml-service", "redis", 6379),
            ("backend", "ml-service", 8081),
            ("ml-service", "timescaledb", 5432),
        ]
        denied += [
            ("backend", "redis", 6379),
            ("collector", "redis", 6379),
            ("grafana", "ml-service", 8081),
        ]
    for src, dst, port in allowed:
        assert _flow(objs, src, dst, port), f"{name}: {src} -> {dst}:{port} should be allowed"
    for src, dst, port in denied:
        assert not _flow(objs, src, dst, port), f"{name}: {src} -> {dst}:{port} should be denied"
    pols = by_kind(objs, "NetworkPolicy")
    kube_dns = {"ns": "kube-system", "labels": {"k8s-app": "kube-dns"}}
    for comp in ("backend", "collector", "grafana", "timescaledb", "bootstrap"):
        for proto in ("UDP", "TCP"):
            assert _allowed(pols, _labels(objs, comp), "Egress", kube_dns, 53, proto), (
                f"{comp} -> kube-dns"
            )
        assert not _allowed(pols, _labels(objs, comp), "Egress", {"ip": True}, 53, "UDP"), (
            f"{comp} -> any IP:53 (DNS must go to kube-dns only)"
        )
        assert not _allowed(pols, _labels(objs, comp), "Egress", {"ip": True}, 443), (
            f"{comp} -> internet:443"
        )
        assert not _allowed(pols, _labels(objs, comp), "Egress", {"ip": True}, 587), (
            f"{comp} -> SMTP without networkPolicy.smtp"
        )
    deny = find(objs, "NetworkPolicy", f"{P}-default-deny")
    assert deny["spec"]["policyTypes"] == ["Ingress", "Egress"] and "ingress" not in deny["spec"]


def test_external_database_egress(rendered):
    objs = rendered["external-database"]
    pols = by_kind(objs, "NetworkPolicy")
    for comp in ("backend", "grafana"):
        assert _allowed(pols, _labels(objs, comp), "Egress", {"ip": True}, 5432)


def test_common_labels_and_annotations_stay_out_of_selectors():
    objs = render(values={"commonLabels": {"team": "dba"}, "commonAnnotations": {"owner": "dba@x"}})
    for o in objs:
        assert o["metadata"]["labels"]["team"] == "dba", o["metadata"]["name"]
        assert o["metadata"]["annotations"]["owner"] == "dba@x", o["metadata"]["name"]
        tmpl = pod_template(o)
        if tmpl and o["kind"] not in ("CronJob", "Job"):  # Jobs get a generated selector
            assert "team" not in o["spec"]["selector"]["matchLabels"]


def test_fullname_override_names_every_object():
    objs = render(values={"fullnameOverride": "mon"})
    names = {o["metadata"]["name"] for o in objs}
    assert all(n == "mon" or n.startswith("mon-") for n in names), names
    sts = find(objs, "StatefulSet", "mon-backend")
    assert sts["spec"]["serviceName"] == "mon-backend-headless"
    long = render(values={"fullnameOverride": "x" * 70})
    for o in long:
        assert len(o["metadata"]["name"]) <= 63, o["metadata"]["name"]
        if o["kind"] == "StatefulSet":  # controller-revision-hash label: name + "-" + 10 chars
            assert len(o["metadata"]["name"]) <= 52, o["metadata"]["name"]


@pytest.mark.parametrize("stack", ["prod", "enterprise"])
def test_prod_and_enterprise_serve_the_web_ui_on_its_own_host_with_tls(stack):
    """The program's values (docs/CHART_INTERFACE.md) on top of values-<stack>.yaml."""
    objs = render(f"values-{stack}.yaml", values=PROGRAM_VALUES)
    assert find(objs, "Deployment", f"{P}-frontend")["spec"]["replicas"] == 2
    api = find(objs, "Ingress", f"{P}-api")
    host = PROGRAM_VALUES["ingress"]["frontend"]["host"]
    rule = next(r for r in api["spec"]["rules"] if r["host"] == host)
    assert rule["http"]["paths"][0]["backend"]["service"]["name"] == f"{P}-frontend"
    assert {"hosts": [host], "secretName": f"{P}-frontend-tls"} in api["spec"]["tls"]
    assert "cert-manager.io/cluster-issuer" in api["metadata"]["annotations"]
    policy = find(objs, "NetworkPolicy", f"{P}-frontend")
    assert policy["spec"]["ingress"], "the ingress controller must reach the web UI"


def test_dev_keeps_the_web_ui_optional():
    assert not [o for o in render("values-dev.yaml") if component(o) == "frontend"]
