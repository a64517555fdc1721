"""Target `existing`: the allocatable of the cluster's nodes, read with `kubectl get nodes`
through the stack's kubeconfig and context, bounded by a short timeout so a preview never
waits on an unreachable cluster. pulumi-kubernetes has no invoke that lists nodes, and a
`Node.get` needs names the program does not know; kubectl is already a tool of the project
(`make setup` installs it). Unreachable, or no kubectl: the check is skipped with a note."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass

from components.capacity.data import cpu_millis, mem_mib
from components.capacity.fit import WARN_HEADROOM, expand
from components.capacity.workloads import Workload
from components.settings.base import PROJECT_ROOT

TIMEOUT_SECONDS = 5


@dataclass(frozen=True)
class ClusterNode:
    name: str
    cpu_m: int
    mem_mib: float
    pods: int


def kubectl() -> str | None:
    return shutil.which("kubectl") or shutil.which(
        "kubectl", path=str(PROJECT_ROOT / ".tools" / "bin")
    )


def parse_nodes(document: dict) -> list[ClusterNode]:
    """Schedulable nodes of a `kubectl get nodes -o json` document, with their allocatable."""
    nodes = []
    for item in document.get("items") or []:
        spec, status = item.get("spec") or {}, item.get("status") or {}
        taints = [t for t in spec.get("taints") or [] if t.get("effect") == "NoSchedule"]
        if spec.get("unschedulable") or taints:
            continue
        alloc = status.get("allocatable") or {}
        nodes.append(
            ClusterNode(
                (item.get("metadata") or {}).get("name", ""),
                cpu_millis(alloc.get("cpu")),
                mem_mib(alloc.get("memory")),
                int(alloc.get("pods") or 0),
            )
        )
    return nodes


def read_nodes(kubeconfig: str, context: str) -> tuple[list[ClusterNode] | None, str]:
    """(nodes, "") or (None, why the cluster could not be read). `kubeconfig`: the document set
    in pganalytics:kubeconfig ("" = the ambient one); it is written to a private temporary file
    for kubectl and removed, and never printed."""
    binary = kubectl()
    if not binary:
        return None, "kubectl is not installed (make setup installs it)"
    args = [binary, "get", "nodes", "-o", "json", f"--request-timeout={TIMEOUT_SECONDS}s"]
    if context:
        args += ["--context", context]
    path = ""
    try:
        if kubeconfig:
            fd, path = tempfile.mkstemp(prefix="pganalytics-kubeconfig-")
            with os.fdopen(fd, "w") as handle:
                handle.write(kubeconfig)
            args += ["--kubeconfig", path]
        done = subprocess.run(
            args, capture_output=True, text=True, timeout=TIMEOUT_SECONDS + 2, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"the cluster did not answer ({type(exc).__name__})"
    finally:
        if path:
            os.unlink(path)
    if done.returncode != 0:
        first = (done.stderr.strip().splitlines() or ["no message"])[-1][:200]
        return None, f"kubectl get nodes failed: {first}"
    try:
        return parse_nodes(json.loads(done.stdout)), ""
    except (ValueError, TypeError) as exc:
        return None, f"unreadable node list ({exc})"


def existing_fit(nodes: list[ClusterNode], workloads: list[Workload]) -> tuple[str, list[str]]:
    """(summary, warnings) of the workload on the cluster's nodes. The cluster is not the
    program's to size, and may scale out: a misfit is a warning, not a refusal."""
    pods = expand(workloads)
    per_node = [w for w in workloads if w.per_node]
    n = len(nodes)
    cpu = sum(p.cpu_m for p in pods) + n * sum(w.cpu_m for w in per_node)
    mem = sum(p.mem_mib for p in pods) + n * sum(w.mem_mib for w in per_node)
    count = len(pods) + n * len(per_node)
    alloc_cpu, alloc_mem = sum(x.cpu_m for x in nodes), sum(x.mem_mib for x in nodes)
    alloc_pods = sum(x.pods for x in nodes)
    used = max(cpu / max(alloc_cpu, 1), mem / max(alloc_mem, 1), count / max(alloc_pods, 1))
    headroom = 1 - used
    summary = (
        f"existing cluster, {n} schedulable nodes: requests {cpu / 1000:.2f} CPU / "
        f"{mem / 1024:.1f} GiB / {count} pods vs allocatable {alloc_cpu / 1000:.2f} CPU / "
        f"{alloc_mem / 1024:.1f} GiB / {alloc_pods} pods; headroom {headroom:.0%} (the cluster's "
        "other workloads not counted)"
    )
    biggest_cpu, biggest_mem = max(x.cpu_m for x in nodes), max(x.mem_mib for x in nodes)
    too_big = [p.name for p in pods if p.cpu_m > biggest_cpu or p.mem_mib > biggest_mem]
    warnings = []
    if too_big or headroom < 0:
        larger = f" ({too_big[0]} is larger than any node)" if too_big else ""
        warnings.append(
            f"the workload does not fit the existing cluster's nodes{larger}; its pods would "
            "stay Pending unless the cluster scales out"
        )
    elif headroom < WARN_HEADROOM:
        warnings.append(f"the existing cluster leaves {headroom:.0%} headroom (under 20%)")
    for w in workloads:
        if w.one_per_node and w.replicas > n:
            warnings.append(
                f"{w.kind} {w.name} runs {w.replicas} pods, one per node (required "
                f"anti-affinity), on {n} schedulable nodes: {w.replicas - n} would stay Pending"
            )
    return summary, warnings
