"""pgAnalytics on Kubernetes: settings -> cluster target -> platform -> release -> outputs.

This file only composes; each step lives in components/ (see docs/ARCHITECTURE.md).
"""
# ruff: noqa: E402 (the two settings below must come before the imports)

import gc
import os

# What every preview and update pays before and after its resources (docs/PERFORMANCE.md,
# "Start-up"): no cyclic garbage collection while the SDKs' large modules load and the
# resources register; at the end those objects are frozen, so neither a later collection nor
# the interpreter's exit (about 1 s here) walks them again.
gc.disable()
# The v4 Chart returns each object it deploys as a resource reference; the SDK would rebuild
# every one (a getResource call to the engine and the import of its kind's SDK module) for an
# output this program never reads. Without resource references it holds their URNs.
os.environ["PULUMI_DISABLE_RESOURCE_REFERENCES"] = "true"

import pulumi

from components import capacity, database, volumes
from components.backup import build_backup
from components.credentials import (
    Credentials,
    CredentialsArgs,
    check_rotation,
    rotating_keys,
)
from components.platform import Platform, PlatformArgs
from components.previous import read_previous_state, record_cluster
from components.previous import record as previous_record
from components.release import PgAnalyticsRelease, ReleaseArgs
from components.settings import load_settings
from components.snapshots import build_snapshot_class, snapshot_values
from components.targets import build_target
from components.values import problems as chart_problems

# Fails here, before any resource, with one message listing every bad key (the chart's
# schema verdict on pganalytics:chart.values included).
settings = load_settings(chart_check=chart_problems)
# Capacity and cost, before any resource too: pods that cannot be scheduled on the node pool at
# its maximum are refused with the key to change; the estimate is a preview line and an output.
sizing = capacity.assess(settings)
capacity.raise_problems(settings, sizing)
capacity.log(sizing)
# Day 2: what the last update left live. A shrink or a StorageClass change of a live volume
# fails here too, before any resource.
previous = read_previous_state()
volume_plan = volumes.plan(settings, previous)
check_rotation(settings, previous.rotation)
# A protected stack does not leave its bundled database by a plain config change.
database.check_mode_change(settings, previous)
rotating = rotating_keys(settings.credentials.rotation, previous.rotation)

target = build_target(settings, previous)

platform = Platform(
    "platform",
    PlatformArgs(
        settings=settings,
        provider=target.provider,
        lb_annotations=target.lb_annotations,
        workload_dependencies=target.workload_dependencies,
    ),
)

credentials = Credentials(
    "credentials",
    CredentialsArgs(
        namespace=platform.namespace,
        provider=target.provider,
        protect=settings.protect,
        rotation=settings.credentials.rotation,
        rotating=rotating,
        role_secrets=database.role_secrets(settings),
    ),
)

# Off-cluster backups: the bucket and the identity of the backup job (None when backups are off).
backup = build_backup(settings, target, platform.namespace)

# The VolumeSnapshotClass of the chart's scheduled snapshots (None unless they are on and the
# config names no class).
snapshot_class = build_snapshot_class(settings, target)

release_deps = [platform.app_namespace, credentials.secret, *target.workload_dependencies]
if target.storage_class is not None:
    release_deps.append(target.storage_class)
if platform.issuer is not None:
    release_deps.append(platform.issuer)
if backup is not None:
    # The bucket and the identity binding exist before a backup job can run.
    release_deps.append(backup)
if snapshot_class is not None:
    release_deps.append(snapshot_class)
# The CloudNativePG operator, its CRDs and the Barman Cloud plugin, when the program installs them.
release_deps += platform.database_operator

release = PgAnalyticsRelease(
    "pganalytics",
    ReleaseArgs(
        settings=settings,
        provider=target.provider,
        namespace=platform.namespace,
        depends_on=release_deps,
        backup_values=backup.chart_values if backup else None,
        snapshot_values=snapshot_values(snapshot_class),
        cnpg_values=backup.cnpg_values if backup else None,
        credentials_version=credentials.version,
        volumes=volume_plan,
    ),
)

pulumi.export("target", settings.target)
pulumi.export("clusterName", target.cluster_name)
pulumi.export("kubeconfig", pulumi.Output.secret(target.kubeconfig))
pulumi.export("namespace", platform.namespace)
pulumi.export("apiUrl", settings.api_url)
pulumi.export("grafanaUrl", settings.grafana_url)
pulumi.export("appUrl", settings.app_url)
pulumi.export("ingressAddress", platform.ingress_address)
pulumi.export("backupBucket", backup.bucket_name if backup else None)
pulumi.export("estimatedMonthlyCost", sizing.estimate.output())
# Read back by the next run.
previous_record(settings, credentials.secret, release.claim_patches, volume_plan)
record_cluster(target.record)

# Everything is registered: see the top of this file.
gc.freeze()
gc.enable()
