"""Transforms applied to every object `charts/pganalytics` renders, each with one job.

helm.v4.Chart names a child `<resource_prefix>:<namespace>/<object name>` (cluster-scoped:
`<resource_prefix>:<object name>`) with the Kubernetes type token, e.g.
`kubernetes:core/v1:PersistentVolumeClaim` `pganalytics:pganalytics/pganalytics-grafana`.
The transforms decide on the type and the object itself (its kind, its volume claim
templates), so a renamed release or a new component is covered without a name list.

The SDK hands a transform its props with any nested secret pushed up to the top-level field
(e.g. a whole `spec`), so `hide_literal_env` and `hide_secrets`, which create such secrets, must
run last.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pulumi
from pulumi.runtime.rpc import is_rpc_secret, unwrap_rpc_secret, wrap_rpc_secret

from components.chart_secrets import hide_env_values, hide_secret_strings
from components.credentials import CREDENTIALS_VERSION_ANNOTATION

PVC = "kubernetes:core/v1:PersistentVolumeClaim"
INGRESS = "kubernetes:networking.k8s.io/v1:Ingress"
SERVICE = "kubernetes:core/v1:Service"
STATEFUL_SET = "kubernetes:apps/v1:StatefulSet"
# A CloudNativePG Cluster: the operator deletes its instances' claims with it.
CNPG_CLUSTER = "kubernetes:postgresql.cnpg.io/v1:Cluster"
ORPHAN_ANNOTATION = "pulumi.com/deletionPropagationPolicy"
SKIP_AWAIT_ANNOTATION = "pulumi.com/skipAwait"
# Kinds whose pods read the credentials Secret, and where their pod template sits.
POD_TEMPLATE_PATHS = {
    "kubernetes:apps/v1:Deployment": ("spec", "template"),
    "kubernetes:apps/v1:StatefulSet": ("spec", "template"),
    "kubernetes:apps/v1:DaemonSet": ("spec", "template"),
    "kubernetes:batch/v1:Job": ("spec", "template"),
    "kubernetes:batch/v1:CronJob": ("spec", "jobTemplate", "spec", "template"),
}

Transform = Callable[[pulumi.ResourceTransformArgs], pulumi.ResourceTransformResult | None]


def child_name(namespace: str, name: str, prefix: str) -> str:
    """The Pulumi name helm.v4.Chart gives a namespaced object."""
    return f"{prefix}:{namespace}/{name}"


def _field(props: dict[str, Any], name: str) -> dict[str, Any]:
    """A top-level field for reading, whether or not it arrived marked secret."""
    value = unwrap_rpc_secret(props.get(name))
    return value if isinstance(value, dict) else {}


def _object_name(props: dict[str, Any]) -> str:
    return str(_field(props, "metadata").get("name") or "")


def _has_claim_templates(props: dict[str, Any]) -> bool:
    return bool(_field(props, "spec").get("volumeClaimTemplates"))


def holds_state(type_: str, props: dict[str, Any]) -> bool:
    """Every PVC, every StatefulSet that owns claims through volumeClaimTemplates, and every
    CloudNativePG Cluster."""
    if type_ in (PVC, CNPG_CLUSTER):
        return True
    return type_ == STATEFUL_SET and _has_claim_templates(props)


def protect_state(reshaped_workloads: frozenset[str] = frozenset()) -> Transform:
    """Protects every object holding data. A StatefulSet whose claim templates change in this
    update (a claim grows, or the volume is turned off) is left unprotected for this update
    only: its immutable volumeClaimTemplates make the provider replace it, and the engine
    refuses to replace a resource that stays protected. The replacement orphans the pods (see
    `orphan_on_delete`) and the claims stay."""

    def transform(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult | None:
        if not holds_state(args.type_, args.props):
            return None
        if args.type_ == STATEFUL_SET and _object_name(args.props) in reshaped_workloads:
            return None
        return pulumi.ResourceTransformResult(
            props=args.props,
            opts=pulumi.ResourceOptions.merge(args.opts, pulumi.ResourceOptions(protect=True)),
        )

    return transform


def orphan_on_delete(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult | None:
    """Deleting (or replacing) a StatefulSet with claim templates orphans its pods instead of
    deleting them; the new StatefulSet adopts them. Set on every update, because the provider
    deletes with the annotation of the state being deleted."""
    if args.type_ != STATEFUL_SET or not _has_claim_templates(args.props):
        return None
    return pulumi.ResourceTransformResult(
        props=_annotated(args.props, ORPHAN_ANNOTATION, "orphan"), opts=args.opts
    )


def _annotated(props: dict[str, Any], key: str, value: str) -> dict[str, Any]:
    props = dict(props)
    metadata = dict(unwrap_rpc_secret(props.get("metadata")) or {})
    metadata["annotations"] = {**(metadata.get("annotations") or {}), key: value}
    props["metadata"] = metadata
    return props


# Kinds whose readiness await the provider skips (`pulumi.com/skipAwait`), and why:
# - PersistentVolumeClaim: the await waits for phase Pending on a WaitForFirstConsumer class
#   (the cloud classes here) and Bound otherwise, so any update of a bound claim, e.g. a larger
#   request, would wait 5 minutes and fail. Kubernetes reports a resize in the claim's
#   conditions; nothing is gained by waiting.
# - Ingress: the await waits for `.status.loadBalancer`, which only an ingress controller
#   fills: with controller `none`, on kind, or behind a controller without a LoadBalancer
#   nothing ever does, and `pulumi up` would fail after its timeout.
# - Service: the await (pkg/await/service.go) sleeps 10 s after every Endpoints event before
#   it calls the Service settled, and succeeds without any ready endpoint: 10 s on the
#   critical path of every `up` that creates or changes a Service, for no check. The pods
#   behind every Service of the chart are those of a Deployment, StatefulSet or DaemonSet
#   (tests/chart/test_invariants.py), whose awaits require every replica Ready, so the
#   Service's EndpointSlices hold them as ready addresses when `pulumi up` returns
#   (tests/e2e/test_readiness.py, with pods that turn Ready only seconds after scheduling).
SKIP_AWAIT_TYPES = frozenset({PVC, INGRESS, SERVICE})


def skip_await(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult | None:
    """`pulumi.com/skipAwait` on the kinds of SKIP_AWAIT_TYPES (see there why); every other
    kind keeps the provider's readiness await."""
    if args.type_ not in SKIP_AWAIT_TYPES:
        return None
    return pulumi.ResourceTransformResult(
        props=_annotated(args.props, SKIP_AWAIT_ANNOTATION, "true"), opts=args.opts
    )


def restart_on_rotation(version: str) -> Transform:
    """Sets the credentials version on every pod template: a rotation restarts the pods (and
    recreates Jobs, whose pod template is immutable, so they run again)."""

    def transform(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult | None:
        path = POD_TEMPLATE_PATHS.get(args.type_)
        if path is None:
            return None
        props = dict(args.props)
        top, rest = path[0], path[1:]
        secret = is_rpc_secret(props.get(top))
        field = unwrap_rpc_secret(props.get(top))
        if not isinstance(field, dict):
            return None
        root = node = dict(field)
        for part in rest:
            child = node.get(part)
            if not isinstance(child, dict):
                return None
            node[part] = dict(child)
            node = node[part]
        metadata = dict(node.get("metadata") or {})
        annotations = dict(metadata.get("annotations") or {})
        annotations[CREDENTIALS_VERSION_ANNOTATION] = version
        metadata["annotations"] = annotations
        node["metadata"] = metadata
        props[top] = wrap_rpc_secret(root) if secret else root
        return pulumi.ResourceTransformResult(props=props, opts=args.opts)

    return transform


def _hiding(hide) -> Transform:
    """A transform that applies `hide(props) -> (props, changed)` to every child."""

    def transform(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult | None:
        props, changed = hide(args.props)
        if not changed:
            return None
        return pulumi.ResourceTransformResult(props=props, opts=args.opts)

    return transform


def hide_literal_env(pairs: frozenset[tuple[str, str]]) -> Transform:
    """Marks as secret the container env values that come from a literal `extraEnv` value
    (chart_secrets.literal_env): the chart renders them into the pod spec in plain text."""
    return _hiding(lambda props: hide_env_values(props, pairs))


def hide_secrets(secrets: frozenset[str]) -> Transform:
    """Marks as secret every rendered string that holds a value set with `--secret` in
    `pganalytics:chart.values` (the chart provider registers its objects with plain inputs)."""
    return _hiding(lambda props: hide_secret_strings(props, secrets))


def chain(steps: Sequence[Transform]) -> Transform:
    """`steps` as one transform, run in order on each child, each seeing what the previous
    ones made of it. The engine calls every transform of a resource through its own RPC to
    this program, with the child's full props each way: one callback per child instead of one
    per step."""
    steps = tuple(steps)

    def transform(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult | None:
        props, opts, changed = args.props, args.opts, False
        for step in steps:
            result = step(
                pulumi.ResourceTransformArgs(
                    custom=args.custom, type_=args.type_, name=args.name, props=props, opts=opts
                )
            )
            if result is not None:
                props, opts, changed = result.props, result.opts, True
        return pulumi.ResourceTransformResult(props=props, opts=opts) if changed else None

    return transform
