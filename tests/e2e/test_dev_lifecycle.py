"""A dev stack's life on the harness, through the real engine, in order: first deploy (a),
no-change preview (b), a values change (c), the PR preview script (e), a credential rotation,
volume growth and the refused shrink / StorageClass change (g), a refused literal credential and
a secret chart value (h), destroy (d).

The tests share one stack (module fixture) and run in file order; a step whose predecessor
failed fails too, naming it, instead of testing a half-made stack.
"""

from __future__ import annotations

import json
import secrets

import pytest

from tests.cluster.harness import STORAGE_CLASS
from tests.conftest import credential_keys

from .checks import (
    WORKLOAD_KINDS,
    namespace_gone,
    objects_in_cluster,
    secret_data,
    uid,
    wait_for,
    workload_not_ready,
)
from .conftest import stack_config

NAMESPACE = "pga-e2e-dev"
SECRET = "pganalytics-credentials"
BACKEND = "pganalytics-backend"
OUTPUTS = {
    "target",
    "clusterName",
    "kubeconfig",
    "namespace",
    "apiUrl",
    "grafanaUrl",
    "ingressAddress",
}
SECRET_SIG = "4dabf18193072939515e22adb298388d"  # Pulumi's marker of a secret value in state


class Lifecycle:
    def __init__(self, project, cluster):
        self.project = project
        self.cluster = cluster
        self.deployed = False
        self.before_change: dict = {}


@pytest.fixture(scope="module")
def life(new_project, cluster):
    project = new_project("dev")
    project.init(
        stack_config("Pulumi.dev.yaml", chart={"namespace": NAMESPACE}),
        {"pganalytics:kubeconfig": cluster.inline_kubeconfig()},
    )
    lc = Lifecycle(project, cluster)
    yield lc
    # Whatever happened, leave the shared control plane clean for the next module.
    project.destroy(check=False)


@pytest.fixture
def step(life):
    """The deployed stack; fails at once (naming the cause) when the first `up` failed."""
    if not life.deployed:
        pytest.fail(
            "the first `pulumi up` (test_a_first_up_succeeds) did not succeed", pytrace=False
        )
    return life


# ----- a. first deploy -----------------------------------------------------------------------


def test_a_first_up_succeeds(life):
    result = life.project.up()  # raises with the engine's output when `up` fails
    assert "created" in result.stdout, result.describe()
    life.deployed = True


def test_a_every_workload_the_chart_renders_is_ready(step):
    rendered = {
        (kind, name)
        for (kind, ns, name) in step.project.k8s_objects()
        if kind in WORKLOAD_KINDS and ns == NAMESPACE
    }
    assert {k for k, _ in rendered} >= {"StatefulSet", "Deployment"}, rendered
    for kind, name in sorted(rendered):
        obj = step.cluster.kubectl_json("get", kind, "-n", NAMESPACE, name)
        assert workload_not_ready(obj) is None, workload_not_ready(obj)


def test_a_namespace_enforces_restricted(step):
    ns = step.cluster.kubectl_json("get", "namespace", NAMESPACE)
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    # Enforced, not only labelled: the API server refuses a pod that breaks "restricted".
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "not-restricted", "namespace": NAMESPACE},
        "spec": {"containers": [{"name": "c", "image": "registry.invalid/x@sha256:" + "0" * 64}]},
    }
    proc = step.cluster.kubectl(
        "create", "--dry-run=server", "-f", "-", input=json.dumps(pod), check=False
    )
    assert proc.returncode != 0 and 'violates PodSecurity "restricted' in proc.stderr, proc.stderr


def test_a_credentials_secret_holds_every_contract_key(step):
    data = secret_data(step.cluster, NAMESPACE, SECRET)
    assert set(data) >= credential_keys(), sorted(credential_keys() - set(data))
    assert all(data[k] for k in credential_keys()), "an empty credential"


def test_a_outputs_present_and_kubeconfig_secret(step):
    shown = step.project.outputs()
    assert set(shown) >= OUTPUTS, sorted(OUTPUTS - set(shown))
    assert shown["kubeconfig"] == "[secret]"
    assert shown["target"] == "existing" and shown["namespace"] == NAMESPACE
    assert shown["apiUrl"].startswith("http://") and shown["grafanaUrl"].startswith("http://")
    revealed = step.project.outputs(show_secrets=True)
    assert "certificate-authority-data" in revealed["kubeconfig"]
    # Encrypted in the state file, not only masked on display.
    stored = step.project.export()["deployment"]["resources"]
    stack = next(r for r in stored if r["type"] == "pulumi:pulumi:Stack")
    assert stack["outputs"]["kubeconfig"].get(SECRET_SIG) == "1b47061264138c4ac30d75fd1eb44270"
    state_text = (step.project.state).joinpath(".pulumi").rglob("*.json")
    kc = step.cluster.inline_kubeconfig().split("client-key-data: ")[1].split()[0]
    assert not any(kc in p.read_text() for p in state_text), "client key in plaintext in state"


def test_a_state_has_no_sidecar_files_a_killed_run_could_leave_empty(step):
    """The backend URL's metadata=skip (as scripts/pulumi.sh sets it): the file backend writes
    no `.attrs` sidecars, whose in-place rewrite a SIGKILL can leave empty (docs/RECOVERY.md)."""
    stacks = step.project.state / ".pulumi" / "stacks"
    assert list(stacks.rglob("*.json")), "no checkpoint found"
    assert not list(stacks.rglob("*.attrs"))


# ----- b. no-change preview ------------------------------------------------------------------


def test_b_no_change_preview_is_clean(step):
    result = step.project.preview("--expect-no-changes", "--diff", check=False)
    assert result.returncode == 0, result.describe()


# ----- c. a values change ------------------------------------------------------------------


def _changes(preview_json: dict) -> list[tuple[str, str, str]]:
    """(op, type, name) of every changed object; components (the Chart) only echo them."""
    out = []
    for s in preview_json.get("steps", []):
        state = s.get("newState") or s.get("oldState") or {}
        if s["op"] == "same" or state.get("custom") is False:
            continue
        urn = s["urn"]
        type_, name = urn.split("::")[-2].split("$")[-1], urn.split("::")[-1]
        out.append((s["op"], type_, name))
    return out


def test_c_values_change_previews_as_one_update(step):
    step.before_change = {
        "secret_uid": uid(step.cluster, "secret", NAMESPACE, SECRET),
        "secret": secret_data(step.cluster, NAMESPACE, SECRET),
        "pvcs": {name: u for name, u in _pvcs(step.cluster).items() if "timescaledb" in name},
    }
    assert step.before_change["pvcs"], "the database has no PVC"
    step.project.set_config("pganalytics:chart.values.backend.replicaCount", "2")
    result = step.project.preview("--diff", "--json")
    changes = _changes(json.loads(result.stdout))
    # v4 Chart children are named <resource prefix>:<namespace>/<object name>.
    assert changes == [
        ("update", "kubernetes:apps/v1:StatefulSet", f"pganalytics:{NAMESPACE}/{BACKEND}")
    ], changes


def test_e_pr_preview_script_prints_the_property_level_diff(step):
    proc, comment = step.project.preview_script("--policy-pack", "policy")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = proc.stdout
    assert report.startswith("### "), report
    assert f"`{step.project.stack}`" in report.splitlines()[0]
    assert "1 to update" in report
    sts = f"pganalytics:{NAMESPACE}/{BACKEND}"
    assert f"| update | `kubernetes:apps/v1:StatefulSet` | `{sts}` |" in report
    # The property, its old and its new value.
    assert f"#### ~ update `kubernetes:apps/v1:StatefulSet` `{sts}`" in report
    assert "| `spec.replicas` | update | `1` | `2` |" in report, report
    assert comment == report  # short enough to be posted whole


def test_e_pr_preview_script_fails_with_the_engines_message(step):
    step.project.set_config("pganalytics:nodePool.minSize", "0")
    try:
        proc, comment = step.project.preview_script()
    finally:
        step.project.rm_config("pganalytics:nodePool.minSize")
    assert proc.returncode != 0, proc.stdout
    assert "**The preview failed.** The engine said:" in proc.stdout, proc.stdout
    assert "nodePool.minSize" in proc.stdout and "nodePool.minSize" in comment
    assert "see the log" not in proc.stdout


def test_c_values_change_up_keeps_credentials_and_volumes(step):
    step.project.up()
    assert step.before_change, "test_c_values_change_previews_as_one_update did not run"
    assert uid(step.cluster, "secret", NAMESPACE, SECRET) == step.before_change["secret_uid"]
    assert secret_data(step.cluster, NAMESPACE, SECRET) == step.before_change["secret"]
    pvcs = {n: u for n, u in _pvcs(step.cluster).items() if "timescaledb" in n}
    assert pvcs == step.before_change["pvcs"]
    sts = step.cluster.kubectl_json("get", "statefulset", "-n", NAMESPACE, BACKEND)
    assert sts["spec"]["replicas"] == 2
    wait_for(
        "the second backend replica",
        lambda: (
            workload_not_ready(
                step.cluster.kubectl_json("get", "statefulset", "-n", NAMESPACE, BACKEND)
            )
            is None
        ),
    )
    again = step.project.preview("--expect-no-changes", check=False)
    assert again.returncode == 0, again.describe()


def _pvcs(cluster) -> dict[str, str]:
    items = cluster.kubectl_json("get", "pvc", "-n", NAMESPACE)["items"]
    return {i["metadata"]["name"]: i["metadata"]["uid"] for i in items}


# ----- credential rotation (docs/OPERATIONS.md) -------------------------------------------------


def _jobs(cluster) -> set[str]:
    return {
        j["metadata"]["name"] for j in cluster.kubectl_json("get", "jobs", "-n", NAMESPACE)["items"]
    }


def test_rotation_changes_one_credential_in_place_and_reruns_the_bootstrap(step):
    secret_uid = uid(step.cluster, "secret", NAMESPACE, SECRET)
    before = secret_data(step.cluster, NAMESPACE, SECRET)
    pvcs = {n: u for n, u in _pvcs(step.cluster).items() if "timescaledb" in n}
    jobs = _jobs(step.cluster)
    step.project.set_config("pganalytics:credentials.rotation.database-password", "1")
    step.project.up()
    after = secret_data(step.cluster, NAMESPACE, SECRET)
    # The Secret is updated in place: same object, only the rotated key differs.
    assert uid(step.cluster, "secret", NAMESPACE, SECRET) == secret_uid
    assert after["database-password"] and after["database-password"] != before["database-password"]
    assert {k: v for k, v in after.items() if k != "database-password"} == {
        k: v for k, v in before.items() if k != "database-password"
    }
    # The data stays: the database's claims are the same objects.
    assert {n: u for n, u in _pvcs(step.cluster).items() if "timescaledb" in n} == pvcs
    # A new bootstrap Job (it re-applies the role passwords in PostgreSQL) ran to completion.
    new_jobs = _jobs(step.cluster) - jobs
    assert any("bootstrap" in j for j in new_jobs), (jobs, new_jobs)
    for name in new_jobs:
        obj = step.cluster.kubectl_json("get", "job", "-n", NAMESPACE, name)
        assert workload_not_ready(obj) is None, workload_not_ready(obj)
    # Never in plaintext in the state, and the next preview is clean.
    assert after["database-password"] not in json.dumps(step.project.export())
    again = step.project.preview("--expect-no-changes", check=False)
    assert again.returncode == 0, again.describe()


# ----- g. volume growth and what is refused (docs/OPERATIONS.md#volumes) -----------------------

DATABASE = "pganalytics-timescaledb"
DATABASE_CLAIM = f"data-{DATABASE}-0"
GRAFANA_CLAIM = "pganalytics-grafana"
SIZE_KEY = "pganalytics:chart.values.timescaledb.persistence.size"


def _get(cluster, kind: str, name: str) -> dict:
    return cluster.kubectl_json("get", kind, "-n", NAMESPACE, name)


def _requested(claim: dict) -> str:
    return claim["spec"]["resources"]["requests"]["storage"]


def test_g_pr_preview_script_shows_why_the_database_statefulset_is_replaced(step):
    step.project.set_config(SIZE_KEY, "3Gi")
    proc, comment = step.project.preview_script(comment_limit=1200)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = proc.stdout
    sts = f"pganalytics:{NAMESPACE}/{DATABASE}"
    path = "spec.volumeClaimTemplates[0].spec.resources.requests.storage"
    assert f"#### +- replace `kubernetes:apps/v1:StatefulSet` `{sts}`" in report, report
    assert f"Replaced because of `{path}`; deleted first, then created" in report, report
    assert f'| `{path}` | update-replace | `"2Gi"` | `"3Gi"` |' in report, report
    # The comment, cut to 1200 characters, keeps the table and says what it left out.
    assert len(comment) <= 1200 < len(report), comment
    assert f"| replace | `kubernetes:apps/v1:StatefulSet` | `{sts}` |" in comment
    assert "more resources" in comment and "preview-dev` artifact" in comment, comment


def test_g_volume_growth_resizes_the_claims_in_place_and_keeps_the_database_pod(step):
    c = step.cluster
    claims = {n: _get(c, "pvc", n) for n in (DATABASE_CLAIM, GRAFANA_CLAIM)}
    assert all(cl["status"]["phase"] == "Bound" for cl in claims.values()), claims
    # The harness's default class allows expansion; the API refuses a resize otherwise.
    sts_uid = uid(c, "statefulset", NAMESPACE, DATABASE)
    pod_uid = uid(c, "pod", NAMESPACE, f"{DATABASE}-0")
    step.project.set_config(SIZE_KEY, "3Gi")
    step.project.set_config("pganalytics:chart.values.grafana.persistence.size", "1Gi")
    planned = _changes(json.loads(step.project.preview("--json").stdout))
    assert sorted(planned) == [
        ("create", "kubernetes:core/v1:PersistentVolumeClaimPatch", f"grow-{DATABASE_CLAIM}"),
        ("replace", "kubernetes:apps/v1:StatefulSet", f"pganalytics:{NAMESPACE}/{DATABASE}"),
        (
            "update",
            "kubernetes:core/v1:PersistentVolumeClaim",
            f"pganalytics:{NAMESPACE}/{GRAFANA_CLAIM}",
        ),
    ], planned
    step.project.up()
    for name, size in ((DATABASE_CLAIM, "3Gi"), (GRAFANA_CLAIM, "1Gi")):
        now = _get(c, "pvc", name)
        # The same claim, bound to the same volume, with the raised request.
        assert now["metadata"]["uid"] == claims[name]["metadata"]["uid"], name
        assert now["spec"]["volumeName"] == claims[name]["spec"]["volumeName"], name
        assert now["status"]["phase"] == "Bound" and _requested(now) == size, now
    # The StatefulSet was recreated (orphan deletion) with the new claim template, and adopted
    # the running pod instead of restarting it.
    sts = _get(c, "statefulset", DATABASE)
    assert sts["metadata"]["uid"] != sts_uid
    assert _requested(sts["spec"]["volumeClaimTemplates"][0]) == "3Gi"
    new_owner = [sts["metadata"]["uid"]]
    pod = wait_for(
        "the new StatefulSet to adopt the database pod",
        lambda: _owned_by(_get(c, "pod", f"{DATABASE}-0"), new_owner),
    )
    assert pod["metadata"]["uid"] == pod_uid, "the database pod was restarted"
    assert workload_not_ready(_get(c, "statefulset", DATABASE)) is None
    recorded = step.project.outputs()["volumes"]
    assert recorded["timescaledb"]["size"] == "3Gi" and recorded["grafana"]["size"] == "1Gi"
    again = step.project.preview("--expect-no-changes", "--diff", check=False)
    assert again.returncode == 0, again.describe()


def _owned_by(obj: dict, owners: list[str]) -> dict | None:
    """`obj` when its owners are exactly these UIDs, else None."""
    found = [o["uid"] for o in obj["metadata"].get("ownerReferences", [])]
    return obj if found == owners else None


def _snapshot(step) -> tuple:
    """What a refused update must leave as it was: every resource in the state, and every
    object of the namespace (UID, generation, the claims' requests)."""
    state = sorted(json.dumps(r, sort_keys=True) for r in step.project.resources())
    kinds = {k for (k, ns, _) in step.project.k8s_objects() if ns == NAMESPACE}
    kinds |= {"Pod", "PersistentVolumeClaim"}
    listing = step.cluster.kubectl_json("get", ",".join(sorted(kinds)), "-n", NAMESPACE)
    objects = {
        (i["kind"], i["metadata"]["name"]): (
            i["metadata"]["uid"],
            i["metadata"].get("generation"),
            (i.get("spec") or {}).get("resources")
            if i["kind"] == "PersistentVolumeClaim"
            else None,
        )
        for i in listing["items"]
    }
    return state, objects


def _refused(step, config: dict[str, str], undo, commands=("up",)) -> list[str]:
    """Sets `config` (--path keys), runs each pulumi command (`up`, `preview`), then `undo()`.
    Each must fail and leave the state and the namespace as they were; returns their output."""
    before = _snapshot(step)
    for key, value in config.items():
        step.project.set_config(key, value)
    try:
        results = [getattr(step.project, command)(check=False) for command in commands]
    finally:
        undo()
    for result in results:
        assert result.returncode != 0, result.describe()
    assert _snapshot(step) == before
    return [result.output for result in results]


def test_g_shrink_and_storage_class_change_are_refused_before_any_change(step):
    shrink = _refused(
        step,
        {SIZE_KEY: "2Gi"},
        lambda: step.project.set_config(SIZE_KEY, "3Gi"),
        ("preview", "up"),
    )
    for out in shrink:
        assert f"{SIZE_KEY} is 2Gi but the live timescaledb volume is 3Gi" in out, out
        assert f'pulumi config set --path {SIZE_KEY} "3Gi"' in out, out
        assert "docs/OPERATIONS.md#volumes" in out, out
    class_key = "pganalytics:storage.className"
    [out] = _refused(step, {class_key: STORAGE_CLASS}, lambda: step.project.rm_config(class_key))
    assert f"{class_key} changes the StorageClass of the live timescaledb volume" in out, out
    assert f'pulumi config set --path {class_key} ""' in out, out
    assert "docs/OPERATIONS.md#volumes" in out, out


# ----- h. credentials in chart values (docs/OPERATIONS.md#secret-chart-values) -----------------

EXTRA_ENV = "pganalytics:chart.values.backend.extraEnv"
LDAP = "pganalytics:chart.values.backend.ldap"
LDAP_SECRET = "pganalytics-ldap"
LDAP_URL = "ldaps://ldap.example.test:636"


def test_h_literal_credential_in_extra_env_is_refused_before_any_change(step):
    literal = secrets.token_urlsafe(16)
    [out] = _refused(
        step,
        {f"{EXTRA_ENV}[0].name": "SMTP_PASSWORD", f"{EXTRA_ENV}[0].value": literal},
        lambda: step.project.rm_config(EXTRA_ENV),
    )
    assert f"{EXTRA_ENV}[0]" in out and "SMTP_PASSWORD a literal value" in out, out
    # The pointer to the right mechanism: a Secret, referenced through valueFrom.secretKeyRef.
    assert "kubectl create secret generic pganalytics-extra-env" in out, out
    assert f"{EXTRA_ENV}[0].valueFrom.secretKeyRef.name" in out, out
    assert literal not in out


def test_h_secret_chart_value_reaches_the_cluster_but_not_state_preview_or_logs(step):
    bind_dn = f"cn=svc-{secrets.token_hex(8)},dc=example,dc=test"
    # LDAP needs its bind password in a Secret of the user's (the chart takes no literal).
    step.cluster.kubectl(
        "create", "secret", "generic", LDAP_SECRET, "-n", NAMESPACE,
        f"--from-literal=ldap-bind-password={secrets.token_urlsafe(16)}",
    )  # fmt: skip
    step.project.set_config(f"{LDAP}.enabled", "true")
    step.project.set_config(f"{LDAP}.serverUrl", LDAP_URL)
    # The CLI takes a key named *Secret for a credential; this one is only a Secret's name.
    step.project.set_config(f"{LDAP}.existingSecret", LDAP_SECRET, "--plaintext")
    step.project.set_config(f"{LDAP}.bindDn", bind_dn, "--secret")
    assert bind_dn not in step.project.stack_file.read_text()
    preview = step.project.preview("--diff")
    assert bind_dn not in preview.output
    assert "[secret]" in preview.output, preview.describe()
    # The pull-request report: the ConfigMap's new value shows as [secret], nowhere in clear.
    proc, comment = step.project.preview_script()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    diffs = [ln for ln in proc.stdout.splitlines() if ln.startswith("| `data.LDAP_BIND_DN` |")]
    assert diffs and diffs[0].endswith("| [secret] |"), proc.stdout
    assert bind_dn not in proc.stdout + proc.stderr + comment
    # The engine's logs, the providers' included (--logflow), at the highest level that keeps
    # secrets: from -v=5 on the engine logs the inputs of every transform, which the Chart
    # hands over in plain text (docs/OPERATIONS.md#secret-chart-values).
    up = step.project.up("--debug", "--logtostderr", "--logflow", "-v=4")
    assert '"v":4' in up.output, "no engine log at -v=4 captured"
    leaks = [ln[:400] for ln in up.output.splitlines() if bind_dn in ln]
    assert not leaks, "\n".join(leaks)
    configmap = _get(step.cluster, "configmap", BACKEND)
    assert configmap["data"]["LDAP_BIND_DN"] == bind_dn
    exported = step.project.export()
    assert bind_dn not in json.dumps(exported)
    state = next(
        r for r in exported["deployment"]["resources"]
        if r["type"] == "kubernetes:core/v1:ConfigMap" and r["urn"].endswith(f"/{BACKEND}")
    )  # fmt: skip
    assert SECRET_SIG in state["outputs"]["data"]["LDAP_BIND_DN"], state["outputs"]["data"]
    # Only that leaf: a plain leaf of the same key (read from this project's stack file) stays
    # readable in state and diffs.
    assert state["outputs"]["data"]["LDAP_SERVER_URL"] == LDAP_URL, state["outputs"]["data"]
    state_files = step.project.state.joinpath(".pulumi").rglob("*.json")
    assert not any(bind_dn in p.read_text() for p in state_files), "plaintext in a state file"
    again = step.project.preview("--expect-no-changes", "--diff", check=False)
    assert again.returncode == 0, again.describe()
    assert bind_dn not in again.output


# ----- d. destroy ------------------------------------------------------------------------------


def test_d_destroy_leaves_no_object_and_no_namespace(step):
    kinds = {k for (k, ns, _) in step.project.k8s_objects() if ns == NAMESPACE}
    step.project.destroy()
    wait_for("namespace deletion", lambda: namespace_gone(step.cluster, NAMESPACE), 120)
    assert not objects_in_cluster(step.cluster, NAMESPACE, kinds)
    assert not [r for r in step.project.resources() if r["type"] != "pulumi:pulumi:Stack"]
    # Volumes of the namespace's claims are released and deleted (reclaimPolicy Delete).
    wait_for(
        "the database volumes to go",
        lambda: (
            not [
                pv
                for pv in step.cluster.kubectl_json("get", "pv")["items"]
                if (pv["spec"].get("claimRef") or {}).get("namespace") == NAMESPACE
            ]
        ),
        60,
    )
