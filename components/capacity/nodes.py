"""What one node of the pool offers to pods: the machine type's vCPU and memory (data/
machines.yaml) less what each cloud reserves by its documented formula (kube-reserved,
system-reserved, the hard eviction threshold), and the pods it admits.

Sources (also in docs/CAPACITY_COST.md):
- EKS, Amazon Linux 2023 (nodeadm, internal/kubelet/config.go in awslabs/amazon-eks-ami):
  kube-reserved memory 11 MiB x maxPods + 255 MiB, CPU 6% of the first core, 1% of the second,
  0.5% of cores 3-4, 0.25% above; evictionHard memory.available 100Mi; maxPods from the VPC CNI:
  ENIs x (IPv4 per ENI - 1) + 2.
- GKE (cloud.google.com/kubernetes-engine/docs/concepts/plan-node-sizes): memory 255 MiB below
  1 GiB, else 25% of the first 4 GiB, 20% of the next 4, 10% of the next 8, 6% of the next 112,
  2% above 128; CPU as EKS; eviction threshold 100 MiB; 110 pods per node by default.
- AKS (learn.microsoft.com/azure/aks/node-resource-reservations): CPU by core count (60m for 1
  core ... 740m for 64); 1.29 and later: memory min(20 MB x maxPods + 50 MB, 25% of memory) and
  eviction 100Mi; before 1.29: GKE's memory tiers and eviction 750Mi. Azure CNI Overlay (the
  program's network plugin) admits 250 pods per node by default.
"""

from __future__ import annotations

from dataclasses import dataclass

from components.capacity.data import table

GKE_MAX_PODS = 110  # GKE Standard default (the program sets no max pods per node)
AKS_OVERLAY_MAX_PODS = 250  # Azure CNI Overlay default (the program sets no maxPods)
AKS_CPU_RESERVED = {1: 60, 2: 100, 4: 140, 8: 180, 16: 260, 32: 420, 64: 740}
# (upper bound in GiB, share) of the tiered memory reservation GKE (and AKS before 1.29) use.
MEMORY_TIERS = ((4, 0.25), (8, 0.20), (16, 0.10), (128, 0.06), (float("inf"), 0.02))


@dataclass(frozen=True)
class Node:
    """One node of the pool: its machine type, capacity and allocatable."""

    machine_type: str
    vcpu: int
    memory_mib: float
    cpu_m: int  # allocatable CPU, millicores
    mem_mib: float  # allocatable memory, MiB
    max_pods: int
    how: str  # the formula, with its numbers, as the report shows it


def machine(cloud: str, machine_type: str) -> dict | None:
    """The machines.yaml row of a machine type, or None when the table does not list it."""
    return (table("machines").get(cloud) or {}).get(machine_type)


def machine_types(cloud: str) -> list[str]:
    return list((table("machines").get(cloud) or {}).keys())


def tiered_cpu_reserved(millis: int) -> int:
    """6% of the first core, 1% of the second, 0.5% of cores 3-4, 0.25% of the rest, with the
    integer arithmetic nodeadm uses (hundredths of a percent per range)."""
    total, lower = 0, 0
    for upper, pct in ((1000, 600), (2000, 100), (4000, 50), (None, 25)):
        top = millis if upper is None else min(millis, upper)
        if top > lower:
            total += (top - lower) * pct // 10000
        if upper is None or millis <= upper:
            break
        lower = upper
    return total


def tiered_memory_reserved(memory_mib: float) -> float:
    if memory_mib < 1024:
        return 255.0
    reserved, lower = 0.0, 0.0
    for upper_gib, share in MEMORY_TIERS:
        upper = upper_gib * 1024
        reserved += (min(memory_mib, upper) - lower) * share
        if memory_mib <= upper:
            break
        lower = upper
    return reserved


def _aks_cpu(vcpu: int) -> int:
    """The table's value for the largest listed core count not above the node's."""
    return AKS_CPU_RESERVED[max(c for c in AKS_CPU_RESERVED if c <= max(vcpu, 1))]


def node(cloud: str, machine_type: str, kubernetes_version: str = "") -> Node | None:
    """The allocatable of one node of `machine_type` on `cloud`, or None for an unknown type."""
    row = machine(cloud, machine_type)
    if row is None:
        return None
    vcpu, mem = int(row["vcpu"]), float(row["memory_gib"]) * 1024
    if cloud == "aws":
        pods = int(row["enis"]) * (int(row["ipv4_per_eni"]) - 1) + 2
        cpu_r, mem_r, evict = tiered_cpu_reserved(vcpu * 1000), 11 * pods + 255.0, 100.0
        how = f"EKS AL2023: maxPods {pods} (ENIs), kube-reserved {cpu_r}m / 11Mi x {pods} + 255Mi"
    elif cloud == "gcp":
        pods = GKE_MAX_PODS
        cpu_r, mem_r, evict = tiered_cpu_reserved(vcpu * 1000), tiered_memory_reserved(mem), 100.0
        how = f"GKE: reserved {cpu_r}m / {mem_r:.0f}Mi (tiers), eviction 100Mi, maxPods {pods}"
    elif cloud == "azure":
        pods, cpu_r = AKS_OVERLAY_MAX_PODS, _aks_cpu(vcpu)
        old = _minor(kubernetes_version) not in (None,) and _minor(kubernetes_version) < 29
        if old:
            mem_r, evict = tiered_memory_reserved(mem), 750.0
        else:
            mem_r, evict = min(20.0 * pods + 50, 0.25 * mem), 100.0
        how = f"AKS{' <1.29' if old else ' 1.29+'}: kube-reserved {cpu_r}m / {mem_r:.0f}Mi, "
        how += f"eviction {evict:.0f}Mi, maxPods {pods}"
    else:
        return None
    return Node(machine_type, vcpu, mem, vcpu * 1000 - cpu_r, mem - mem_r - evict, pods, how)


def _minor(version: str) -> int | None:
    parts = version.split(".") if version else []
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
