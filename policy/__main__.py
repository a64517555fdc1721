"""Policy pack `pganalytics-platform`: what a platform team enforces on this program.

Run it with any preview or update: `pulumi preview --policy-pack policy --stack prod`.
Production stacks are those named in the `prodStacks` config of each rule (default: prod,
enterprise); a violation of a mandatory rule fails the preview.
"""

from __future__ import annotations

from collections.abc import Mapping

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    PolicyPack,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

PROD_STACKS = ["prod", "enterprise"]
PROD_SCHEMA = PolicyConfigSchema(
    properties={"prodStacks": {"type": "array", "items": {"type": "string"}}},
)
PART_OF = ("app.kubernetes.io/part-of", "pganalytics")
WORKLOADS = {
    "kubernetes:apps/v1:Deployment": ("spec", "template", "spec"),
    "kubernetes:apps/v1:StatefulSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:DaemonSet": ("spec", "template", "spec"),
    "kubernetes:batch/v1:Job": ("spec", "template", "spec"),
    "kubernetes:batch/v1:CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
    "kubernetes:core/v1:Pod": ("spec",),
}
# Cloud resources whose loss loses the cluster or its secrets.
CLOUD_STATEFUL = {
    "aws:eks/cluster:Cluster",
    "aws:kms/key:Key",
    "gcp:container/cluster:Cluster",
    "gcp:kms/cryptoKey:CryptoKey",
    "azure-native:containerservice:ManagedCluster",
}


def stack_of(urn: str) -> str:
    """urn:pulumi:<stack>::<project>::<type>::<name> -> <stack>."""
    return urn.split("::", 1)[0].split(":")[2]


def is_prod(args: ResourceValidationArgs) -> bool:
    return stack_of(args.urn) in (args.get_config().get("prodStacks") or PROD_STACKS)


def labels(props) -> dict:
    return ((props or {}).get("metadata") or {}).get("labels") or {}


def dig(props, path):
    for key in path:
        if not isinstance(props, Mapping):
            return None
        props = props.get(key)
    return props


def is_stateful(args: ResourceValidationArgs) -> str | None:
    """What a stateful resource is, or None."""
    t, props = args.resource_type, args.props
    if t in CLOUD_STATEFUL:
        return t
    if t in ("random:index/randomPassword:RandomPassword", "random:index/randomBytes:RandomBytes"):
        return f"generated credential {args.name}"
    own = labels(props).get(PART_OF[0]) == PART_OF[1]
    if t == "kubernetes:core/v1:Namespace" and own:
        return "the application namespace"
    if (
        t == "kubernetes:core/v1:Secret"
        and own
        and labels(props).get("app.kubernetes.io/managed-by") == "pulumi"
    ):
        return "the credentials Secret"
    component = labels(props).get("app.kubernetes.io/component")
    if t in ("kubernetes:apps/v1:StatefulSet", "kubernetes:core/v1:PersistentVolumeClaim") and (
        component == "timescaledb"
    ):
        return "the database"
    return None


def prod_protects_stateful(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if not is_prod(args):
        return
    what = is_stateful(args)
    if what and not args.opts.protect:
        report(
            f"{what} ({args.resource_type} {args.name}) is not protected on production stack "
            f"'{stack_of(args.urn)}': set `pulumi config set pganalytics:protect true`."
        )


def containers(args: ResourceValidationArgs) -> list[dict]:
    path = WORKLOADS.get(args.resource_type)
    pod = dig(args.props, path) if path else None
    if not isinstance(pod, Mapping):
        return []
    return [*(pod.get("initContainers") or []), *(pod.get("containers") or [])]


def images_pinned(args: ResourceValidationArgs, report: ReportViolation) -> None:
    prod = is_prod(args)
    for c in containers(args):
        image = c.get("image") or ""
        name_tag = image.split("@", 1)[0]
        tag = name_tag.rsplit(":", 1)[1] if ":" in name_tag.rsplit("/", 1)[-1] else ""
        if "@sha256:" not in image and (not tag or tag == "latest"):
            report(f"container {c.get('name')} of {args.name}: image '{image}' has no exact tag")
        elif prod and "@sha256:" not in image:
            report(
                f"container {c.get('name')} of {args.name}: image '{image}' is not pinned by "
                f"digest on production stack '{stack_of(args.urn)}' (set the chart's "
                "<component>.image.digest values)"
            )


def prod_ingress_tls(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != "kubernetes:networking.k8s.io/v1:Ingress" or not is_prod(args):
        return
    if not dig(args.props, ("spec", "tls")):
        report(
            f"Ingress {args.name} serves plain HTTP on production stack "
            f"'{stack_of(args.urn)}': set `pulumi config set --path pganalytics:ingress.tls true` "
            "(and ingress.acmeEmail)."
        )


def no_chart_made_secret(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """The program generates every credential into one Secret (managed-by pulumi); a Secret
    the chart renders itself would hold a second, chart-generated credential."""
    if args.resource_type != "kubernetes:core/v1:Secret":
        return
    if labels(args.props).get("app.kubernetes.io/managed-by") == "Helm":
        report(
            f"Secret {args.name} is generated by the chart, but the program supplies the "
            "credentials: keep every `existingSecret` value pointing at pganalytics-credentials "
            "(do not override them in pganalytics:chart.values)."
        )


POLICIES = [
    ResourceValidationPolicy(
        name="prod-protects-stateful-resources",
        description="Production stacks protect the cluster, KMS keys, namespace, "
        "credentials and database from deletion and replacement.",
        validate=prod_protects_stateful,
        config_schema=PROD_SCHEMA,
    ),
    ResourceValidationPolicy(
        name="images-pinned",
        description="Every image has an exact tag (never latest); production images are "
        "pinned by digest.",
        validate=images_pinned,
        config_schema=PROD_SCHEMA,
    ),
    ResourceValidationPolicy(
        name="prod-ingress-tls",
        description="Production Ingresses terminate TLS.",
        validate=prod_ingress_tls,
        config_schema=PROD_SCHEMA,
    ),
    ResourceValidationPolicy(
        name="no-chart-made-secret",
        description="Credentials come from the program's Secret, never from a Secret the "
        "chart generates.",
        validate=no_chart_made_secret,
    ),
]


if __name__ == "__main__":
    # The engine runs this file as __main__ (pulumi.policy: runpy); PolicyPack serves the
    # policies until the engine stops it. Imported (tests/unit/test_policy_stacks.py), the rules
    # run without it.
    PolicyPack(
        name="pganalytics-platform",
        enforcement_level=EnforcementLevel.MANDATORY,
        policies=POLICIES,
    )
