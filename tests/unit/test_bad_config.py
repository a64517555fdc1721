"""Every bad configuration fails before any resource is registered, with ONE error that
names each offending `pganalytics:` key and says how to fix it.

Each case starts from a real stack file (Pulumi.<stack>.yaml over the Pulumi.yaml defaults),
changes a few keys and runs the program under mocks in a subprocess.
"""

from __future__ import annotations

import contextlib
import copy
import json
import re

import pytest

from tests.unit.harness import run_program, stack_config

DROP = object()


def _set(config: dict, dotted: str, value) -> None:
    """Sets `pganalytics:a.b` in a config dict the way `pulumi config set --path` does."""
    if ":" in dotted:  # a literal config key, e.g. aws:region or a key made without --path
        config[dotted] = value
        return
    head, _, rest = dotted.partition(".")
    key = f"pganalytics:{head}"
    if not rest:
        if value is DROP:
            config.pop(key, None)
        else:
            config[key] = value
        return
    obj = copy.deepcopy(config.get(key) or {})
    node = obj
    parts = rest.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    config[key] = obj


# id: (stack, target, {dotted key: value}, [substrings the message must contain], secret keys)
CASES = {
    "unknown-target": (
        "dev",
        None,
        {"target": "aws2"},
        ["pganalytics:target", "aws2", "pulumi config set pganalytics:target aws"],
    ),
    "typo-top-level-key": (
        "dev",
        None,
        {"nodepool": {"minSize": 2}},
        ["pganalytics:nodepool", "did you mean pganalytics:nodePool"],
    ),
    "typo-nested-key": (
        "prod",
        None,
        {"nodePool.minSzie": 2},
        [
            "pganalytics:nodePool.minSzie",
            "did you mean nodePool.minSize",
            "pulumi config rm --path pganalytics:nodePool.minSzie",
        ],
    ),
    "unknown-key-no-suggestion": (
        "dev",
        None,
        {"frobnicate": "1"},
        ["pganalytics:frobnicate", "pulumi config rm pganalytics:frobnicate"],
    ),
    "min-greater-than-max": (
        "prod",
        None,
        {"nodePool.minSize": 5, "nodePool.maxSize": 3},
        [
            "pganalytics:nodePool.minSize must be ≤ maxSize (got 5 > 3)",
            "pulumi config set --path pganalytics:nodePool.minSize 3",
        ],
    ),
    "zero-min-size": (
        "prod",
        None,
        {"nodePool.minSize": 0},
        [
            "pganalytics:nodePool.minSize must be at least 1 (got 0)",
            "pulumi config set --path pganalytics:nodePool.minSize 1",
        ],
    ),
    "negative-max-size": (
        "prod",
        None,
        {"nodePool.maxSize": -2},
        ["pganalytics:nodePool.maxSize must be at least 1 (got -2)"],
    ),
    "desired-outside-bounds": (
        "prod",
        None,
        {"nodePool.desiredSize": 20},
        [
            "pganalytics:nodePool.desiredSize",
            "between minSize and maxSize",
            "pulumi config set --path pganalytics:nodePool.desiredSize 9",
        ],
    ),
    "size-not-an-integer": (
        "prod",
        None,
        {"nodePool.minSize": "three"},
        [
            "pganalytics:nodePool.minSize must be an integer",
            "pulumi config set --path pganalytics:nodePool.minSize 1",
        ],
    ),
    "invalid-vpc-cidr": (
        "prod",
        None,
        {"network.cidr": "10.0.0.0/33"},
        [
            "pganalytics:network.cidr is not a valid CIDR",
            "pulumi config set --path pganalytics:network.cidr",
        ],
    ),
    "cidr-with-host-bits": (
        "prod",
        None,
        {"network.cidr": "10.20.1.0/16"},
        ["pganalytics:network.cidr", "10.20.0.0/16"],
    ),
    "overlapping-pod-cidr": (
        "prod",
        "gcp",
        {"network.podCidr": "10.20.128.0/17"},
        ["pganalytics:network.podCidr overlaps network.cidr"],
    ),
    "invalid-endpoint-cidr": (
        "prod",
        None,
        {"endpoint.publicCidrs": ["203.0.113.0/24", "1.2.3.4/40"]},
        [
            "pganalytics:endpoint.publicCidrs[1] is not a valid CIDR",
            "--path pganalytics:endpoint.publicCidrs[1]",
        ],
    ),
    "endpoint-unreachable": (
        "prod",
        None,
        {"endpoint.publicAccess": False, "endpoint.privateAccess": False},
        ["pganalytics:endpoint.privateAccess must be true"],
    ),
    "aws-machine-type-format": (
        "prod",
        "aws",
        {"nodePool.machineType": "e2-standard-4"},
        [
            "pganalytics:nodePool.machineType is not a AWS machine type",
            "pulumi config set --path pganalytics:nodePool.machineType m6i.xlarge",
        ],
    ),
    "gcp-machine-type-format": (
        "enterprise",
        "gcp",
        {"nodePool.machineType": "m6i.large"},
        ["pganalytics:nodePool.machineType is not a GCP machine type"],
    ),
    "azure-machine-type-format": (
        "prod",
        "azure",
        {"nodePool.machineType": "D4s_v5"},
        ["pganalytics:nodePool.machineType is not a Azure machine type", "Standard_D4s_v5"],
    ),
    "missing-region": (
        "prod",
        "aws",
        {"region": ""},
        [
            "pganalytics:region is required for target aws",
            "pulumi config set pganalytics:region eu-west-1",
        ],
    ),
    "region-of-another-cloud": (
        "enterprise",
        "gcp",
        {"region": "eu-west-1"},
        [
            "pganalytics:region is not a GCP region",
            "pulumi config set pganalytics:region europe-west1",
        ],
    ),
    "missing-gcp-project": (
        "enterprise",
        "gcp",
        {"gcpProject": ""},
        ["pganalytics:gcpProject is required for target gcp"],
    ),
    "tls-without-email": (
        "prod",
        None,
        {"ingress.acmeEmail": ""},
        [
            "pganalytics:ingress.acmeEmail is required when ingress.tls is true",
            "pulumi config set --path pganalytics:ingress.acmeEmail ops@example.com",
        ],
    ),
    "tls-without-domain": (
        "prod",
        None,
        {"ingress.domain": ""},
        ["pganalytics:ingress.domain is required"],
    ),
    "tls-on-nip-io": (
        "dev",
        None,
        {"ingress.tls": True, "ingress.acmeEmail": "ops@example.com"},
        ["pganalytics:ingress.domain must be a public domain"],
    ),
    "bad-acme-email": (
        "prod",
        None,
        {"ingress.acmeEmail": "ops-at-example"},
        ["pganalytics:ingress.acmeEmail is not an e-mail address"],
    ),
    "bad-acme-issuer": (
        "prod",
        None,
        {"ingress.acmeIssuer": "prod"},
        ["pganalytics:ingress.acmeIssuer must be staging or production"],
    ),
    "unknown-ingress-controller": (
        "dev",
        None,
        {"ingress.controller": "nginx"},
        ["pganalytics:ingress.controller must be traefik or none"],
    ),
    "chart-override-wrong-type": (
        "prod",
        None,
        {"chart.values": {"backend": {"replicaCount": "three"}}},
        [
            "pganalytics:chart.values.backend.replicaCount is rejected by the chart schema",
            "pulumi config rm --path pganalytics:chart.values.backend.replicaCount",
        ],
    ),
    # prod runs CloudNativePG behind PgBouncer: the API's HPA maximum raises the clients of
    # each PgBouncer pod (cloudnativepg.pooler.maxClientConn 1000), not the server's connections.
    "chart-hpa-over-connection-budget": (
        "prod",
        None,
        {"chart.values": {"backend": {"autoscaling": {"maxReplicas": 30}}}},
        [
            "pganalytics:chart.values.backend.autoscaling.maxReplicas raises the PgBouncer "
            "clients to 2250 (API 2250 = 30 pods x 75, ML service 0)",
            "above cloudnativepg.pooler.maxClientConn = 1000",
            "pulumi config set --path pganalytics:chart.values.cloudnativepg.pooler.maxClientConn "
            "2300",
            "pulumi config set --path pganalytics:chart.values.backend.autoscaling.maxReplicas 13",
        ],
    ),
    # The ML service's pools go through PgBouncer under CloudNativePG (790 clients fit 1000):
    # only the bundled server, which takes every connection, is pushed over max_connections.
    "chart-ml-service-over-connection-budget": (
        "prod",
        None,
        {
            "database.mode": "bundled",
            "chart.values": {"mlService": {"enabled": True}, "redis": {"enabled": True}},
        },
        [
            "pganalytics:chart.values.mlService.enabled raises the database connection "
            "budget to 822",
            "ML service 40",
            "above timescaledb.parameters.max_connections = 800",
            "pulumi config set --path pganalytics:chart.values.backend.autoscaling.maxReplicas 9",
        ],
    ),
    # CloudNativePG's server side: 4 PgBouncer pods x 20 x 2 pairs + Grafana 5 + collector 14
    # + reserve 10 + 3 superuser slots = 192 fits max_connections 200; 5 pods need 232.
    "chart-pooler-over-max-connections": (
        "prod",
        None,
        {"chart.values": {"cloudnativepg": {"pooler": {"instances": 5}}}},
        [
            "pganalytics:chart.values.cloudnativepg.pooler.instances raises the server "
            "connections to 232 (PgBouncer 200 = 5 pods x defaultPoolSize 20 x 2 database/user "
            "pairs, direct clients 29, superuser reserved 3)",
            "above cloudnativepg.parameters.max_connections = 200",
            "pulumi config set --path pganalytics:chart.values.cloudnativepg.parameters."
            "max_connections 300",
            "pulumi config set --path pganalytics:chart.values.cloudnativepg.pooler."
            "defaultPoolSize 16",
        ],
    ),
    "frontend-host-same-as-api": (
        "prod",
        None,
        {"ingress.frontendHost": "api.pga.example.com", "ingress.apiHost": "api.pga.example.com"},
        ["pganalytics:ingress.frontendHost must differ from the API host (api.pga.example.com)"],
    ),
    "chart-override-unknown-key": (
        "dev",
        None,
        {"chart.values": {"backend": {"replicas": 2}}},
        ["pganalytics:chart.values.backend.replicas is rejected by the chart schema"],
    ),
    "chart-override-latest-tag": (
        "dev",
        None,
        {"chart.values": {"grafana": {"image": {"tag": "latest"}}}},
        ["pganalytics:chart.values.grafana.image.tag"],
    ),
    "missing-values-file": (
        "dev",
        None,
        {"chart.valuesFile": "values-staging.yaml"},
        [
            "pganalytics:chart.valuesFile names values-staging.yaml",
            "pulumi config set --path pganalytics:chart.valuesFile",
        ],
    ),
    "image-tag-latest": (
        "prod",
        None,
        {"chart.imageTag": "latest"},
        ["pganalytics:chart.imageTag must be an exact image tag"],
    ),
    "bad-reclaim-policy": (
        "prod",
        None,
        {"storage.reclaimPolicy": "retain"},
        [
            "pganalytics:storage.reclaimPolicy must be Delete or Retain",
            "pulumi config set --path pganalytics:storage.reclaimPolicy Retain",
        ],
    ),
    "disk-type-of-another-cloud": (
        "enterprise",
        "gcp",
        {"storage.type": "gp3"},
        ["pganalytics:storage.type must be one of pd-balanced"],
    ),
    "protect-not-a-boolean": (
        "prod",
        None,
        {"protect": "yes"},
        ["pganalytics:protect must be true or false", "pulumi config set pganalytics:protect true"],
    ),
    "existing-subnets-too-few": (
        "prod",
        "aws",
        {"network.create": False, "network.subnetIds": ["subnet-0123456789abcdef0"]},
        ["pganalytics:network.subnetIds needs at least two private subnets"],
    ),
    "bad-kubernetes-version": (
        "prod",
        None,
        {"kubernetesVersion": "v1.34"},
        ["pganalytics:kubernetesVersion must look like 1.34"],
    ),
    "gke-release-channel": (
        "enterprise",
        "gcp",
        {"cluster.releaseChannel": "stable"},
        ["pganalytics:cluster.releaseChannel must be RAPID, REGULAR, STABLE or EXTENDED"],
    ),
    "ambient-provider-config": (
        "prod",
        None,
        {"aws:region": "us-east-1"},
        ["aws:region is ignored", "pulumi config set pganalytics:region"],
    ),
    "nested-key-set-without-path": (
        "prod",
        None,
        {"pganalytics:nodePool.maxSize": "6"},
        [
            "pganalytics:nodePool.maxSize was set without --path",
            "pulumi config rm pganalytics:nodePool.maxSize && "
            "pulumi config set --path pganalytics:nodePool.maxSize 6",
        ],
    ),
    "list-given-a-string": (
        "prod",
        None,
        {"endpoint.publicCidrs": "203.0.113.0/24"},
        [
            "pganalytics:endpoint.publicCidrs must be a list",
            # The value given becomes the first item (never the world-open 0.0.0.0/0).
            "pulumi config rm --path pganalytics:endpoint.publicCidrs && "
            "pulumi config set --path 'pganalytics:endpoint.publicCidrs[0]' 203.0.113.0/24",
        ],
    ),
    "object-given-a-scalar": (
        "prod",
        None,
        {"nodePool": "big"},
        ["pganalytics:nodePool must be an object"],
    ),
    # --- values a cloud API or Kubernetes would refuse later, or that would harm the cluster
    "namespace-kube-system": (
        "prod",
        None,
        {"chart.namespace": "kube-system"},
        [
            "pganalytics:chart.namespace is a Kubernetes system namespace",
            "pulumi config set --path pganalytics:chart.namespace pganalytics",
        ],
    ),
    "namespace-of-cert-manager": (
        "prod",
        None,
        {"chart.namespace": "cert-manager"},
        ["pganalytics:chart.namespace is cert-manager's namespace"],
    ),
    "namespace-shared-with-the-controller": (
        "dev",
        None,
        {"chart.namespace": "traefik"},
        ["pganalytics:chart.namespace must differ from ingress.controllerNamespace"],
    ),
    "rule-across-keys-next-to-a-bad-field": (
        "dev",
        None,
        {"chart.namespace": "traefik", "nodePool.minSize": 0},
        [
            "pganalytics:chart.namespace must differ from ingress.controllerNamespace",
            "pganalytics:nodePool.minSize must be at least 1",
        ],
    ),
    "traefik-into-kube-system": (
        "dev",
        None,
        {"ingress.controllerNamespace": "kube-system"},
        [
            "pganalytics:ingress.controllerNamespace is a Kubernetes system namespace",
            "pulumi config set --path pganalytics:ingress.controllerNamespace traefik",
        ],
    ),
    "name-with-trailing-newline": (
        "prod",
        None,
        {"clusterName": "analytics\n", "chart.namespace": "analytics\n"},
        [
            "pganalytics:clusterName must be 2-40 lowercase letters",
            "pganalytics:chart.namespace is not a valid namespace name",
        ],
    ),
    "vpc-cidr-larger-than-aws-allows": (
        "prod",
        "aws",
        {"network.cidr": "10.0.0.0/8"},
        [
            "pganalytics:network.cidr is larger than an AWS VPC may be",
            "pulumi config set --path pganalytics:network.cidr 10.0.0.0/16",
        ],
    ),
    "public-vpc-cidr": (
        "prod",
        None,
        {"network.cidr": "8.8.0.0/16"},
        ["pganalytics:network.cidr must be a private range"],
    ),
    "range-reserved-by-aks": (
        "prod",
        "azure",
        {"network.serviceCidr": "172.30.0.0/16"},
        [
            "pganalytics:network.serviceCidr overlaps 172.30.0.0/16, which Azure clusters reserve",
            "pulumi config set --path pganalytics:network.serviceCidr 10.96.0.0/16",
        ],
    ),
    "range-of-the-gke-control-plane": (
        "enterprise",
        "gcp",
        {"network.podCidr": "172.16.0.0/24"},
        ["pganalytics:network.podCidr overlaps 172.16.0.32/28, which GCP clusters reserve"],
    ),
    "overlap-fix-is-free": (
        "prod",
        "gcp",
        {"network.cidr": "10.64.0.0/16"},
        [
            "pganalytics:network.podCidr overlaps network.cidr",
            "pulumi config set --path pganalytics:network.podCidr 10.128.0.0/14",
        ],
    ),
    "ipv6-endpoint-cidr": (
        "prod",
        None,
        {"endpoint.publicCidrs": ["2001:db8::/32"]},
        ["pganalytics:endpoint.publicCidrs[0] must be an IPv4 CIDR"],
    ),
    "storage-class-the-cloud-owns": (
        "prod",
        "aws",
        {"storage.className": "gp2"},
        [
            "pganalytics:storage.className is a class AWS clusters have already",
            "pulumi config set --path pganalytics:storage.className pganalytics-ssd",
        ],
    ),
    "kubernetes-older-than-the-chart": (
        "prod",
        None,
        {"kubernetesVersion": "1.20"},
        [
            "pganalytics:kubernetesVersion is older than the chart supports",
            "pulumi config rm pganalytics:kubernetesVersion",
        ],
    ),
    "eks-patch-version": (
        "prod",
        "aws",
        {"kubernetesVersion": "1.34.2"},
        [
            "pganalytics:kubernetesVersion takes only major.minor on EKS",
            "pulumi config set pganalytics:kubernetesVersion 1.34",
        ],
    ),
    "aws-reserved-tag-prefix": (
        "prod",
        "aws",
        {"tags": {"aws:owner": "team"}},
        [
            "pganalytics:tags.aws:owner is not a tag key this cloud accepts: 1-128 letters",
            "not starting with aws:",
            "pulumi config rm --path pganalytics:tags.aws:owner",
        ],
    ),
    "gcp-label-value-too-long": (
        "enterprise",
        "gcp",
        {"tags": {"team": "x" * 64}},
        [
            "pganalytics:tags.team is not a label value this cloud accepts: 0-63 lowercase",
            f"pulumi config set --path pganalytics:tags.team {'x' * 63}",
        ],
    ),
    # --- issue 18 item 13: one case per class of free-form string
    "image-tag-with-fullwidth-digits": (
        "prod",
        None,
        {"chart.imageTag": "\uff13.\uff13.0"},
        ["pganalytics:chart.imageTag must be an exact image tag", "3.3.0"],
    ),
    "backup-schedule-out-of-range": (
        "prod",
        None,
        {"chart.values": {"backup": {"schedule": "15 24 * * *"}}},
        [
            "pganalytics:chart.values.backup.schedule has a value outside 0-23 in its hour field",
            'pulumi config set --path pganalytics:chart.values.backup.schedule "15 2 * * *"',
        ],
    ),
    "azure-tags-over-the-limit": (
        "prod",
        "azure",
        {"tags": {f"team{i}": "ops" for i in range(47)}},
        [
            "pganalytics:tags are too many: with the program's own (app, stack, managed-by, "
            "purpose) a resource would carry 51 tags, more than the 50 the cloud allows",
            "pulumi config rm --path pganalytics:tags.team46",
        ],
    ),
    "same-api-and-grafana-host": (
        "prod",
        None,
        {"ingress.apiHost": "pga.example.com", "ingress.grafanaHost": "pga.example.com"},
        ["pganalytics:ingress.grafanaHost must differ from the API host"],
    ),
    "domain-is-an-ip-address": (
        "dev",
        None,
        {"ingress.domain": "10.0.0.1"},
        ["pganalytics:ingress.domain is not a valid DNS name"],
    ),
    "gke-zone-of-another-region": (
        "dev",
        "gcp",
        {"cluster.zone": "europe-west1-zz"},
        [
            "pganalytics:cluster.zone must be a zone of region europe-west1",
            "pulumi config set --path pganalytics:cluster.zone europe-west1-b",
        ],
    ),
    "duplicate-aws-subnets": (
        "prod",
        "aws",
        {
            "network.create": False,
            "network.subnetIds": ["subnet-0123456789abcdef0", "subnet-0123456789abcdef0"],
        },
        ["pganalytics:network.subnetIds[1] is not a valid, distinct AWS subnet"],
    ),
    "azure-subnet-not-a-resource-id": (
        "prod",
        "azure",
        {"network.create": False, "network.subnetIds": ["nodes"]},
        ["pganalytics:network.subnetIds[0] is not a valid, distinct Azure subnet"],
    ),
    "literal-password-in-extra-env": (
        "prod",
        None,
        {"chart.values": {"grafana": {"extraEnv": [{"name": "GF_SMTP_PASSWORD", "value": "x"}]}}},
        [
            "pganalytics:chart.values.grafana.extraEnv[0] gives GF_SMTP_PASSWORD a literal value",
            "valueFrom.secretKeyRef.name",
        ],
    ),
    "password-inside-a-url-in-extra-env": (
        "dev",
        None,
        {"chart.values": {"backend": {"extraEnv": [{"name": "CACHE", "value": "redis://u:pw@h"}]}}},
        ["pganalytics:chart.values.backend.extraEnv[0] gives CACHE a literal value"],
    ),
    # --- off-cluster backups (issue 11a): names the store accepts, keys of the right target
    "backup-retention-zero": (
        "prod",
        "gcp",
        {"backup.retentionDays": 0},
        [
            "pganalytics:backup.retentionDays must be at least 1 (got 0)",
            "pulumi config set --path pganalytics:backup.retentionDays 1",
        ],
    ),
    "backup-version-retention-too-long": (
        "prod",
        "aws",
        {"backup.versionRetentionDays": 400},
        [
            "pganalytics:backup.versionRetentionDays must be at most 365 (got 400)",
            "pulumi config set --path pganalytics:backup.versionRetentionDays 365",
        ],
    ),
    "backup-bucket-name-not-lowercase": (
        "prod",
        "gcp",
        {"backup.bucketName": "Bad_Name"},
        [
            "pganalytics:backup.bucketName must be 3-63",
            "pulumi config set --path pganalytics:backup.bucketName pganalytics-backups-example",
        ],
    ),
    "backup-bucket-name-reserved-by-gcs": (
        "prod",
        "gcp",
        {"backup.bucketName": "goog-backups"},
        ["pganalytics:backup.bucketName must not start with 'goog'"],
    ),
    "backup-bucket-name-reserved-by-s3": (
        "prod",
        "aws",
        {"backup.bucketName": "pga-backups--ol-s3"},
        ["pganalytics:backup.bucketName uses a prefix or suffix S3 reserves"],
    ),
    "backup-bucket-name-is-an-ip": (
        "enterprise",
        "aws",
        {"backup.bucketName": "192.168.5.4"},
        ["pganalytics:backup.bucketName must not look like an IP address"],
    ),
    "backup-azure-container-double-hyphen": (
        "prod",
        "azure",
        {"backup.bucketName": "pga--backups"},
        ["pganalytics:backup.bucketName must be 3-63 lowercase letters, digits or single '-'"],
    ),
    "backup-azure-storage-account-name": (
        "prod",
        "azure",
        {"backup.storageAccountName": "PGA-Backups"},
        [
            "pganalytics:backup.storageAccountName must be 3-24 lowercase letters or digits",
            "pulumi config set --path pganalytics:backup.storageAccountName pgabackups0example",
        ],
    ),
    "backup-storage-account-off-azure": (
        "prod",
        "gcp",
        {"backup.storageAccountName": "abc"},
        [
            "pganalytics:backup.storageAccountName is only used on target azure",
            "pulumi config rm --path pganalytics:backup.storageAccountName",
        ],
    ),
    "backup-endpoint-on-a-cloud": (
        "prod",
        "gcp",
        {"backup.endpoint": "https://s3.example.com"},
        [
            "pganalytics:backup.endpoint is only used on target existing",
            "pulumi config rm --path pganalytics:backup.endpoint",
        ],
    ),
    "backup-endpoint-with-trailing-newline": (
        "prod",
        "existing",
        {
            "backup.endpoint": "https://minio.example.com\n",
            "backup.bucketName": "pga-backups",
            "backup.credentialsSecret": "pga-s3",
        },
        [
            "pganalytics:backup.endpoint must be the http(s) URL of an S3-compatible store",
            "pulumi config set --path pganalytics:backup.endpoint https://s3.example.com",
        ],
    ),
    "backup-endpoint-port-out-of-range": (
        "prod",
        "existing",
        {
            "backup.endpoint": "https://minio.example.com:99999",
            "backup.bucketName": "pga-backups",
            "backup.credentialsSecret": "pga-s3",
        },
        ["pganalytics:backup.endpoint must be the http(s) URL of an S3-compatible store"],
    ),
    "backup-endpoint-without-bucket-and-secret": (
        "prod",
        "existing",
        {"backup.endpoint": "https://minio.example.com:9000"},
        [
            "pganalytics:backup.bucketName is required on target existing when backup.endpoint",
            "pulumi config set --path pganalytics:backup.bucketName pganalytics-backups",
            "pganalytics:backup.credentialsSecret is required on target existing",
            "pulumi config set --path pganalytics:backup.credentialsSecret pganalytics-backup-s3",
        ],
    ),
    "backup-bucket-without-endpoint": (
        "prod",
        "existing",
        {"backup.bucketName": "pga-backups", "backup.region": "eu-central-1"},
        [
            "pganalytics:backup.bucketName needs backup.endpoint on target existing",
            "pganalytics:backup.region needs backup.endpoint on target existing",
            "pulumi config set --path pganalytics:backup.endpoint https://s3.example.com",
        ],
    ),
    "backup-credentials-secret-not-a-name": (
        "prod",
        "existing",
        {
            "backup.endpoint": "https://minio.example.com:9000",
            "backup.bucketName": "pga-backups",
            "backup.credentialsSecret": "My_S3_Keys",
        },
        [
            "pganalytics:backup.credentialsSecret is not a valid Secret name",
            "pulumi config set --path pganalytics:backup.credentialsSecret pganalytics-backup-s3",
        ],
    ),
    # --- backups immutable and restored with their own identity (issue 18 item 6)
    "backup-lock-longer-than-retention": (
        "prod",
        "aws",
        {"backup.lockDays": 40},
        [
            "pganalytics:backup.lockDays must be at most backup.retentionDays (30; got 40)",
            "pulumi config set --path pganalytics:backup.lockDays 30",
        ],
    ),
    "backup-lock-beyond-gcs-soft-delete": (
        "prod",
        "gcp",
        {"backup.retentionDays": 365, "backup.lockDays": 120},
        [
            "pganalytics:backup.lockDays must be at most 90 on gcp",
            "pulumi config set --path pganalytics:backup.lockDays 90",
        ],
    ),
    "backup-lock-mode-on-gcp": (
        "enterprise",
        "gcp",
        {"backup.lockMode": "compliance"},
        [
            "pganalytics:backup.lockMode is only used on aws and existing (target is gcp)",
            "pulumi config set --path pganalytics:backup.lockMode governance",
        ],
    ),
    "backup-restore-keys-on-a-cloud": (
        "prod",
        "azure",
        {"backup.restoreCredentialsSecret": "pga-restore-s3"},
        ["pganalytics:backup.restoreCredentialsSecret is only used on target existing"],
    ),
    # --- the Kubernetes API endpoint on a cloud (issue 12)
    "endpoint-open-to-the-internet": (
        "prod",
        None,
        {"endpoint.publicCidrs": ["203.0.113.0/24", "0.0.0.0/0"]},
        [
            "pganalytics:endpoint.publicCidrs[1] opens the Kubernetes API to the whole internet",
            "pulumi config set --path pganalytics:endpoint.acknowledgePublicInternet true",
        ],
    ),
    # Issue 18 item 5: the guard judged each range alone, so two halves passed.
    "endpoint-open-to-the-internet-by-halves": (
        "prod",
        "aws",
        {"endpoint.publicCidrs": ["0.0.0.0/1", "128.0.0.0/1"]},
        [
            "pganalytics:endpoint.publicCidrs[0] opens the Kubernetes API to 50% of the IPv4 "
            "internet (a public range shorter than /8) (0.0.0.0/1)",
            "pulumi config set --path pganalytics:endpoint.acknowledgePublicInternet true",
        ],
    ),
    "endpoint-open-by-ranges-that-cover-most-of-the-internet": (
        "enterprise",
        "gcp",
        {"endpoint.publicCidrs": [f"{n}.0.0.0/8" for n in range(11, 140)]},  # 129 of 256
        [
            "pganalytics:endpoint.publicCidrs together open the Kubernetes API to 50% of the "
            "IPv4 internet",
            "pulumi config set --path pganalytics:endpoint.acknowledgePublicInternet true",
        ],
    ),
    "endpoint-open-to-the-ipv6-internet": (
        "enterprise",
        "gcp",
        {"endpoint.publicCidrs": ["::/0"], "endpoint.acknowledgePublicInternet": True},
        ["pganalytics:endpoint.publicCidrs[0] must be an IPv4 CIDR"],
    ),
    "endpoint-without-cidrs": (
        "prod",
        "azure",
        {"endpoint.publicCidrs": []},
        [
            "pganalytics:endpoint.publicCidrs must list who may reach the public API endpoint",
            "pulumi config set --path 'pganalytics:endpoint.publicCidrs[0]'",
        ],
    ),
    "cluster-admin-session-arn": (
        "prod",
        "aws",
        {"clusterAdmins.aws": ["arn:aws:sts::123456789012:assumed-role/Deployer/me@example.com"]},
        [
            "pganalytics:clusterAdmins.aws[0] is a session ARN (it changes per login); "
            "use the role ARN",
            "pulumi config set --path pganalytics:clusterAdmins.aws[0] "
            "arn:aws:iam::123456789012:role/Deployer",
        ],
    ),
    "cluster-admin-email-without-kind": (
        "enterprise",
        "gcp",
        {"clusterAdmins.gcp": ["platform-admins@example.com"]},
        [
            "pganalytics:clusterAdmins.gcp[0] is not user:, group: or serviceAccount:<email>",
            "pulumi config set --path pganalytics:clusterAdmins.gcp[0] "
            "group:platform-admins@example.com",
        ],
    ),
    "cluster-admin-checked-on-any-target": (
        "prod",
        "aws",
        {"clusterAdmins.azure": ["platform-admins"]},
        ["pganalytics:clusterAdmins.azure[0] is not an Entra object id (a GUID)"],
    ),
    "cluster-admin-repeated": (
        "prod",
        "azure",
        {
            "clusterAdmins.azure": [
                "22222222-2222-2222-2222-222222222222",
                "22222222-2222-2222-2222-222222222222",
            ]
        },
        [
            "pganalytics:clusterAdmins.azure[1] repeats '22222222-2222-2222-2222-222222222222'",
            "fix: pulumi config rm --path pganalytics:clusterAdmins.azure[1]",
        ],
    ),
    "master-cidr-not-a-28": (
        "dev",
        "gcp",
        {"cluster.masterCidr": "172.16.0.0/24"},
        [
            "pganalytics:cluster.masterCidr must be an IPv4 /28 (got '172.16.0.0/24')",
            "pulumi config set --path pganalytics:cluster.masterCidr 172.16.0.32/28",
        ],
    ),
    "master-cidr-overlaps-the-pods": (
        "enterprise",
        "gcp",
        {"cluster.masterCidr": "10.64.0.16/28"},
        [
            "pganalytics:cluster.masterCidr overlaps network.podCidr (10.64.0.16/28 and "
            "10.64.0.0/14)",
            "pulumi config set --path pganalytics:cluster.masterCidr 172.16.0.32/28",
        ],
    ),
    "master-cidr-fix-is-free": (
        "prod",
        "gcp",
        {"network.cidr": "172.16.0.0/16", "cluster.masterCidr": "172.16.0.32/28"},
        [
            "pganalytics:cluster.masterCidr overlaps network.cidr (172.16.0.32/28 and "
            "172.16.0.0/16)",
            "pulumi config set --path pganalytics:cluster.masterCidr 192.168.255.240/28",
        ],
    ),
    # --- credential rotation (issue 11b)
    "rotation-of-the-encryption-key": (
        "prod",
        None,
        {"credentials.rotation": {"encryption-key": 1}},
        [
            "pganalytics:credentials.rotation.encryption-key cannot be rotated",
            "pulumi config rm --path pganalytics:credentials.rotation.encryption-key",
        ],
    ),
    "rotation-of-a-mistyped-credential": (
        "dev",
        None,
        {"credentials.rotation": {"redis-pasword": 2}},
        [
            "pganalytics:credentials.rotation.redis-pasword names no rotatable credential",
            "pulumi config set --path pganalytics:credentials.rotation.redis-password 2",
        ],
    ),
    "rotation-generation-out-of-range": (
        "enterprise",
        None,
        {"credentials.rotation": {"jwt-secret": 1000001}},
        [
            "pganalytics:credentials.rotation.jwt-secret must be a whole number from 0 to "
            "1000000 (got 1000001)",
            "pulumi config set --path pganalytics:credentials.rotation.jwt-secret 1",
        ],
    ),
    # CloudNativePG (issue 22)
    "database-mode-unknown": (
        "prod",
        None,
        {"database.mode": "cnpg"},
        ["pganalytics:database.mode must be bundled, cloudnativepg or external (got 'cnpg')"],
    ),
    "cnpg-three-instances-on-one-zone": (
        "enterprise",
        None,
        {"cluster.zonal": True},
        [
            "pganalytics:database.instances spreads 3 instances across zones, but the node pool "
            "has one zone",
            "pulumi config set --path pganalytics:cluster.zonal false",
        ],
    ),
    "cnpg-fewer-nodes-than-instances": (
        "prod",
        None,
        {"nodePool.maxSize": 2, "nodePool.minSize": 1, "nodePool.desiredSize": 2},
        [
            "pganalytics:database.instances needs a node per instance (3), but nodePool.maxSize",
            "pulumi config set --path pganalytics:nodePool.maxSize 3",
        ],
    ),
    "cnpg-sync-replicas-above-standbys": (
        "prod",
        None,
        {"database.minSyncReplicas": 3},
        [
            "pganalytics:database.minSyncReplicas needs more standbys than instances - 1 = 2",
            "pulumi config set --path pganalytics:database.minSyncReplicas 2",
        ],
    ),
    "cnpg-restore-target-in-the-future": (
        "prod",
        None,
        {
            "database.restore": {
                "fromCluster": "pganalytics-db",
                "targetTime": "2999-01-01T00:00:00Z",
            },
            "database.clusterName": "pganalytics-db-2",
        },
        ["pganalytics:database.restore.targetTime is in the future"],
    ),
    "cnpg-restore-time-without-zone": (
        "prod",
        None,
        {
            "database.restore": {"fromCluster": "pganalytics-db", "targetTime": "2026-01-01 02:15"},
            "database.clusterName": "pganalytics-db-2",
        },
        ["pganalytics:database.restore.targetTime must be an RFC 3339 time with a zone"],
    ),
    "cnpg-restore-with-backups-off": (
        "prod",
        None,
        {
            "database.restore": {"fromCluster": "pganalytics-db"},
            "database.clusterName": "pganalytics-db-2",
            "chart.values": {"backup": {"enabled": False}},
        },
        [
            "pganalytics:database.restore.fromCluster needs the backups on",
            "pulumi config set --path pganalytics:chart.values.backup.enabled true",
        ],
    ),
    "cnpg-restore-into-itself": (
        "prod",
        None,
        {"database.restore": {"fromCluster": "pganalytics-db"}},
        [
            "pganalytics:database.restore.fromCluster names this cluster",
            "pulumi config set --path pganalytics:database.clusterName pganalytics-db-restored",
        ],
    ),
    "cnpg-restore-time-without-source": (
        "prod",
        None,
        {"database.restore": {"targetTime": "2026-01-01T02:15:00Z"}},
        ["pganalytics:database.restore.fromCluster is required with restore.targetTime"],
    ),
    "bundled-mode-with-bundled-off": (
        "dev",
        None,
        {
            "chart.values": {
                "timescaledb": {"enabled": False},
                "externalDatabase": {"host": "db.example.com"},
            }
        },
        [
            "pganalytics:database.mode is bundled, but chart.values.timescaledb.enabled is false",
            "pulumi config set --path pganalytics:database.mode external",
        ],
    ),
}

# The cloud targets' keys (issue 21): what each cloud would refuse, refused first.
CASES.update(
    {
        "aks-patch-version": (
            "prod",
            "azure",
            {"kubernetesVersion": "1.34.2"},
            [
                "pganalytics:kubernetesVersion takes only major.minor on AKS",
                "pulumi config set pganalytics:kubernetesVersion 1.34",
            ],
        ),
        "private-endpoint-without-deploy-networks": (
            "prod",
            "aws",
            {"endpoint.publicAccess": False},
            [
                "pganalytics:endpoint.privateCidrs must list the networks that deploy",
                "pulumi config set --path 'pganalytics:endpoint.privateCidrs[0]'",
            ],
        ),
        "private-cidrs-on-aks": (
            "prod",
            "azure",
            {"endpoint.publicAccess": False, "endpoint.privateCidrs": ["10.99.0.0/24"]},
            [
                "pganalytics:endpoint.privateCidrs is not used on azure",
                "pulumi config rm --path pganalytics:endpoint.privateCidrs",
            ],
        ),
        "private-cidr-not-private": (
            "enterprise",
            "gcp",
            {"endpoint.privateCidrs": ["8.8.8.0/24"]},
            [
                "pganalytics:endpoint.privateCidrs[0] must be a private range",
                "pulumi config set --path pganalytics:endpoint.privateCidrs[0] 10.0.0.0/8",
            ],
        ),
        "gke-hyperdisk-family-on-pd": (
            "enterprise",
            "gcp",
            {"nodePool.machineType": "c4-standard-8"},
            [
                "pganalytics:storage.type is pd-balanced, which c4 machines cannot attach",
                "pulumi config set --path pganalytics:storage.type hyperdisk-balanced",
            ],
        ),
        "eks-fewer-nodes-than-zones": (
            "prod",
            "aws",
            {"nodePool.maxSize": 2, "nodePool.minSize": 1, "nodePool.desiredSize": 1},
            [
                "pganalytics:nodePool.maxSize must be at least the 3 zones on EKS",
                "pulumi config set --path pganalytics:nodePool.maxSize 3",
            ],
        ),
        "gke-maintenance-window-too-short": (
            "enterprise",
            "gcp",
            {"maintenance.days": ["Sunday"], "maintenance.durationHours": 6},
            [
                "pganalytics:maintenance.durationHours gives GKE 24 hours in 32 days",
                "pulumi config set --path pganalytics:maintenance.durationHours 12",
            ],
        ),
        "maintenance-exclusion-too-long": (
            "prod",
            None,
            {
                "maintenance.exclusions": [
                    {"name": "q4", "start": "2026-10-01T00:00:00Z", "end": "2026-12-01T00:00:00Z"}
                ]
            },
            [
                "pganalytics:maintenance.exclusions[0].end ends more than 30 days after start",
                "pulumi config set --path pganalytics:maintenance.exclusions[0].end "
                "2026-10-31T00:00:00Z",
            ],
        ),
        "eks-pins-malformed": (
            "prod",
            "aws",
            {
                "cluster.logRetentionDays": 100,
                "cluster.addonVersions": {"vpc-cnii": "v1.20.1-eksbuild.1"},
            },
            [
                "pganalytics:cluster.logRetentionDays must be one of 30, 60, 90, 120, 180, 365",
                "pulumi config set --path pganalytics:cluster.logRetentionDays 90",
                "pganalytics:cluster.addonVersions.vpc-cnii is not an add-on the program manages",
            ],
        ),
        "gke-group-admin-without-groups-for-rbac": (
            "enterprise",
            "gcp",
            {"clusterAdmins.gcp": ["group:admins@example.com"]},
            [
                "pganalytics:cluster.rbacSecurityGroup must name the Google Groups for RBAC",
                "pulumi config set --path pganalytics:cluster.rbacSecurityGroup "
                "gke-security-groups@example.com",
            ],
        ),
        "azure-zone-count": (
            "prod",
            "azure",
            {"network.zoneCount": 4},
            [
                "pganalytics:network.zoneCount must be at most 3 on azure",
                "pulumi config set --path pganalytics:network.zoneCount 3",
            ],
        ),
    }
)


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_config_fails_before_any_resource(case):
    stack, target, changes, expected = CASES[case]
    config = stack_config(stack, target)
    for key, value in changes.items():
        _set(config, key, value)
    result = run_program(stack, config)
    assert result["error_type"] == "ConfigError", result["error"]
    message = result["error"]
    for text in expected:
        assert text in message, f"{text!r} not in:\n{message}"
    assert "; fix: " in message
    assert result["resources"] == [], "resources were registered before the config was checked"


def test_kubeconfig_must_be_secret():
    config = stack_config("dev")
    kubeconfig = (
        "apiVersion: v1\ncurrent-context: c\nclusters: [{name: c, cluster: {server: 'https://c'}}]\n"
        "contexts: [{name: c, context: {cluster: c}}]\nusers: []\n"
    )
    config["pganalytics:kubeconfig"] = kubeconfig
    result = run_program("dev", config)
    assert result["error_type"] == "ConfigError"
    assert (
        "pganalytics:kubeconfig holds credentials and must be stored encrypted" in result["error"]
    )
    assert "pulumi config set --secret pganalytics:kubeconfig" in result["error"]
    assert result["resources"] == []
    # The same value set with --secret is accepted.
    ok = run_program("dev", config, secret_keys=("pganalytics:kubeconfig",))
    assert ok["error"] is None, ok["error"]
    assert ok["outputs"]["kubeconfig"]["secret"]


def test_all_problems_are_reported_in_one_error():
    config = stack_config("prod", "aws")
    for key, value in {
        "chart.values": {"backend": {"replicaCount": -1}},
        "nodePool.minSize": 5,
        "nodePool.maxSize": 3,
        "network.cidr": "nope",
        "ingress.acmeEmail": "",
        "regoin": "eu-west-1",
    }.items():
        _set(config, key, value)
    result = run_program("prod", config)
    message = result["error"]
    assert message.startswith("invalid configuration for stack 'prod' (5 problems)")
    for key in (
        "nodePool.minSize",
        "network.cidr",
        "ingress.acmeEmail",
        "regoin",
        "chart.values.backend.replicaCount",
    ):
        assert f"pganalytics:{key}" in message
    assert "did you mean pganalytics:region" in message
    assert result["resources"] == []


def test_there_are_at_least_25_cases():
    assert len(CASES) >= 25


def test_messages_never_quote_a_secret_value():
    config = stack_config("prod", "aws")
    config["pganalytics:chart"] = {"values": {"backend": {"replicaCount": "s3cr3t-value"}}}
    result = run_program("prod", config, secret_keys=("pganalytics:chart",))
    assert result["error_type"] == "ConfigError"
    assert "pganalytics:chart.values.backend.replicaCount" in result["error"]
    assert "s3cr3t-value" not in result["error"]
    assert result["resources"] == []


LONG_SECRET = "pga-" + "".join(f"{i:03d}Zq" for i in range(60))  # 304 characters, no repeats


def _secret_problems(stack: str, config: dict, secret_keys: set[str]) -> str:
    """The whole ConfigError message, keys in `secret_keys` set with --secret."""
    from components import values
    from components.settings import ConfigError, build_settings

    bare = {k.split(":", 1)[1]: v for k, v in config.items() if k.startswith("pganalytics:")}
    with pytest.raises(ConfigError) as error:
        build_settings(stack, bare, secret_keys, set(config), chart_check=values.problems)
    return str(error.value)


def _shown_part(secret: str, message: str, width: int = 8) -> str:
    """The first `width`-character piece of `secret` that `message` shows, or ""."""
    return next(
        (
            secret[i : i + width]
            for i in range(len(secret) - width + 1)
            if secret[i : i + width] in message
        ),
        "",
    )


@pytest.mark.parametrize(
    ("target", "key", "value"),
    [
        # The chart schema's message quoted the value and was cut to 157 characters before
        # the whole secret was looked for: the first 150 characters were printed.
        ("aws", "chart", {"values": {"backend": {"replicaCount": LONG_SECRET}}}),
        # A tag value longer than GCP allows: the fix suggested its first 63 characters.
        ("gcp", "tags", {"team": LONG_SECRET}),
    ],
)
def test_no_part_of_a_long_secret_is_shown(target, key, value):
    """Issue 18 item 4: nothing is cut from a message before the secrets are hidden, and a fix
    never suggests a value derived from a secret one."""
    config = stack_config("prod", target)
    config[f"pganalytics:{key}"] = value
    message = _secret_problems("prod", config, {key})
    assert f"pganalytics:{key}." in message, message
    assert not _shown_part(LONG_SECRET, message), message


def test_a_short_secret_is_not_quoted_either():
    """Values of fewer than 4 characters were never looked for: `(got 'k3y')` was printed."""
    config = stack_config("prod", "aws")
    config["pganalytics:chart"] = {"values": {"backend": {"replicaCount": "k3y"}}}
    config["pganalytics:ingress"] = {**config["pganalytics:ingress"], "acmeIssuer": "pr0"}
    message = _secret_problems("prod", config, {"chart", "ingress"})
    assert "pganalytics:chart.values.backend.replicaCount" in message
    assert "pganalytics:ingress.acmeIssuer must be staging or production" in message
    assert "k3y" not in message and "pr0" not in message, message


def test_the_endpoint_guard_judges_ranges_together():
    """A /8 of a company's own range or a private /7 is not the internet; the union of many
    public ranges is judged as a whole, and the acknowledgement lets any of it through."""
    config = stack_config("prod", "azure")
    _set(config, "endpoint.publicCidrs", ["17.0.0.0/8", "10.0.0.0/8", "203.0.113.0/24"])
    assert _problems("prod", config) == []
    halves = [f"{n}.0.0.0/8" for n in range(11, 139)]  # 128 public /8s: half the internet
    _set(config, "endpoint.publicCidrs", [*halves, "10.0.0.0/8"])
    assert _problems("prod", config) == []  # exactly half is not "most"
    _set(config, "endpoint.publicCidrs", [*halves, "200.0.0.0/8"])
    assert [p.split(" ", 1)[0] for p in _problems("prod", config)] == [
        "pganalytics:endpoint.publicCidrs"
    ]
    _set(config, "endpoint.acknowledgePublicInternet", True)
    assert _problems("prod", config) == []
    _set(config, "endpoint.publicCidrs", ["0.0.0.0/1", "128.0.0.0/1"])
    assert _problems("prod", config) == []


def test_acknowledged_public_endpoint_is_accepted():
    config = stack_config("prod", "aws")
    _set(config, "endpoint.publicCidrs", ["0.0.0.0/0"])
    _set(config, "endpoint.acknowledgePublicInternet", True)
    result = run_program("prod", config)
    assert result["error"] is None, result["error"]
    cluster = next(r for r in result["resources"] if r["type"] == "aws:eks/cluster:Cluster")
    assert cluster["inputs"]["vpcConfig"]["publicAccessCidrs"] == ["0.0.0.0/0"]


def test_kube_context_must_be_in_the_kubeconfig():
    config = stack_config("dev")
    config["pganalytics:kubeconfig"] = "clusters: []\ncontexts: [{name: kind-a}]\n"
    config["pganalytics:kubeContext"] = "kind-b"
    result = run_program("dev", config, secret_keys=("pganalytics:kubeconfig",))
    assert result["error_type"] == "ConfigError"
    assert (
        "pganalytics:kubeContext names context 'kind-b', which pganalytics:kubeconfig does not "
        "have (contexts: kind-a)"
    ) in result["error"]
    assert result["error"].count("names context") == 1  # a rule across keys reports once
    assert "pulumi config set pganalytics:kubeContext kind-a" in result["error"]
    assert result["resources"] == []


def test_a_set_master_cidr_is_the_range_the_network_avoids():
    """GKE's control plane takes cluster.masterCidr: once it is set, the default range is free
    for the network, and an overlap with the set range is reported once, on the set key."""
    config = stack_config("enterprise", "gcp")
    _set(config, "network.podCidr", "172.16.0.0/24")
    assert any(
        "network.podCidr overlaps 172.16.0.32/28" in p for p in _problems("enterprise", config)
    )
    _set(config, "cluster.masterCidr", "172.16.8.0/28")
    assert _problems("enterprise", config) == []
    _set(config, "cluster.masterCidr", "172.16.0.16/28")
    problems = _problems("enterprise", config)
    assert len(problems) == 1, problems
    assert problems[0].startswith("pganalytics:cluster.masterCidr overlaps network.podCidr")
    # Another cloud has no control plane range to avoid.
    aws = stack_config("enterprise", "aws")
    _set(aws, "network.podCidr", "172.16.0.0/24")
    _set(aws, "cluster.masterCidr", "172.16.0.16/28")
    assert _problems("enterprise", aws) == []


# --- every fix is itself valid: applying the suggested `pulumi config set` clears the key ---

SET = re.compile(r"pulumi config set(?: --path)? '?pganalytics:([^\s']+)'? (\"[^\"]*\"|\S+)")


def _problems(stack: str, config: dict) -> list[str]:
    """The settings' verdict in this process (no Pulumi engine): [] or the problem lines."""
    from components import values
    from components.settings import ConfigError, build_settings

    bare = {k.split(":", 1)[1]: v for k, v in config.items() if k.startswith("pganalytics:")}
    try:
        build_settings(stack, bare, set(), set(config), chart_check=values.problems)
    except ConfigError as error:
        return error.problems
    return []


def _apply(config: dict, key: str, raw: str) -> None:
    """`pulumi config set --path pganalytics:<key> <raw>`: typed like the CLI's --path."""
    value = raw[1:-1] if raw.startswith('"') else raw
    with contextlib.suppress(ValueError):
        value = json.loads(raw) if not raw.startswith('"') else value
    head, _, rest = key.partition(".")
    parts = [head, *re.findall(r"[^.\[\]]+|\[\d+\]", rest)] if rest else [head]
    node, name = config, f"pganalytics:{parts[0]}"
    for part in parts[1:]:
        if isinstance(name, int):  # a list item holding an object: `exclusions[0].end`
            node.extend([None] * (name + 1 - len(node)))
            current = node[name]
        else:
            current = node.get(name)
        node[name] = copy.deepcopy(current) or ([] if part.startswith("[") else {})
        node, name = node[name], int(part[1:-1]) if part.startswith("[") else part
    if isinstance(name, int):
        node.extend([None] * (name + 1 - len(node)))
    node[name] = value


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_suggested_value_is_accepted(case):
    stack, target, changes, _ = CASES[case]
    config = stack_config(stack, target)
    for key, value in changes.items():
        _set(config, key, value)
    for line in _problems(stack, config):
        key, fix = re.match(r"(\S+) .*?; fix: (.*)", line).groups()
        sets = [m for m in SET.findall(fix) if "<" not in m[1] and "$(" not in m[1]]
        if not sets or " rm " in fix or not key.startswith("pganalytics:"):
            continue  # a placeholder, a removal (back to a default) or a foreign key
        fixed = copy.deepcopy(config)
        for path, raw in sets:
            _apply(fixed, path, raw)
        again = [p for p in _problems(stack, fixed) if p.split(" ", 1)[0] == key]
        assert not again, f"the fix of {key} ({fix}) is refused in turn: {again}"


def test_fix_commands_never_quote_a_secret_value():
    """A mistyped key set with --secret: the fix moves the value without printing it."""
    config = stack_config("dev")
    config["pganalytics:kubeconfg"] = "apiVersion: v1\nclusters: [{name: s3cr3t-cluster}]\n"
    result = run_program("dev", config, secret_keys=("pganalytics:kubeconfg",))
    assert "pganalytics:kubeconfg is not a known setting" in result["error"]
    assert "did you mean pganalytics:kubeconfig" in result["error"]
    assert "pulumi config set --secret pganalytics:kubeconfig <value>" in result["error"]
    assert "s3cr3t" not in result["error"]
