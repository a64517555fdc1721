"""The Cluster Autoscaler of the EKS target: the Helm chart, its IAM role (Pod Identity, only
this cluster's service account) and a least-privilege policy."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.targets.eks.identity import autoscaler_policy, pod_identity_trust

CLUSTER_AUTOSCALER_CHART = (
    "cluster-autoscaler",
    "9.52.1",
    "https://kubernetes.github.io/autoscaler",
)
CLUSTER_AUTOSCALER_SA = "cluster-autoscaler"


def cluster_autoscaler(target: pulumi.Resource) -> k8s.helm.v3.Release:
    """The Cluster Autoscaler scales each zone's node group between its share of
    nodePool.minSize and nodePool.maxSize (the groups' own bounds), balancing similar
    groups so the zones stay even, with AWS access through Pod Identity. Its resources are
    the target's children (`target`: the EksCluster), named as before this module existed."""
    s, child = target.settings, target.child
    role = aws.iam.Role(
        "autoscaler-role",
        assume_role_policy=pod_identity_trust(
            target.cluster.arn, "kube-system", CLUSTER_AUTOSCALER_SA
        ),
        opts=child,
    )
    policy = aws.iam.RolePolicy(
        "autoscaler-policy", role=role.id, policy=autoscaler_policy(s.cluster_name), opts=child
    )
    association = aws.eks.PodIdentityAssociation(
        "autoscaler-identity",
        cluster_name=target.cluster.name,
        namespace="kube-system",
        service_account=CLUSTER_AUTOSCALER_SA,
        role_arn=role.arn,
        opts=pulumi.ResourceOptions.merge(
            child, pulumi.ResourceOptions(depends_on=[target.pod_identity_agent])
        ),
    )
    chart, chart_version, repo = CLUSTER_AUTOSCALER_CHART
    return k8s.helm.v3.Release(
        "cluster-autoscaler",
        name="cluster-autoscaler",
        chart=chart,
        version=chart_version,
        repository_opts={"repo": repo},
        namespace="kube-system",
        values={
            "cloudProvider": "aws",
            "awsRegion": s.region,
            "autoDiscovery": {"clusterName": s.cluster_name},
            # The autoscaler's minor version must match the cluster's.
            "image": {"tag": target.version.apply(lambda v: f"v{v}.0")},
            "rbac": {"serviceAccount": {"create": True, "name": CLUSTER_AUTOSCALER_SA}},
            "extraArgs": {
                # The per-zone groups are alike: keep their sizes even.
                "balance-similar-node-groups": True,
                "expander": "least-waste",
                "skip-nodes-with-local-storage": False,
            },
        },
        atomic=True,
        cleanup_on_fail=True,
        timeout=600,
        opts=pulumi.ResourceOptions(
            parent=target,
            provider=target.provider,
            depends_on=[association, policy, *target.node_groups],
        ),
    )
