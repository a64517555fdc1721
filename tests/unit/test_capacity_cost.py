"""Capacity check and cost estimate (components/capacity, docs/CAPACITY_COST.md): every shipped
stack fits on every cloud; a machine type too small, a pool too small at the HPA maximum and a
pod larger than any node are refused with the key and a fix that itself fits; the estimate is
checked against a calculation written out by hand; the price table is not stale."""

from __future__ import annotations

import datetime

import pytest
import yaml

from components import capacity
from components.capacity.data import table
from components.capacity.existing import parse_nodes
from components.capacity.nodes import node, tiered_cpu_reserved, tiered_memory_reserved
from components.capacity.workloads import chart_workloads
from components.settings import ConfigError, build_settings
from components.values import problems as chart_problems
from tests.unit.harness import ROOT, STACKS, stack_config

CLOUDS = ("aws", "gcp", "azure")


def settings_for(stack: str, target: str, **overrides):
    config = stack_config(stack, target)
    bag = {k.split(":", 1)[1]: v for k, v in config.items() if k.startswith("pganalytics:")}
    for path, value in overrides.items():
        head, _, sub = path.partition(".")
        if sub:
            bag[head] = {**(bag.get(head) or {}), sub: value}
        else:
            bag[head] = value
    return build_settings(stack, bag, chart_check=chart_problems)


@pytest.mark.parametrize("target", CLOUDS)
@pytest.mark.parametrize("stack", STACKS)
def test_every_shipped_stack_fits_every_cloud(stack, target):
    a = capacity.assess(settings_for(stack, target))
    assert a.problems == []
    assert a.fit is not None and a.fit.needed <= a.fit.pool
    assert a.fit.headroom >= 0.20, a.fit.summary()
    print(f"{stack}/{target}: {a.fit.summary()}")


def test_a_machine_type_too_small_is_refused_with_one_that_fits():
    s = settings_for("prod", "aws", **{"nodePool.machineType": "t3.micro"})
    problems = capacity.assess(s).problems
    assert len(problems) == 1 and problems[0].startswith("pganalytics:nodePool.machineType ")
    # t3.micro: 2 ENIs x (2 IPv4 - 1) + 2 = 4 pods per node, all taken by the 4 daemonsets.
    assert "4 pods per node" in problems[0]
    fix = problems[0].split("fix: ")[1]
    assert fix.startswith("pulumi config set --path pganalytics:nodePool.machineType ")
    fixed = settings_for("prod", "aws", **{"nodePool.machineType": fix.rsplit(" ", 1)[1]})
    assert capacity.assess(fixed).problems == []


def test_a_pool_too_small_at_the_hpa_maximum_is_refused_with_the_size_that_fits():
    # enterprise: 20 API pods of 500m at the HPA maximum; three e2-standard-4 do not hold them.
    s = settings_for("enterprise", "gcp", **{"nodePool.maxSize": 3, "nodePool.minSize": 3})
    a = capacity.assess(s)
    (problem,) = a.problems
    assert problem.startswith("pganalytics:nodePool.maxSize is too small for the workload")
    fix = problem.split("fix: ")[1]
    assert fix.startswith("pulumi config set --path pganalytics:nodePool.maxSize ")
    size = int(fix.split(" ")[5].rstrip(","))
    assert size > 3
    fixed = settings_for("enterprise", "gcp", **{"nodePool.maxSize": size, "nodePool.minSize": 3})
    assert capacity.assess(fixed).problems == []


def test_a_pod_larger_than_any_node_names_the_chart_value():
    # prod runs CloudNativePG: the instance pods request cloudnativepg.resources.
    huge = {"cloudnativepg": {"resources": {"requests": {"cpu": "100", "memory": "1Gi"}}}}
    s = settings_for("prod", "azure", **{"chart.values": huge})
    (problem,) = capacity.assess(s).problems
    key = "pganalytics:chart.values.cloudnativepg.resources.requests.cpu"
    assert problem.startswith(f"{key} is larger than any node")
    assert "Cluster database requests 100000m CPU" in problem
    value = problem.rsplit(" ", 1)[1]
    assert problem.endswith(f"fix: pulumi config set --path {key} {value}")
    # The fix fits: one D4s_v5 node (4 cores: 4000m - 140m reserved) after the daemonsets.
    assert value.endswith("m") and int(value[:-1]) <= 4000 - 140
    fixed = {"cloudnativepg": {"resources": {"requests": {"cpu": value, "memory": "1Gi"}}}}
    assert capacity.assess(settings_for("prod", "azure", **{"chart.values": fixed})).problems == []


def test_more_instances_than_nodes_is_refused():
    """The Cluster's anti-affinity on kubernetes.io/hostname is required (cnpg-cluster.yaml):
    four instances never fit three nodes, however large they are. The settings refuse
    database.instances above nodePool.maxSize; a chart.values override of
    cloudnativepg.instances gets past them and is refused here."""
    big = {"nodePool.machineType": "e2-standard-16", "nodePool.maxSize": 3}
    four = {"chart.values": {"cloudnativepg": {"instances": 4}}}
    a = capacity.assess(settings_for("prod", "gcp", **big, **four))
    assert a.fit.pool == 3
    # By CPU, memory and pod slots alone the three large nodes would hold every pod.
    assert a.fit.headroom > 0, a.fit.summary()
    (problem,) = a.problems
    assert problem.startswith(
        "pganalytics:nodePool.maxSize is too small for Cluster database: its 4 pods must each run "
        "on a node of their own"
    ), problem
    assert "pulumi config set --path pganalytics:nodePool.maxSize 4" in problem
    assert "pulumi config set --path pganalytics:chart.values.cloudnativepg.instances 3" in problem
    assert capacity.assess(settings_for("prod", "gcp", **big)).problems == []
    more = settings_for("prod", "gcp", **{**big, "nodePool.maxSize": 4}, **four)
    assert capacity.assess(more).problems == []


def test_the_program_refuses_before_any_resource():
    """__main__ raises the ConfigError that raise_problems builds."""
    s = settings_for("prod", "aws", **{"nodePool.machineType": "t3.micro"})
    with pytest.raises(ConfigError, match=r"nodePool\.machineType"):
        capacity.raise_problems(s, capacity.assess(s))


def test_allocatable_by_hand():
    # EKS m6i.large: maxPods 3 x (10 - 1) + 2 = 29; CPU reserved 60 + 10 = 70m;
    # memory 11 x 29 + 255 = 574Mi, eviction 100Mi: 8192 - 574 - 100 = 7518Mi.
    eks = node("aws", "m6i.large")
    assert (eks.max_pods, eks.cpu_m, eks.mem_mib) == (29, 2000 - 70, 8192 - 674)
    # GKE e2-standard-4: CPU 60 + 10 + 10 = 80m; memory 25% of 4096 + 20% of 4096 + 10% of
    # 8192 = 1024 + 819.2 + 819.2 = 2662.4Mi, eviction 100Mi.
    gke = node("gcp", "e2-standard-4")
    assert gke.cpu_m == 4000 - 80 and gke.mem_mib == pytest.approx(16384 - 2662.4 - 100)
    # AKS 1.29+ D4s_v5: 4 cores 140m; memory min(20 x 250 + 50, 25% of 16384) = 4096Mi.
    aks = node("azure", "Standard_D4s_v5")
    assert (aks.cpu_m, aks.mem_mib, aks.max_pods) == (3860, 16384 - 4096 - 100, 250)
    # AKS before 1.29: the memory tiers and a 750Mi eviction threshold.
    old = node("azure", "Standard_D4s_v5", "1.28")
    assert old.mem_mib == pytest.approx(16384 - 2662.4 - 750)
    assert tiered_cpu_reserved(16000) == 60 + 10 + 10 + 30
    assert tiered_memory_reserved(512) == 255


def _size_gib(quantity: str) -> int:
    assert quantity.endswith("Gi"), quantity
    return int(quantity[:-2])


def test_estimate_by_hand():
    """prod on aws (eu-west-1), computed here from the stack file, the chart's values-prod.yaml
    and the rows of prices.yaml, not through cost.py. With the table of this commit:

      nodes     3 x m6i.xlarge x 0.214 $/h x 730 h              = 468.66
      boot      3 x 100 GB gp3 x 0.088 $/GB-month               =  26.40
      volumes   (3 x 100 + 10 + 50) GiB gp3 x 0.088 $/GB-month  =  31.68
                (3 CloudNativePG instances x cloudnativepg.storage.size 100Gi, no walStorage;
                Grafana 10Gi; the dump volume 50Gi)
      NAT       3 gateways (perZone, 3 zones) x 0.048 $/h x 730 = 105.12
      EKS       0.10 $/h x 730                                  =  73.00
                                                                  ------
      priced                                                      704.86
      not priced: the Traefik NLB and the S3 backup bucket (no stored eu-west-1 price)
    """
    prices = table("prices")
    hours = prices["hours_per_month"]
    region = prices["aws"]["regions"]["eu-west-1"]
    stack = stack_config("prod")
    pool = stack["pganalytics:nodePool"]
    chart = yaml.safe_load((ROOT / "charts/pganalytics/values-prod.yaml").read_text())
    defaults = yaml.safe_load((ROOT / "charts/pganalytics/values.yaml").read_text())
    # database.mode cloudnativepg: one PVC per instance instead of the bundled volume.
    assert stack["pganalytics:database"]["mode"] == "cloudnativepg"
    assert "walStorage" not in chart["cloudnativepg"]
    instances = stack["pganalytics:database"]["instances"]
    volumes = instances * _size_gib(chart["cloudnativepg"]["storage"]["size"]) + sum(
        _size_gib(chart[part]["persistence"]["size"]) for part in ("grafana", "backup")
    )
    zones = stack["pganalytics:network"]["zoneCount"]
    # Redis (off in values.yaml, not turned on by prod) has no volume.
    assert not defaults["redis"]["enabled"] and "redis" not in chart
    assert stack["pganalytics:network"]["natGateway"] == "perZone"
    by_hand = {
        f"nodes at rest: {pool['minSize']} x m6i.xlarge": (
            pool["minSize"] * region["machines"]["on_demand"]["m6i.xlarge"] * hours
        ),
        "node boot disks (gp3)": (
            pool["minSize"] * pool["diskSizeGb"] * region["disk_gb_month"]["gp3"]["price"]
        ),
        "chart volumes (gp3)": volumes * region["disk_gb_month"]["gp3"]["price"],
        f"NAT gateways: {zones}": zones * region["nat_gateway_hour"]["price"] * hours,
        "control plane": region["control_plane_hour"]["price"] * hours,
    }
    e = capacity.assess(settings_for("prod", "aws")).estimate
    out = e.output()
    got = {b["item"]: b["monthly"] for b in out["breakdown"] if b["monthly"] is not None}
    assert got == {k: pytest.approx(v, abs=0.005) for k, v in by_hand.items()}
    assert out["missing"] == [
        "load balancer (Traefik Service, NLB)",
        "backup bucket (S3 Standard, upper bound)",
    ]
    assert out["pricedTotal"] == pytest.approx(sum(by_hand.values()), abs=0.01)
    assert out["currency"] == "USD" and out["tableDate"] == prices["date"]
    assert out["spot"] is None


def test_a_partial_estimate_never_reads_as_a_total():
    """prod on aws: two parts have no price, so there is no total, only what is priced."""
    e = capacity.assess(settings_for("prod", "aws")).estimate
    out = e.output()
    assert not out["complete"] and out["total"] is None and out["pricedTotal"] > 0
    line = capacity.cost_line(e)
    head = f"estimated monthly cost: partial estimate: {out['pricedTotal']:.2f} USD a month"
    assert line.startswith(f"{head} for what is priced; not priced: ")
    assert "load balancer (Traefik Service, NLB), backup bucket (S3 Standard" in line
    assert out["summary"] in line


def test_nothing_priced_says_so():
    # A region the table does not list: every part unpriced, and no "0.00" anywhere.
    s = settings_for("prod", "aws", region="ap-northeast-3")
    e = capacity.assess(s).estimate
    out = e.output()
    assert out["total"] is None and out["pricedTotal"] == 0 and len(out["missing"]) == 7
    line = capacity.cost_line(e)
    assert line.startswith("estimated monthly cost: partial estimate: nothing priced; not priced")
    assert "0.00" not in line


def test_a_complete_estimate_gives_the_total():
    """prod on gcp with a NodePort Service (no forwarding rule): every part has a price."""
    e = capacity.assess(settings_for("prod", "gcp", **{"ingress.serviceType": "NodePort"})).estimate
    out = e.output()
    assert out["complete"] and out["missing"] == []
    assert out["total"] == out["pricedTotal"]
    assert out["total"] == pytest.approx(sum(b["monthly"] for b in out["breakdown"]), abs=0.01)
    # Cloud NAT bills the VMs it serves: the 3 nodes at rest, under the 32-VM cap.
    (nat,) = [b for b in out["breakdown"] if b["item"].startswith("Cloud NAT")]
    assert nat["unit"] == "VM-hours" and nat["quantity"] == 3 * table("prices")["hours_per_month"]
    line = capacity.cost_line(e)
    assert line.startswith(f"estimated monthly cost: {out['total']:.2f} USD a month (an estimate")
    assert "partial" not in line and "not priced" not in line


def test_spot_is_a_range():
    # dev on azure is Spot: from 90% off to the on-demand price, 1 x D4s_v5 x 730 h.
    prices = table("prices")
    hourly = prices["azure"]["regions"]["westeurope"]["machines"]["on_demand"]["Standard_D4s_v5"]
    hours = prices["hours_per_month"]
    e = capacity.assess(settings_for("dev", "azure")).estimate
    assert e.spot == {
        "nodesMonthlyLow": round(hourly * (1 - 0.9) * hours, 2),
        "nodesMonthlyHigh": round(hourly * hours, 2),
        "basis": "up to 90% off",
    }


def test_price_table_is_fresh_and_sourced():
    prices = table("prices")
    sources = prices["sources"]
    dated = {}
    for name, source in sources.items():
        assert source["url"].startswith("https://"), name
        when = str(source["date"])
        if when.startswith("undated"):
            continue
        dated[name] = datetime.date.fromisoformat(when)
    # The table's date is its oldest dated source, and that source is not too old.
    assert prices["date"] == min(dated.values()).isoformat()
    age = datetime.date.today() - datetime.date.fromisoformat(prices["date"])
    assert age.days <= prices["max_age_days"], "refresh components/capacity/data/prices.yaml"
    used = set()
    for cloud in CLOUDS:
        for region, data in prices[cloud]["regions"].items():
            for key, entry in data.items():
                grouped = key in ("disk_gb_month", "object_storage_gb_month")
                for e in entry.values() if grouped else [entry]:
                    assert e["source"] in sources, (region, key)
                    used.add(e["source"])
                    if key != "machines":
                        assert float(e["price"]) >= 0, (region, key)
    assert set(sources) - used <= {"aks_free", "spot_discount"}, "a source no price uses"
    machines = table("machines")
    for cloud in CLOUDS:
        for region, data in prices[cloud]["regions"].items():
            assert set(data["machines"]["on_demand"]) <= set(machines[cloud]), region


@pytest.mark.parametrize("stack", STACKS)
def test_the_old_aws_default_m6i_large(stack):
    """The AWS default moved from m6i.large to m6i.xlarge (docs/UPGRADING.md). dev and prod
    still fit on m6i.large, so a stack may keep it; enterprise's 2-CPU database pod does not
    fit one, and the preview refuses it with a type that fits."""
    s = settings_for(stack, "aws", **{"nodePool.machineType": "m6i.large"})
    a = capacity.assess(s)
    if stack == "enterprise":
        (problem,) = a.problems
        # enterprise runs CloudNativePG: the instance pods of the Cluster request 2 CPU.
        assert problem.startswith(
            "pganalytics:nodePool.machineType is too small: Cluster database requests 2000m CPU"
        ), problem
        fix = problem.rsplit(" ", 1)[1]
        # A larger size of the family the team chose, not the cheapest burstable type.
        assert fix == "m6i.xlarge", problem
        fixed = settings_for(stack, "aws", **{"nodePool.machineType": fix})
        assert capacity.assess(fixed).problems == []
    else:
        assert a.problems == [] and a.fit.headroom >= 0.20, a.fit.summary()


@pytest.mark.parametrize("target", CLOUDS)
def test_default_machine_types_are_in_the_table(target):
    s = settings_for("prod", target)
    assert node(target, s.node_pool.machine_type) is not None


def test_collectors_per_target_and_hpa_maximum_count():
    from components.values import merged_values

    values = merged_values(settings_for("enterprise", "gcp"), include_defaults=True)
    values["collector"]["targets"] = [
        {"name": "a"},
        {"name": "b"},
        {"name": "c", "nodeLocal": True},
    ]
    by_name = {w.name: w for w in chart_workloads(values)}
    assert by_name["backend"].replicas == 20 and by_name["backend"].min_replicas == 5
    assert {"collector:a", "collector:b"} <= set(by_name) and by_name["collector:c"].per_node


def test_existing_reads_nodes_or_skips_with_a_note():
    s = settings_for("dev", "existing")
    doc = {
        "items": [
            {"metadata": {"name": f"n{i}"}, "spec": {},
             "status": {"allocatable": {"cpu": "8", "memory": "32Gi", "pods": "110"}}}
            for i in range(3)
        ]
    }  # fmt: skip
    a = capacity.assess(s, reader=lambda *_: (parse_nodes(doc), ""))
    assert a.problems == [] and "3 schedulable nodes" in a.summary and not a.warnings
    # An adopted cluster's cost is not priced: no total of 0 passed off as the cost.
    out = a.estimate.output()
    assert out["total"] is None and not out["complete"] and out["breakdown"] == []
    assert out["summary"].startswith("not estimated: target existing")
    assert out["source"].startswith("none:")
    assert capacity.cost_line(a.estimate) == f"estimated monthly cost: {out['summary']}"
    skipped = capacity.assess(s, reader=lambda *_: (None, "the cluster did not answer"))
    assert skipped.summary == "" and any("not checked" in n for n in skipped.notes)
    alloc = {"cpu": "100m", "memory": "64Mi", "pods": "4"}
    tiny = {"items": [{"metadata": {"name": "x"}, "spec": {}, "status": {"allocatable": alloc}}]}
    small = capacity.assess(s, reader=lambda *_: (parse_nodes(tiny), ""))
    assert any("does not fit" in w for w in small.warnings)
    # Three CloudNativePG instances, one per node, on two nodes (prod runs cloudnativepg).
    two = {"items": doc["items"][:2]}
    cnpg = capacity.assess(
        settings_for("prod", "existing"), reader=lambda *_: (parse_nodes(two), "")
    )
    assert any("Cluster database runs 3 pods, one per node" in w for w in cnpg.warnings), (
        cnpg.warnings
    )
