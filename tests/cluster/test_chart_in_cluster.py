"""The bundled chart installed with the real helm into the local control plane (harness.py).

Two installs, each in its own namespace that enforces the "restricted" Pod Security Standard:
  program: values-dev.yaml + the values the Pulumi program sets (docs/CHART_INTERFACE.md):
           global.storageClass, the four existingSecret values -> one credentials Secret, ingress.
  plain:   values.yaml alone; the chart generates its own secrets; PVCs get the default class.
For each: install --wait, every release object exists, pods admitted under "restricted",
workloads ready (DaemonSets on every simulated node), PVCs Bound, an upgrade that changes the
backend replica count changes only that, and uninstall removes the release's objects.

The tests of one scenario run in file order against one install (module-scoped fixture).
"""

from __future__ import annotations

import base64
import copy
import json
import re
import secrets
import string
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from tests.conftest import credential_keys

from .harness import INGRESS_CLASS, NODES, ROOT, STORAGE_CLASS, Cluster

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(1800)]

CHART = ROOT / "charts" / "pganalytics"
RELEASE = "pga"
CREDENTIALS = f"{RELEASE}-credentials"
HELM_TIMEOUT = "240s"
# Keys of the credentials Secret the program creates (docs/CHART_INTERFACE.md).
CREDENTIAL_KEYS = credential_keys()
PROGRAM_VALUES = {
    "global": {"storageClass": STORAGE_CLASS},
    "backend": {
        "auth": {"existingSecret": CREDENTIALS},
        "config": {"apiBaseUrl": "http://api.pga.test", "frontendUrl": "http://api.pga.test"},
    },
    "timescaledb": {"auth": {"existingSecret": CREDENTIALS}},
    "redis": {"auth": {"existingSecret": CREDENTIALS}},
    "grafana": {"admin": {"existingSecret": CREDENTIALS}},
    "ingress": {
        "enabled": True,
        "className": INGRESS_CLASS,
        "tls": {"enabled": False},
        "api": {"host": "api.pga.test"},
        "grafana": {"host": "grafana.pga.test"},
    },
    "networkPolicy": {"ingressControllerNamespace": "traefik"},
}
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet")


@dataclass
class Release:
    cluster: Cluster
    scenario: str
    namespace: str
    value_args: list[str]
    install_output: str = ""
    manifest: str = ""
    docs: list[dict] = field(default_factory=list)
    uninstalled: bool = False

    install_error: str = ""
    install_seconds: float = 0.0

    def install(self) -> None:
        start = time.monotonic()
        proc = self.helm(
            "install",
            RELEASE,
            str(CHART),
            *self.value_args,
            "--wait",
            "--wait-for-jobs",
            "--timeout",
            HELM_TIMEOUT,
            check=False,
        )
        self.install_seconds = time.monotonic() - start
        self.install_output = proc.stdout + proc.stderr
        if proc.returncode != 0:
            events = [
                f"{e['involvedObject']['kind']}/{e['involvedObject']['name']}: "
                f"{e['reason']}: {e['message']}"
                for e in _events(self)
                if e.get("type") == "Warning"
            ]
            self.install_error = (
                f"helm install ({self.scenario}) failed after {self.install_seconds:.0f}s:\n"
                f"{self.install_output.strip()}\nWarning events:\n" + "\n".join(events[-30:])
            )
            return
        self.refresh_manifest()

    def require_installed(self) -> None:
        if self.install_error:
            pytest.fail(self.install_error, pytrace=False)
        assert self.manifest, "the release is not installed"

    def helm(self, *args: str, check: bool = True):
        return self.cluster.helm(*args, "--namespace", self.namespace, check=check)

    def refresh_manifest(self) -> None:
        self.manifest = self.helm("get", "manifest", RELEASE).stdout
        self.docs = [d for d in yaml.safe_load_all(self.manifest) if d]

    def live(self, manifest: str | None = None, ignore_not_found: bool = False) -> list[dict]:
        args = ["get", "-n", self.namespace, "-f", "-", "-o", "json"]
        if ignore_not_found:
            args.append("--ignore-not-found")
        out = self.cluster.kubectl(*args, input=manifest or self.manifest).stdout
        if not out.strip():
            return []
        data = json.loads(out)
        return data.get("items", [data]) if data.get("kind") == "List" else [data]

    def workloads(self) -> list[dict]:
        return [o for o in self.live() if o["kind"] in WORKLOAD_KINDS]


def _password(n: int = 32) -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(n))


def _credentials_secret(namespace: str) -> dict:
    data = {k: _password() for k in CREDENTIAL_KEYS}
    data["encryption-key"] = base64.b64encode(secrets.token_bytes(32)).decode()
    data["grafana-admin-user"] = "admin"
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": CREDENTIALS, "namespace": namespace},
        "stringData": data,
    }


def _namespace(name: str) -> dict:
    labels = {
        f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("enforce", "audit", "warn")
    }
    labels["pod-security.kubernetes.io/enforce-version"] = "latest"
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


@pytest.fixture(scope="module", params=["program", "plain"])
def release(request, cluster: Cluster):
    scenario = request.param
    namespace = f"pga-{scenario}"
    if not (CHART / "Chart.yaml").is_file():
        pytest.fail(f"the chart is missing: {CHART}/Chart.yaml", pytrace=False)
    cluster.apply(yaml.safe_dump(_namespace(namespace)))
    value_args: list[str] = []
    tmp = Path(tempfile.mkdtemp(prefix=f"pga-values-{scenario}-"))
    if scenario == "program":
        dev_values = CHART / "values-dev.yaml"
        if not dev_values.is_file():
            pytest.fail(f"{dev_values.relative_to(ROOT)} is missing", pytrace=False)
        program_values = tmp / "program-values.yaml"
        program_values.write_text(yaml.safe_dump(PROGRAM_VALUES))
        value_args = ["-f", str(dev_values), "-f", str(program_values)]
        cluster.apply(yaml.safe_dump(_credentials_secret(namespace)))
    rel = Release(cluster, scenario, namespace, value_args)
    # Installed here, not in a test: whichever test of the scenario runs first on this pytest
    # process (xdist may hand them out to several workers) gets an installed release.
    rel.install()
    yield rel
    if not rel.uninstalled:
        rel.helm("uninstall", RELEASE, "--wait", "--timeout", "120s", check=False)
    cluster.kubectl(
        "delete", "namespace", namespace, "--wait=false", "--ignore-not-found", check=False
    )
    for f in tmp.iterdir():
        f.unlink()
    tmp.rmdir()


def _events(rel: Release) -> list[dict]:
    return rel.cluster.kubectl_json("get", "events", "-n", rel.namespace)["items"]


def _wait_for(what: str, check, timeout: float = 90, interval: float = 1.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        ok, last = check()
        if ok:
            return last
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}: {last}", pytrace=False)


def _backend_workload(docs: list[dict]) -> dict:
    cands = [
        d
        for d in docs
        if d["kind"] in ("Deployment", "StatefulSet")
        and (
            d["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "backend"
            or d["metadata"]["name"].endswith("-backend")
            or d["metadata"]["name"].endswith("-api")
        )
    ]
    assert len(cands) == 1, (
        "expected one backend Deployment/StatefulSet in the release, found "
        f"{[d['metadata']['name'] for d in cands]}"
    )
    return cands[0]


def _key(doc: dict) -> tuple[str, str]:
    return doc["kind"], doc["metadata"]["name"]


# ------------------------------------------------------------------------------------------


def test_install_succeeds(release: Release):
    release.require_installed()
    status = json.loads(release.helm("status", RELEASE, "-o", "json").stdout)
    assert status["info"]["status"] == "deployed"
    assert release.docs, "the release rendered no objects"
    print(f"helm install ({release.scenario}) took {release.install_seconds:.1f}s")


def test_every_release_object_exists(release: Release):
    release.require_installed()
    want = sorted(_key(d) for d in release.docs)
    live = sorted(_key(o) for o in release.live())
    assert live == want
    for obj in release.live():
        if obj["kind"] != "Namespace" and obj["metadata"].get("namespace"):
            assert obj["metadata"]["namespace"] == release.namespace, (
                f"{_key(obj)} is in {obj['metadata']['namespace']}"
            )


def test_pods_admitted_under_restricted(release: Release):
    release.require_installed()
    ns = release.cluster.kubectl_json("get", "namespace", release.namespace)
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    warnings = [
        line
        for line in release.install_output.splitlines()
        if "PodSecurity" in line or "would violate" in line
    ]
    assert not warnings, (
        "Pod Security admission warned about the release's pod templates:\n" + "\n".join(warnings)
    )
    rejected = [
        f"{e['involvedObject']['kind']}/{e['involvedObject']['name']}: {e['message']}"
        for e in _events(release)
        if e.get("reason") == "FailedCreate"
        or "PodSecurity" in e.get("message", "")
        or "forbidden" in e.get("message", "")
    ]
    assert not rejected, "pods were rejected at admission:\n" + "\n".join(rejected)
    pods = release.cluster.kubectl_json("get", "pods", "-n", release.namespace)["items"]
    workloads = release.workloads()
    assert pods or not workloads, "the release has workloads but no pod was admitted"


def test_workloads_ready(release: Release):
    release.require_installed()
    node_names = {name for name, _ in NODES}
    problems = []
    for w in release.workloads():
        kind, name, st, spec = w["kind"], w["metadata"]["name"], w.get("status", {}), w["spec"]
        if st.get("observedGeneration") != w["metadata"]["generation"]:
            problems.append(f"{kind}/{name}: status not observed yet ({st})")
        if kind in ("Deployment", "StatefulSet"):
            want = spec.get("replicas", 1)
            if st.get("readyReplicas", 0) != want or st.get("replicas", 0) != want:
                problems.append(f"{kind}/{name}: {st.get('readyReplicas', 0)}/{want} ready")
        else:
            desired, ready = st.get("desiredNumberScheduled", 0), st.get("numberReady", 0)
            if desired != len(node_names) or ready != desired:
                problems.append(
                    f"{kind}/{name}: {ready} ready of {desired} desired; "
                    f"want one on each of {len(node_names)} nodes"
                )
            selector = ",".join(f"{k}={v}" for k, v in spec["selector"]["matchLabels"].items())
            pods = release.cluster.kubectl_json(
                "get", "pods", "-n", release.namespace, "-l", selector
            )["items"]
            on = {p["spec"].get("nodeName") for p in pods}
            if on != node_names:
                problems.append(
                    f"{kind}/{name}: pods on {sorted(n for n in on if n)}, "
                    f"want {sorted(node_names)}"
                )
    assert not problems, "\n".join(problems)
    assert release.workloads(), "the release has no Deployment, StatefulSet or DaemonSet"


def test_pvcs_bound(release: Release):
    release.require_installed()
    pvcs = release.cluster.kubectl_json("get", "pvc", "-n", release.namespace)["items"]
    sts_claims = [
        t
        for w in release.workloads()
        if w["kind"] == "StatefulSet"
        for t in w["spec"].get("volumeClaimTemplates", [])
    ]
    release_claims = [d for d in release.docs if d["kind"] == "PersistentVolumeClaim"]
    assert pvcs or not (sts_claims or release_claims), "the release declares claims but none exists"
    unbound = [
        f"{p['metadata']['name']}: {p['status'].get('phase')} "
        f"(class {p['spec'].get('storageClassName')!r})"
        for p in pvcs
        if p["status"].get("phase") != "Bound"
    ]
    assert not unbound, "PVCs not Bound:\n" + "\n".join(unbound)
    assert all(p["spec"].get("storageClassName") == STORAGE_CLASS for p in pvcs), [
        (p["metadata"]["name"], p["spec"].get("storageClassName")) for p in pvcs
    ]
    assert not release.cluster.provisioner_errors, release.cluster.provisioner_errors


def test_pod_references_resolve(release: Release):
    """What a kubelet would refuse and KWOK does not check: every Secret, ConfigMap, key, PVC
    and ServiceAccount a pod names exists (unless marked optional), and every $(VAR) in an env
    value refers to a variable defined earlier in the same container (else it stays literal)."""
    release.require_installed()
    ns, k = release.namespace, release.cluster
    secrets_ = {
        x["metadata"]["name"]: set((x.get("data") or {}).keys())
        for x in k.kubectl_json("get", "secrets", "-n", ns)["items"]
    }
    cms = {
        x["metadata"]["name"]: set((x.get("data") or {}).keys())
        | set((x.get("binaryData") or {}).keys())
        for x in k.kubectl_json("get", "configmaps", "-n", ns)["items"]
    }
    pvcs = {x["metadata"]["name"] for x in k.kubectl_json("get", "pvc", "-n", ns)["items"]}
    sas = {
        x["metadata"]["name"] for x in k.kubectl_json("get", "serviceaccounts", "-n", ns)["items"]
    }
    pods = k.kubectl_json("get", "pods", "-n", ns)["items"]
    assert pods, "no pods"
    problems = []

    def need(kind, store, name, key=None, optional=False, where=""):
        if optional:
            return
        if name not in store:
            problems.append(f"{where}: {kind} {name!r} does not exist")
        elif key is not None and key not in store[name]:
            problems.append(
                f"{where}: {kind} {name!r} has no key {key!r} (keys: {sorted(store[name])})"
            )

    # Where a pod names a Secret or ConfigMap: {ref_field: (kind, objects)}.
    stores = {
        "secret": ("Secret", secrets_),
        "secretRef": ("Secret", secrets_),
        "secretKeyRef": ("Secret", secrets_),
        "configMap": ("ConfigMap", cms),
        "configMapRef": ("ConfigMap", cms),
        "configMapKeyRef": ("ConfigMap", cms),
    }

    def need_ref(ref_field: str, ref: dict, where: str) -> set[str]:
        """Checks one reference (with its `items` or `key`); returns the keys it provides."""
        kind, store = stores[ref_field]
        name = ref.get("secretName") or ref["name"]
        optional = ref.get("optional", False)
        need(kind, store, name, ref.get("key"), optional, where)
        for item in ref.get("items", []):
            need(kind, store, name, item["key"], optional, where)
        return set(store.get(name, ()))

    for pod in pods:
        pname, spec = pod["metadata"]["name"], pod["spec"]
        if spec.get("serviceAccountName", "default") not in sas:
            problems.append(
                f"{pname}: ServiceAccount {spec['serviceAccountName']!r} does not exist"
            )
        for v in spec.get("volumes", []):
            where = f"{pname} volume {v['name']}"
            for source in [v, *v.get("projected", {}).get("sources", [])]:
                for ref_field in [f for f in ("secret", "configMap") if f in source]:
                    need_ref(ref_field, source[ref_field], where)
            if "persistentVolumeClaim" in v:
                claim = v["persistentVolumeClaim"]["claimName"]
                need("PVC", {n: set() for n in pvcs}, claim, where=where)
        for c in spec.get("initContainers", []) + spec.get("containers", []):
            where = f"{pname}/{c['name']}"
            defined: set[str] = set()
            for ef in c.get("envFrom", []):
                for ref_field in [f for f in ("secretRef", "configMapRef") if f in ef]:
                    keys = need_ref(ref_field, ef[ref_field], where)
                    defined |= {ef.get("prefix", "") + key for key in keys}
            for e in c.get("env", []):
                vf = e.get("valueFrom", {})
                for ref_field in [f for f in ("secretKeyRef", "configMapKeyRef") if f in vf]:
                    need_ref(ref_field, vf[ref_field], f"{where} env {e['name']}")
                for ref in re.findall(r"(?<!\$)\$\(([A-Za-z_][A-Za-z0-9_]*)\)", e.get("value", "")):
                    if ref not in defined:
                        problems.append(
                            f"{where} env {e['name']}: $({ref}) is not defined before it, "
                            "so it stays literal"
                        )
                defined.add(e["name"])
    assert not problems, "\n".join(problems)


def test_selectors_match_pods(release: Release):
    """Every Service selects ready pods (EndpointSlices have ready endpoints), every PDB covers
    pods, and every Ingress backend names an existing Service port."""
    release.require_installed()
    ns, k = release.namespace, release.cluster
    live = release.live()
    services = {o["metadata"]["name"]: o for o in live if o["kind"] == "Service"}
    problems = []
    for name, svc in services.items():
        if not svc["spec"].get("selector"):
            continue

        def ready_endpoints(name=name):
            slices = k.kubectl_json(
                "get", "endpointslices", "-n", ns, "-l", f"kubernetes.io/service-name={name}"
            )["items"]
            ready = [
                e
                for s in slices
                for e in s.get("endpoints") or []
                if e.get("conditions", {}).get("ready")
            ]
            return bool(ready), slices

        deadline = time.monotonic() + 30
        while not ready_endpoints()[0] and time.monotonic() < deadline:
            time.sleep(1)
        if not ready_endpoints()[0]:
            problems.append(
                f"Service {name}: selector {svc['spec']['selector']} matches no ready pod"
            )
    for pdb in (o for o in live if o["kind"] == "PodDisruptionBudget"):
        sel = ",".join(
            f"{a}={b}" for a, b in pdb["spec"]["selector"].get("matchLabels", {}).items()
        )
        if not k.kubectl_json("get", "pods", "-n", ns, "-l", sel)["items"]:
            problems.append(f"PodDisruptionBudget {pdb['metadata']['name']}: selects no pod")
    for ing in (o for o in live if o["kind"] == "Ingress"):
        backends = [
            p["backend"]
            for r in ing["spec"].get("rules", [])
            for p in r.get("http", {}).get("paths", [])
        ]
        if ing["spec"].get("defaultBackend"):
            backends.append(ing["spec"]["defaultBackend"])
        for b in backends:
            svc = services.get(b.get("service", {}).get("name"))
            port = b.get("service", {}).get("port", {})
            if svc is None:
                problems.append(
                    f"Ingress {ing['metadata']['name']}: backend Service {b} is not in the release"
                )
                continue
            ports = svc["spec"]["ports"]
            if not any(
                port.get("number") == p["port"]
                or (port.get("name") and port.get("name") == p.get("name"))
                for p in ports
            ):
                problems.append(
                    f"Ingress {ing['metadata']['name']}: Service {svc['metadata']['name']} "
                    f"has no port {port}"
                )
        if release.scenario == "program":
            assert ing["spec"].get("ingressClassName") == INGRESS_CLASS, ing["spec"]
    if release.scenario == "program":
        assert any(o["kind"] == "Ingress" for o in live), "ingress.enabled=true rendered no Ingress"
    assert not problems, "\n".join(problems)


def test_credentials_source(release: Release):
    """program: with the four existingSecret values set, pods read credentials only from the
    program's Secret and the chart renders no credentials Secret of its own.
    plain: the chart generates its Secrets, and the pods read them."""
    release.require_installed()
    refs = set()
    for pod in release.cluster.kubectl_json("get", "pods", "-n", release.namespace)["items"]:
        for c in pod["spec"].get("initContainers", []) + pod["spec"]["containers"]:
            for e in c.get("env", []):
                r = e.get("valueFrom", {}).get("secretKeyRef")
                if r:
                    refs.add((r["name"], r["key"]))
    rendered = {d["metadata"]["name"] for d in release.docs if d["kind"] == "Secret"}
    if release.scenario == "program":
        used_keys = {key for name, key in refs if name == CREDENTIALS}
        assert used_keys, (
            f"no pod reads the credentials Secret {CREDENTIALS}; secret refs: {sorted(refs)}"
        )
        other = sorted({name for name, _ in refs if name in rendered})
        assert not other, (
            f"pods also read chart-rendered Secrets {other} although existingSecret is set"
        )
    else:
        assert rendered, "values.yaml alone rendered no Secret: where do the passwords come from?"
        assert refs and {name for name, _ in refs} <= rendered, (
            f"pods read Secrets the release does not render: {sorted(refs)}; "
            f"rendered: {sorted(rendered)}"
        )
        for d in release.docs:
            if d["kind"] == "Secret":
                values = {**(d.get("data") or {}), **(d.get("stringData") or {})}
                assert all(values.values()), (
                    f"Secret {d['metadata']['name']} has an empty value: "
                    f"{sorted(k for k, v in values.items() if not v)}"
                )


def test_upgrade_changes_only_backend_replicas(release: Release):
    release.require_installed()
    before_docs = copy.deepcopy(release.docs)
    backend = _backend_workload(before_docs)
    assert "replicas" in backend["spec"], f"{_key(backend)} sets no spec.replicas (autoscaling on?)"
    old, new = backend["spec"]["replicas"], backend["spec"]["replicas"] + 1
    live_before = {_key(o): o for o in release.live() if o["kind"] in WORKLOAD_KINDS}
    proc = release.helm(
        "upgrade",
        RELEASE,
        str(CHART),
        *release.value_args,
        "--set",
        f"backend.replicaCount={new}",
        "--wait",
        "--wait-for-jobs",
        "--timeout",
        HELM_TIMEOUT,
        check=False,
    )
    assert proc.returncode == 0, f"helm upgrade failed:\n{proc.stdout}\n{proc.stderr}"
    release.refresh_manifest()
    after = {_key(d): d for d in release.docs}
    before = {_key(d): d for d in before_docs}
    assert sorted(after) == sorted(before), "the upgrade added or removed objects"
    changed = []
    for key, doc in before.items():
        a, b = copy.deepcopy(doc), copy.deepcopy(after[key])
        if key == _key(backend):
            assert b["spec"]["replicas"] == new
            a["spec"].pop("replicas"), b["spec"].pop("replicas")
        if a != b:
            changed.append(f"{key}: {_diff(a, b)}")
    assert not changed, "the upgrade changed more than the backend replica count:\n" + "\n".join(
        changed
    )

    def backend_ready():
        w = next(o for o in release.live() if _key(o) == _key(backend))
        st = w.get("status", {})
        return st.get("readyReplicas") == new and st.get("observedGeneration") == w["metadata"][
            "generation"
        ], st

    _wait_for(f"{_key(backend)} to have {new} ready replicas", backend_ready)
    live_after = {_key(o): o for o in release.live() if o["kind"] in WORKLOAD_KINDS}
    for key, w in live_after.items():
        if w["kind"] == "StatefulSet":
            assert w["status"].get("updateRevision") == live_before[key]["status"].get(
                "updateRevision"
            ), f"{key}: pod template changed by the upgrade (a rollout), not only the replica count"
        tmpl_before = live_before[key]["spec"]["template"]
        assert w["spec"]["template"] == tmpl_before, f"{key}: pod template changed by the upgrade"
    assert old != new


def _diff(a, b, path="") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if a.get(k) != b.get(k):
                return _diff(a.get(k), b.get(k), f"{path}.{k}")
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if x != y:
                return _diff(x, y, f"{path}[{i}]")
    return f"{path or '.'}: {str(a)[:200]!r} -> {str(b)[:200]!r}"


def test_uninstall_removes_everything(release: Release):
    release.require_installed()
    sts = [d for d in release.docs if d["kind"] == "StatefulSet"]
    proc = release.helm("uninstall", RELEASE, "--wait", "--timeout", "120s", check=False)
    release.uninstalled = proc.returncode == 0
    assert proc.returncode == 0, f"helm uninstall failed:\n{proc.stdout}\n{proc.stderr}"
    kept_by_policy = {
        _key(d)
        for d in release.docs
        if d["metadata"].get("annotations", {}).get("helm.sh/resource-policy") == "keep"
    }
    left = [_key(o) for o in release.live(ignore_not_found=True)]
    assert set(left) <= kept_by_policy, (
        f"objects left after uninstall: {sorted(set(left) - kept_by_policy)}"
    )
    assert not release.helm("list", "-q").stdout.strip(), "helm still lists a release"

    def no_pods():
        pods = release.cluster.kubectl_json("get", "pods", "-n", release.namespace)["items"]
        return not pods, [p["metadata"]["name"] for p in pods]

    _wait_for("the release's pods to go away", no_pods, timeout=60)
    # PVCs made from StatefulSet volumeClaimTemplates outlive the StatefulSet unless its
    # persistentVolumeClaimRetentionPolicy says whenDeleted: Delete (Kubernetes behaviour).
    retained_ok = set()
    for s in sts:
        policy = (
            s["spec"].get("persistentVolumeClaimRetentionPolicy", {}).get("whenDeleted", "Retain")
        )
        if policy == "Retain":
            for t in s["spec"].get("volumeClaimTemplates", []):
                for i in range(s["spec"].get("replicas", 1) + 1):
                    retained_ok.add(f"{t['metadata']['name']}-{s['metadata']['name']}-{i}")

    def pvcs_settled():
        pvcs = {
            p["metadata"]["name"]
            for p in release.cluster.kubectl_json("get", "pvc", "-n", release.namespace)["items"]
        }
        return pvcs <= retained_ok, sorted(pvcs - retained_ok)

    _wait_for("PVCs other than retained StatefulSet claims to be deleted", pvcs_settled, timeout=60)
