"""Structural invariants checked on every rendered scenario.

The application facts (ports, health paths, environment) are the contract of
docs/APP_CONTRACT.md, as data in tests/chart/app_contract.py (test tiers:
docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import base64
import re

import pytest

from tests.conftest import credential_keys

from . import app_contract as contract
from .conftest import (
    RELEASE,
    SCENARIOS,
    SENTINEL_EXT_PASSWORD,
    all_containers,
    by_kind,
    component,
    find,
    pod_template,
    scenario_values,
)

NAMES = sorted(SCENARIOS)
STABLE_SELECTOR_KEYS = {
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/component",
}
REQUIRED_LABELS = {
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/component",
    "app.kubernetes.io/part-of",
    "app.kubernetes.io/managed-by",
    "helm.sh/chart",
}

# component -> (container name, container port, HTTP health path or None for exec / none)
APP = {
    "backend": ("backend", 8080, contract.BACKEND_READINESS_PATH),
    "grafana": ("grafana", 3000, "/api/health"),
    "ml-service": ("ml-service", 8081, "/health"),
    "frontend": ("frontend", 3000, "/"),
    "timescaledb": ("timescaledb", 5432, None),
    "redis": ("redis", 6379, None),
}

# Env names each component reads: tests/chart/app_contract.py (docs/APP_CONTRACT.md).
BACKEND_ENV = contract.BACKEND_ENV | contract.BACKEND_OPT_IN_ENV | contract.EXPANSION_ENV
COLLECTOR_ENV = contract.COLLECTOR_ENV | contract.COLLECTOR_EXPANSION_ENV
RESTRICTED_VOLUME_TYPES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}


@pytest.fixture(scope="module", params=NAMES)
def case(request, rendered, chart_values):
    name = request.param
    return name, rendered[name], scenario_values(name, chart_values)


def workloads(objs):
    return [o for o in objs if pod_template(o) is not None]


def env_of(container, objs):
    """Resolved env of a container: {name: value or ('secret'|'configmap', name, key)}."""
    out = {}
    for src in container.get("envFrom", []):
        if "configMapRef" in src:
            cm = find(objs, "ConfigMap", src["configMapRef"]["name"])
            out.update(cm.get("data", {}))
    for e in container.get("env", []):
        if "value" in e:
            out[e["name"]] = e["value"]
        elif "secretKeyRef" in e.get("valueFrom", {}):
            ref = e["valueFrom"]["secretKeyRef"]
            out[e["name"]] = ("secret", ref["name"], ref["key"])
        else:
            out[e["name"]] = ("other",)
    return out


def test_labels_and_selectors(case):
    name, objs, _ = case
    for o in objs:
        labels = o["metadata"].get("labels", {})
        missing = REQUIRED_LABELS - set(labels)
        assert not missing, f"{name}: {o['kind']}/{o['metadata']['name']} lacks labels {missing}"
        assert labels["app.kubernetes.io/instance"] == RELEASE
        assert o["metadata"]["name"].startswith(f"{RELEASE}-") or o["kind"] == "Namespace"
    for w in workloads(objs):
        tmpl = pod_template(w)
        if w["kind"] in ("Deployment", "StatefulSet", "DaemonSet"):
            sel = w["spec"]["selector"]["matchLabels"]
            expected = STABLE_SELECTOR_KEYS | (
                {"pganalytics.io/collector-target"} if component(w) == "collector" else set()
            )
            assert set(sel) == expected, f"{name}: {w['metadata']['name']} selects on {set(sel)}"
            pod_labels = tmpl["metadata"]["labels"]
            assert all(pod_labels.get(k) == v for k, v in sel.items()), (
                f"{name}: selector {sel} does not match pod labels {pod_labels}"
            )
    for kind in ("PodDisruptionBudget",):
        for o in by_kind(objs, kind):
            assert set(o["spec"]["selector"]["matchLabels"]) == STABLE_SELECTOR_KEYS


def test_services_target_exposed_ports(case):
    name, objs, _ = case
    pods = [pod_template(w) for w in workloads(objs)]
    for svc in by_kind(objs, "Service"):
        sel = svc["spec"]["selector"]
        matching = [
            p for p in pods if all(p["metadata"]["labels"].get(k) == v for k, v in sel.items())
        ]
        assert matching, f"{name}: Service {svc['metadata']['name']} selects no pod"
        for port in svc["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            for p in matching:
                exposed = [cp for c in p["spec"]["containers"] for cp in c.get("ports", [])]
                ok = any(
                    cp.get("name") == target or cp["containerPort"] == target for cp in exposed
                )
                svc_name = svc["metadata"]["name"]
                assert ok, f"{name}: Service {svc_name} targets {target}, pod exposes {exposed}"


def test_app_ports_and_probes(case):
    name, objs, _ = case
    for w in workloads(objs):
        comp = component(w)
        spec = pod_template(w)["spec"]
        if comp == "collector":
            c = spec["containers"][0]
            assert not c.get("ports"), "the collector has no HTTP server"
            for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
                assert "httpGet" not in c.get(probe, {}), f"{name}: collector has an HTTP {probe}"
            continue
        if comp not in APP:
            continue
        cname, port, path = APP[comp]
        c = next(c for c in spec["containers"] if c["name"] == cname)
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        assert port in ports.values(), f"{name}: {comp} exposes {ports}, expected {port}"
        assert c.get("readinessProbe") and c.get("livenessProbe"), f"{name}: {comp} lacks probes"
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            if probe not in c:
                continue
            if path is None:
                assert "exec" in c[probe], f"{name}: {comp} {probe} should exec the client"
                continue
            http = c[probe]["httpGet"]
            if comp == "backend" and probe == "livenessProbe":
                # liveness must not depend on the databases (a DB outage must not restart the API)
                assert http["path"] == contract.BACKEND_LIVENESS_PATH, (name, http)
                continue
            assert http["path"] == path, (
                f"{name}: {comp} {probe} hits {http['path']}, app serves {path}"
            )
            assert ports.get(http["port"], http["port"]) == port
        if comp == "backend":
            assert "startupProbe" in c, (
                "the API connects to two databases: it needs a startup probe"
            )
        if comp == "redis":
            cmd = " ".join(c["readinessProbe"]["exec"]["command"])
            assert "redis-cli" in cmd
            assert "REDISCLI_AUTH" in {e["name"] for e in c["env"]}, (
                "redis probes must authenticate"
            )
        if comp == "timescaledb":
            assert c["readinessProbe"]["exec"]["command"][0] == "pg_isready"


def test_no_metrics_endpoint_or_db_star_variables(case):
    name, objs, _ = case
    for o in objs:
        ann = {**(o["metadata"].get("annotations") or {})}
        tmpl = pod_template(o)
        if tmpl:
            ann.update(tmpl["metadata"].get("annotations") or {})
            for c in all_containers(tmpl["spec"]):
                for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
                    path = c.get(probe, {}).get("httpGet", {}).get("path", "")
                    assert path != "/metrics", f"{name}: the app has no /metrics endpoint"
        assert not [k for k in ann if k.startswith("prometheus.io/")], (
            f"{name}: nothing serves /metrics to scrape"
        )
    assert not [o for o in objs if o["kind"] in ("ServiceMonitor", "PodMonitor")]
    for w in workloads(objs):
        if component(w) != "backend":
            continue
        c = next(c for c in pod_template(w)["spec"]["containers"] if c["name"] == "backend")
        env = env_of(c, objs)
        unknown = set(env) - BACKEND_ENV
        assert not unknown, f"{name}: backend gets variables it does not read: {unknown}"
        bad = [k for k in env if re.match(r"^(DB_|REDIS_|CORS_)|^API_WORKERS$", k)]
        assert not bad, bad
        for required in (
            "DATABASE_URL",
            "TIMESCALE_URL",
            "JWT_SECRET",
            "REGISTRATION_SECRET",
            "ENCRYPTION_KEY",
        ):
            assert required in env, f"{name}: backend lacks {required}"
        for url in ("DATABASE_URL", "TIMESCALE_URL"):
            assert "$(DATABASE_PASSWORD)" in env[url], (
                f"{name}: {url} must expand the password variable"
            )
            assert env[url].startswith("postgres://")
        env_names = [e["name"] for e in c["env"]]
        assert env_names.index("DATABASE_PASSWORD") < env_names.index("DATABASE_URL"), (
            "$(VAR) expansion needs the password variable defined first"
        )
        for key in ("JWT_SECRET", "REGISTRATION_SECRET", "ENCRYPTION_KEY", "DATABASE_PASSWORD"):
            assert env[key][0] == "secret", f"{name}: {key} must come from a Secret"


def test_collector_wiring(case):
    _name, objs, values = case
    for w in workloads(objs):
        if component(w) != "collector":
            continue
        spec = pod_template(w)["spec"]
        c = spec["containers"][0]
        env = env_of(c, objs)
        assert set(env) <= COLLECTOR_ENV, set(env) - COLLECTOR_ENV
        backend_svc = find(objs, "Service", f"{RELEASE}-pganalytics-backend")
        assert (
            env["BACKEND_URL"]
            == f"http://{backend_svc['metadata']['name']}:{backend_svc['spec']['ports'][0]['port']}"
        )
        assert env["REGISTRATION_SECRET"][0] == "secret"
        backend = next(o for o in objs if o["kind"] == "StatefulSet" and component(o) == "backend")
        benv = env_of(pod_template(backend)["spec"]["containers"][0], objs)
        assert env["REGISTRATION_SECRET"] == benv["REGISTRATION_SECRET"], (
            "collector and API must share the secret"
        )
        mounts = {m["mountPath"] for m in c["volumeMounts"]}
        assert "/var/lib/pganalytics" in mounts and "/etc/pganalytics" in mounts
        target = w["spec"]["template"]["metadata"]["labels"]["pganalytics.io/collector-target"]
        declared = next(t for t in values["collector"]["targets"] if t["name"] == target)
        if declared.get("nodeLocal"):
            assert w["kind"] == "DaemonSet"
            host = next(e for e in c["env"] if e["name"] == "POSTGRES_HOST")
            assert host["valueFrom"]["fieldRef"]["fieldPath"] == "status.hostIP"
        else:
            # exactly one collector per target: one pod, never two during a rollout
            assert w["kind"] == "Deployment"
            assert w["spec"]["replicas"] == 1 and w["spec"]["strategy"]["type"] == "Recreate"
        assert isinstance(env["POSTGRES_DATABASES"], str) and env["POSTGRES_DATABASES"], (
            "an empty POSTGRES_DATABASES makes the 3.3.0 entrypoint collect only `postgres`"
        )
    if values["collector"]["enabled"]:
        names = [
            w["spec"]["template"]["metadata"]["labels"]["pganalytics.io/collector-target"]
            for w in workloads(objs)
            if component(w) == "collector"
        ]
        assert sorted(names) == sorted(t["name"] for t in values["collector"]["targets"])


def test_production_stacks_have_real_urls(rendered):
    for name in ("prod", "enterprise", "program-prod", "program-enterprise"):
        objs = rendered[name]
        cm = find(objs, "ConfigMap", f"{RELEASE}-pganalytics-backend")["data"]
        assert cm["ENVIRONMENT"] == "production"
        for key in ("API_BASE_URL", "FRONTEND_URL"):
            assert cm[key].startswith("https://") and "localhost" not in cm[key], (
                name,
                key,
                cm.get(key),
            )


def test_referenced_secrets_and_configmaps_exist(case):
    name, objs, values = case
    secrets = {s["metadata"]["name"]: s for s in by_kind(objs, "Secret")}
    configmaps = {c["metadata"]["name"]: c for c in by_kind(objs, "ConfigMap")}
    supplied = {
        v
        for v in (
            values["backend"]["auth"]["existingSecret"],
            values["timescaledb"]["auth"]["existingSecret"],
            values["redis"]["auth"]["existingSecret"],
            values["grafana"]["admin"]["existingSecret"],
            values["externalDatabase"]["existingSecret"],
            values["externalDatabase"]["admin"]["existingSecret"],
            values["grafana"]["datasource"]["existingSecret"],
            *(t.get("existingSecret") for t in values["collector"]["targets"]),
            values["backend"]["ldap"]["existingSecret"],
            values["backend"]["saml"]["existingSecret"],
            values["backend"]["oauth"]["existingSecret"],
            values["backend"]["encryption"]["vault"]["existingSecret"],
        )
        if v
    }
    for w in workloads(objs):
        spec = pod_template(w)["spec"]
        wname = f"{w['kind']}/{w['metadata']['name']}"
        refs = []
        for c in all_containers(spec):
            for e in c.get("env", []):
                vf = e.get("valueFrom", {})
                if "secretKeyRef" in vf:
                    refs.append(("Secret", vf["secretKeyRef"]["name"], vf["secretKeyRef"]["key"]))
                if "configMapKeyRef" in vf:
                    refs.append(
                        ("ConfigMap", vf["configMapKeyRef"]["name"], vf["configMapKeyRef"]["key"])
                    )
            for src in c.get("envFrom", []):
                if "configMapRef" in src:
                    refs.append(("ConfigMap", src["configMapRef"]["name"], None))
                if "secretRef" in src:
                    refs.append(("Secret", src["secretRef"]["name"], None))
        for v in spec.get("volumes", []):
            if "secret" in v:
                for item in v["secret"].get("items", [{"key": None}]):
                    refs.append(("Secret", v["secret"]["secretName"], item["key"]))
            if "configMap" in v:
                for item in v["configMap"].get("items", [{"key": None}]):
                    refs.append(("ConfigMap", v["configMap"]["name"], item["key"]))
            if "persistentVolumeClaim" in v:
                claim = v["persistentVolumeClaim"]["claimName"]
                rendered_pvcs = {
                    p["metadata"]["name"] for p in by_kind(objs, "PersistentVolumeClaim")
                }
                existing = {values["backup"]["persistence"]["existingClaim"]}
                assert claim in rendered_pvcs | existing, (
                    f"{name}: {wname} mounts unknown PVC {claim}"
                )
        for kind, ref, key in refs:
            if kind == "Secret":
                if ref in secrets:
                    if key is not None:
                        assert key in secrets[ref]["data"], (
                            f"{name}: {wname} wants key {key} of Secret {ref}"
                        )
                else:
                    assert ref in supplied, (
                        f"{name}: {wname} references Secret {ref}, neither rendered nor supplied"
                    )
            else:
                assert ref in configmaps, (
                    f"{name}: {wname} references ConfigMap {ref}, not rendered"
                )
                if key is not None:
                    assert key in configmaps[ref]["data"], (
                        f"{name}: {wname} wants key {key} of ConfigMap {ref}"
                    )
        # The chart renders a Secret only when no existingSecret replaces it.
    for sname in secrets:
        assert sname not in supplied, (
            f"{name}: chart renders Secret {sname} although it is supplied"
        )


def test_existing_secret_keys_are_configurable(rendered):
    objs = rendered["existing-secrets"]
    assert not by_kind(objs, "Secret"), "existingSecret on: no chart Secret"
    refs = set()
    for w in workloads(objs):
        for c in all_containers(pod_template(w)["spec"]):
            for e in c.get("env", []):
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    refs.add((ref["name"], ref["key"]))
    keys = {k for n, k in refs if n == "mine"}
    assert keys == credential_keys(), keys


def test_hpa_and_pdb_target_existing_workloads(case):
    name, objs, values = case
    for hpa in by_kind(objs, "HorizontalPodAutoscaler"):
        ref = hpa["spec"]["scaleTargetRef"]
        target = find(objs, ref["kind"], ref["name"])
        assert "replicas" not in target["spec"], (
            f"{name}: {ref['name']} sets replicas while the HPA is on"
        )
        metrics = {
            m["resource"]["name"]: m["resource"]["target"]["averageUtilization"]
            for m in hpa["spec"]["metrics"]
        }
        assert metrics
    for pdb in by_kind(objs, "PodDisruptionBudget"):
        sel = pdb["spec"]["selector"]["matchLabels"]
        targets = [
            w
            for w in workloads(objs)
            if all(pod_template(w)["metadata"]["labels"].get(k) == v for k, v in sel.items())
        ]
        assert targets, f"{name}: PDB {pdb['metadata']['name']} selects no workload"
        assert "minAvailable" not in pdb["spec"], "minAvailable can block a drain"
        mu = pdb["spec"]["maxUnavailable"]
        assert (isinstance(mu, int) and mu >= 1) or (
            isinstance(mu, str) and int(mu.rstrip("%")) >= 1
        ), mu
    if values["backend"]["autoscaling"]["enabled"]:
        assert by_kind(objs, "HorizontalPodAutoscaler")


def _restricted_problems(pod_spec, where):
    problems = []
    psc = pod_spec.get("securityContext", {})
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if pod_spec.get(key):
            problems.append(f"{where}: {key}")
    for v in pod_spec.get("volumes", []):
        kinds = set(v) - {"name"}
        if not kinds <= RESTRICTED_VOLUME_TYPES:
            problems.append(f"{where}: volume {v['name']} of type {kinds}")
    for c in all_containers(pod_spec):
        csc = c.get("securityContext", {})
        cw = f"{where}/{c['name']}"
        if csc.get("runAsNonRoot", psc.get("runAsNonRoot")) is not True:
            problems.append(f"{cw}: runAsNonRoot")
        if csc.get("runAsUser", psc.get("runAsUser")) == 0:
            problems.append(f"{cw}: runAsUser 0")
        seccomp = csc.get("seccompProfile", psc.get("seccompProfile", {})).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{cw}: seccompProfile {seccomp}")
        if csc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{cw}: allowPrivilegeEscalation")
        if csc.get("privileged"):
            problems.append(f"{cw}: privileged")
        caps = csc.get("capabilities", {})
        if "ALL" not in caps.get("drop", []):
            problems.append(f"{cw}: capabilities.drop ALL")
        if set(caps.get("add", [])) - {"NET_BIND_SERVICE"}:
            problems.append(f"{cw}: capabilities.add {caps['add']}")
        if csc.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{cw}: readOnlyRootFilesystem")
        for p in c.get("ports", []):
            if p.get("hostPort"):
                problems.append(f"{cw}: hostPort")
    return problems


def test_pod_security_restricted(case):
    name, objs, _ = case
    problems = []
    for w in workloads(objs):
        spec = pod_template(w)["spec"]
        problems += _restricted_problems(spec, f"{w['kind']}/{w['metadata']['name']}")
        assert spec.get("automountServiceAccountToken") is False, (
            f"{name}: {w['metadata']['name']} mounts a token"
        )
    assert not problems, f"{name}:\n" + "\n".join(problems)


def test_restricted_check_catches_violations():
    bad = {
        "containers": [{"name": "x", "securityContext": {"allowPrivilegeEscalation": True}}],
        "volumes": [{"name": "h", "hostPath": {"path": "/"}}],
    }
    assert len(_restricted_problems(bad, "bad")) >= 5


def test_images_are_pinned(case):
    name, objs, values = case
    registry = values["global"]["imageRegistry"]
    for w in workloads(objs):
        for c in all_containers(pod_template(w)["spec"]):
            image = c["image"]
            ref = image.split("@")[0]
            last = ref.rsplit("/", 1)[-1]
            assert ":" in last, f"{name}: {image} has no tag"
            tag = last.split(":", 1)[1]
            assert tag and tag != "latest", f"{name}: {image} uses a floating tag"
            if registry:
                assert image.startswith(registry + "/"), (
                    f"{name}: {image} ignores global.imageRegistry"
                )
            assert c.get("imagePullPolicy") in ("IfNotPresent", "Always", "Never")


def test_registry_digest_and_pull_secrets(rendered):
    objs = rendered["registry-digest"]
    images = {}
    for w in workloads(objs):
        spec = pod_template(w)["spec"]
        assert spec["imagePullSecrets"] == [{"name": "regcred"}, {"name": "other"}]
        for c in spec["containers"]:
            images[c["name"]] = c["image"]
    assert images["backend"] == "mirror.example.com/pganalytics/api:3.3.0@sha256:" + "a" * 64
    assert (
        images["collector"] == "mirror.example.com/pganalytics/collector:3.3.0@sha256:" + "b" * 64
    )


def test_default_images(rendered):
    images = {}
    for w in workloads(rendered["enterprise"]):
        for c in all_containers(pod_template(w)["spec"]):
            images[c["name"]] = c["image"]
    assert images["backend"] == "docker.io/pganalytics/api:3.3.0"
    assert images["collector"] == "docker.io/pganalytics/collector:3.3.0"
    assert re.fullmatch(
        r"docker\.io/timescale/timescaledb:\d+\.\d+\.\d+-pg1[67]", images["timescaledb"]
    )
    assert re.fullmatch(r"docker\.io/library/redis:\d+\.\d+\.\d+(-alpine)?", images["redis"])
    assert re.fullmatch(r"docker\.io/grafana/grafana:\d+\.\d+\.\d+", images["grafana"])


def test_no_helm_hooks(case):
    name, objs, _ = case
    for o in objs:
        ann = o["metadata"].get("annotations") or {}
        assert not [k for k in ann if k.startswith("helm.sh/hook")], (
            f"{name}: {o['kind']}/{o['metadata']['name']}"
        )


def _secret_values(objs):
    vals = set()
    for s in by_kind(objs, "Secret"):
        for v in (s.get("data") or {}).values():
            vals.add(base64.b64decode(v).decode())
        vals.update((s.get("stringData") or {}).values())
    return {v for v in vals if len(v) >= 8}


@pytest.mark.parametrize("name", NAMES)
def test_no_credential_outside_secrets(rendered, name):
    objs = rendered[name]
    sentinels = _secret_values(objs)
    if name == "external-database":
        assert SENTINEL_EXT_PASSWORD in sentinels, "the external password is stored in a Secret"
        sentinels.add(SENTINEL_EXT_PASSWORD)
    for o in objs:
        if o["kind"] == "Secret":
            continue
        text = str(o)
        leaked = [s for s in sentinels if s in text]
        assert not leaked, f"{name}: {o['kind']}/{o['metadata']['name']} contains a credential"
        # encoded variants too
        leaked = [s for s in sentinels if base64.b64encode(s.encode()).decode() in text]
        assert not leaked, (
            f"{name}: {o['kind']}/{o['metadata']['name']} contains an encoded credential"
        )


def test_generated_secrets_shape(rendered):
    objs = rendered["default"]
    backend = find(objs, "Secret", f"{RELEASE}-pganalytics-backend")["data"]
    key = base64.b64decode(base64.b64decode(backend["encryption-key"]))
    assert len(key) == 32, "ENCRYPTION_KEY must be base64 of 32 bytes"
    for s in by_kind(objs, "Secret"):
        for k, v in s["data"].items():
            plain = base64.b64decode(v).decode()
            if k != "grafana-admin-user" and k != "encryption-key":
                assert re.fullmatch(r"[A-Za-z0-9]{32,}", plain), (
                    f"{s['metadata']['name']}/{k} is not a long random token"
                )


def test_persistence_uses_storage_class_values(rendered):
    for name in ("program-dev", "program-prod", "program-enterprise"):
        objs = rendered[name]
        claims = list(by_kind(objs, "PersistentVolumeClaim"))
        for sts in by_kind(objs, "StatefulSet"):
            claims += sts["spec"].get("volumeClaimTemplates", [])
        assert claims
        for c in claims:
            assert c["spec"]["storageClassName"] == "pganalytics-ssd", (name, c["metadata"]["name"])
    for c in by_kind(rendered["default"], "PersistentVolumeClaim"):
        assert "storageClassName" not in c["spec"], "empty storageClass means the cluster default"


def test_ingress_program_values(rendered):
    objs = rendered["program-prod"]
    ingresses = by_kind(objs, "Ingress")
    assert {i["metadata"]["name"] for i in ingresses} == {
        f"{RELEASE}-pganalytics-api",
        f"{RELEASE}-pganalytics-grafana",
    }
    for i in ingresses:
        assert i["spec"]["ingressClassName"] == "traefik"
        assert (
            i["metadata"]["annotations"]["cert-manager.io/cluster-issuer"]
            == "pganalytics-letsencrypt"
        )
        hosts = [r["host"] for r in i["spec"]["rules"]]
        assert hosts == [h for tls in i["spec"]["tls"] for h in tls["hosts"]]
        assert set(hosts) <= {
            "api.pga.example.org",
            "grafana.pga.example.org",
            "app.pga.example.org",
        }
        for rule in i["spec"]["rules"]:
            for p in rule["http"]["paths"]:
                svc = find(objs, "Service", p["backend"]["service"]["name"])
                assert p["backend"]["service"]["port"]["name"] in {
                    sp["name"] for sp in svc["spec"]["ports"]
                }


def test_every_configmap_is_consumed(case):
    name, objs, _ = case
    used = set()
    for w in workloads(objs):
        spec = pod_template(w)["spec"]
        for v in spec.get("volumes", []):
            if "configMap" in v:
                used.add(v["configMap"]["name"])
        for c in all_containers(spec):
            for src in c.get("envFrom", []):
                if "configMapRef" in src:
                    used.add(src["configMapRef"]["name"])
    for cm in by_kind(objs, "ConfigMap"):
        assert cm["metadata"]["name"] in used, (
            f"{name}: ConfigMap {cm['metadata']['name']} is unused"
        )
