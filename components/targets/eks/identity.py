"""IAM of the EKS target: roles that AWS services assume, and the one trust policy of every role
assumed through EKS Pod Identity (the target's add-ons and autoscaler, the backup job, the
database pods: components/backup/ call `pod_identity_trust` too)."""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws

POD_IDENTITY_SERVICE = "pods.eks.amazonaws.com"


def assume_role(service: str, tag_session: bool = False) -> str:
    """Trust policy of a role an AWS service (eks, ec2) assumes for the cluster."""
    actions = ["sts:AssumeRole", "sts:TagSession"] if tag_session else "sts:AssumeRole"
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": service}, "Action": actions}
            ],
        }
    )


def pod_identity_policy(
    cluster_arn: str, namespace: str | None = None, service_account: str | None = None
) -> str:
    """The trust policy document (see `pod_identity_trust`) for known values."""
    account = cluster_arn.split(":")[4]
    condition: dict = {
        "StringEquals": {"aws:SourceAccount": account},
        "ArnEquals": {"aws:SourceArn": cluster_arn},
    }
    # Session tags EKS Pod Identity adds to the role session ("EKS Pod Identity session tags").
    if namespace:
        condition["StringEquals"]["aws:RequestTag/kubernetes-namespace"] = namespace
    if service_account:
        condition["StringEquals"]["aws:RequestTag/kubernetes-service-account"] = service_account
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "AllowEksAuthToAssumeRoleForPodIdentity",
                    "Effect": "Allow",
                    "Principal": {"Service": POD_IDENTITY_SERVICE},
                    "Action": ["sts:AssumeRole", "sts:TagSession"],
                    "Condition": condition,
                }
            ],
        }
    )


def pod_identity_trust(
    cluster_arn: pulumi.Input[str],
    namespace: pulumi.Input[str] | None = None,
    service_account: pulumi.Input[str] | None = None,
) -> pulumi.Output[str]:
    """Trust policy of a role assumed through EKS Pod Identity for pods of ONE cluster: EKS
    Pod Identity assumes the role with aws:SourceAccount (the cluster's account) and
    aws:SourceArn (the cluster's ARN) set, so another cluster's association in the same account
    cannot use the role (the confused-deputy conditions of the EKS user guide). With a
    namespace and service account, only that service account's pods (the session tags EKS Pod
    Identity adds) may assume it as well."""
    return pulumi.Output.all(cluster_arn, namespace, service_account).apply(
        lambda a: pod_identity_policy(a[0], a[1], a[2])
    )


def service_role(
    name: str,
    trust: pulumi.Input[str],
    policies: dict[str, str],
    partition: pulumi.Input[str],
    opts: pulumi.ResourceOptions,
) -> tuple[aws.iam.Role, list[aws.iam.RolePolicyAttachment]]:
    """A role `<name>-role` with this trust policy and AWS-managed policies attached
    ({attachment's resource name: policy name}). A function, not a component: the role and
    attachments keep the parent and names they had (no alias needed)."""
    role = aws.iam.Role(f"{name}-role", assume_role_policy=trust, opts=opts)
    attachments = [
        aws.iam.RolePolicyAttachment(
            resource_name,
            role=role.name,
            policy_arn=pulumi.Output.concat("arn:", partition, ":iam::aws:policy/", policy),
            opts=opts,
        )
        for resource_name, policy in policies.items()
    ]
    return role, attachments


def autoscaler_policy(cluster_name: str) -> str:
    """Least privilege for the Cluster Autoscaler: read everywhere, scale only the groups
    tagged as this cluster's (managed node groups carry the tag)."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": [
                        "autoscaling:DescribeAutoScalingGroups",
                        "autoscaling:DescribeAutoScalingInstances",
                        "autoscaling:DescribeLaunchConfigurations",
                        "autoscaling:DescribeScalingActivities",
                        "autoscaling:DescribeTags",
                        "ec2:DescribeImages",
                        "ec2:DescribeInstanceTypes",
                        "ec2:DescribeLaunchTemplateVersions",
                        "ec2:GetInstanceTypesFromInstanceRequirements",
                        "eks:DescribeNodegroup",
                    ],
                    "Resource": "*",
                },
                {
                    "Effect": "Allow",
                    "Action": [
                        "autoscaling:SetDesiredCapacity",
                        "autoscaling:TerminateInstanceInAutoScalingGroup",
                    ],
                    "Resource": "*",
                    "Condition": {
                        "StringEquals": {
                            f"aws:ResourceTag/k8s.io/cluster-autoscaler/{cluster_name}": "owned"
                        }
                    },
                },
            ],
        }
    )
