"""The `existing` target is bound to one cluster: the Kubernetes provider's identity is the
kubeconfig context and its server, so pointing the stack elsewhere is a visible replacement
(refused where protected), and a context the kubeconfig lacks is a config error."""

from __future__ import annotations

import os

from tests.unit.harness import one, run_program, stack_config
from tests.unit.plan import changes, ok, plan

PROVIDER = ("pulumi:providers:kubernetes", "k8s")
TWO_CLUSTERS = """apiVersion: v1
kind: Config
clusters:
- {name: blue, cluster: {server: "https://blue.example.com:6443"}}
- {name: green, cluster: {server: "https://green.example.com:6443"}}
contexts:
- {name: blue, context: {cluster: blue, user: u}}
- {name: green, context: {cluster: green, user: u}}
current-context: blue
users: [{name: u, user: {token: t}}]
"""


def existing(stack: str = "dev", context: str = "", kubeconfig: str | None = None, **extra):
    config = stack_config(stack, "existing")
    if context:
        config["pganalytics:kubeContext"] = context
    secret: tuple = ()
    if kubeconfig is not None:
        config["pganalytics:kubeconfig"] = kubeconfig
        secret = ("pganalytics:kubeconfig",)
    return run_program(stack, config, secret_keys=secret, **extra)


def test_provider_identity_is_context_and_server():
    result = ok(existing())  # the runner's ambient kubeconfig: kind-pganalytics on :6443
    provider = one(result, *PROVIDER)["inputs"]
    assert provider["clusterIdentifier"] == "kind-pganalytics@https://127.0.0.1:6443"
    assert provider["context"] == "kind-pganalytics"
    # The provider loads the ambient file itself: no path of this machine in the state.
    assert provider["kubeconfig"] == ""
    assert result["outputs"]["clusterName"]["value"] == "kind-pganalytics"


def test_another_cluster_is_a_visible_replacement():
    blue = ok(existing(kubeconfig=TWO_CLUSTERS))
    green = ok(existing(kubeconfig=TWO_CLUSTERS, context="green"))
    steps = changes(plan(blue, green))
    assert steps[PROVIDER].op == "replace"
    assert steps[PROVIDER].changed >= {"clusterIdentifier"}
    # Every Kubernetes object moves with it, shown as a replacement, never a silent upsert.
    k8s = [k for k in steps if k[0].startswith("kubernetes:")]
    assert k8s and all(steps[k].op == "replace" for k in k8s)

    # The same context name on another server is another cluster too.
    moved = TWO_CLUSTERS.replace("https://blue.example.com:6443", "https://blue2.example.com")
    assert changes(plan(blue, ok(existing(kubeconfig=moved))))[PROVIDER].op == "replace"
    # A refreshed token is not: the provider updates, nothing on it moves.
    refreshed = TWO_CLUSTERS.replace("token: t", "token: t2")
    steps = changes(plan(blue, ok(existing(kubeconfig=refreshed))))
    assert {k: s.op for k, s in steps.items()} == {PROVIDER: "update"}


def test_a_protected_stack_would_replace_protected_objects_so_preview_refuses():
    blue = ok(existing("prod", kubeconfig=TWO_CLUSTERS))
    green = ok(existing("prod", kubeconfig=TWO_CLUSTERS, context="green"))
    steps = changes(plan(blue, green))
    protected = {(r["type"], r["name"]) for r in green["resources"] if r.get("protect")}
    # The engine refuses to replace a protected resource: these make the preview fail.
    assert {("kubernetes:core/v1:Namespace", "app-namespace")} <= protected
    assert {k for k in protected if steps.get(k) and steps[k].op == "replace"} >= {
        ("kubernetes:core/v1:Namespace", "app-namespace"),
        ("kubernetes:core/v1:Secret", "credentials"),
    }


def test_unknown_context_is_a_config_error_before_any_resource():
    result = existing(kubeconfig=TWO_CLUSTERS, context="purple")
    assert result["error_type"] == "ConfigError"
    assert result["resources"] == []
    assert (
        "pganalytics:kubeContext names context 'purple', which pganalytics:kubeconfig does not "
        "have (contexts: blue, green); fix: pulumi config set pganalytics:kubeContext blue"
    ) in result["error"]
    ambient = existing(context="purple")
    assert (
        "which the ambient kubeconfig (KUBECONFIG or ~/.kube/config) does not have"
        in (ambient["error"])
    )


def test_no_kubeconfig_at_all_is_a_config_error():
    result = existing(ambient_kubeconfig="")
    assert result["error_type"] == "ConfigError"
    assert result["resources"] == []
    assert "pganalytics:kubeconfig is empty and there is no ambient kubeconfig" in result["error"]
    assert "pulumi config set --secret pganalytics:kubeconfig" in result["error"]


def test_kubeconfig_path_lists_merge_like_kubectl(tmp_path, monkeypatch):
    from components.settings import build_settings
    from components.targets.existing import ClusterBinding, bind

    first = tmp_path / "a"
    first.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: green\nclusters: []\n"
        "contexts: [{name: green, context: {cluster: green}}]\n"
    )
    second = tmp_path / "b"
    second.write_text(TWO_CLUSTERS)
    monkeypatch.setenv(
        "KUBECONFIG", f"{first}{os.pathsep}{tmp_path / 'missing'}{os.pathsep}{second}"
    )
    settings = build_settings("dev", {"ingress": {"domain": "apps.example.com"}})
    # The first file's current context and context win; the cluster comes from the second.
    assert bind(settings) == ClusterBinding("green", "https://green.example.com:6443")
