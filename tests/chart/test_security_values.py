"""What chart values may open (issue 18, items 10 and 11): wildcard RBAC, automounted API
tokens and egress to the cloud metadata address are refused by values.schema.json unless a
documented acknowledgement key allows them; the backup and snapshot egress to 0.0.0.0/0 leaves
out the metadata address (and, for the public object store, the private ranges)."""

from __future__ import annotations

import pytest

from .conftest import HelmError, by_kind, find, render

PRIVATE_AND_LINK_LOCAL = [
    "169.254.0.0/16",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",
]


def refused(values: dict) -> str:
    with pytest.raises(HelmError) as err:
        render(values=values)
    return err.value.stderr


@pytest.mark.parametrize(
    "rule",
    [
        {"apiGroups": ["*"], "resources": ["pods"], "verbs": ["get"]},
        {"apiGroups": [""], "resources": ["*"], "verbs": ["get"]},
        {"apiGroups": [""], "resources": ["pods/*"], "verbs": ["get"]},
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["*"]},
        {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["*"], "verbs": ["get"]},
    ],
)
def test_a_wildcard_rule_is_refused_unless_acknowledged(rule):
    assert "/rbac/rules/0/" in refused({"rbac": {"rules": [rule]}})
    objs = render(values={"rbac": {"rules": [rule], "acknowledgeWildcards": True}})
    assert find(objs, "Role", "pga-pganalytics")["rules"] == [rule]


def test_a_rule_without_wildcards_and_unknown_rule_fields():
    rule = {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}
    assert find(render(values={"rbac": {"rules": [rule]}}), "Role", "pga-pganalytics")
    # nonResourceURLs belong to ClusterRoles; the chart renders a Role.
    assert "nonResourceURLs" in refused(
        {"rbac": {"rules": [{**rule, "nonResourceURLs": ["/metrics"]}]}}
    )


def test_an_automounted_token_is_refused_unless_acknowledged():
    message = refused({"serviceAccount": {"automountServiceAccountToken": True}})
    assert "acknowledgeTokenAutomount" in message
    values = {
        "serviceAccount": {"automountServiceAccountToken": True, "acknowledgeTokenAutomount": True}
    }
    objs = render(values=values)
    assert find(objs, "ServiceAccount", "pga-pganalytics")["automountServiceAccountToken"] is True


def _with_extra_egress(where: str, block: dict, acknowledged: bool = False) -> dict:
    rule = {"to": [{"ipBlock": block}], "ports": [{"port": 80}]}
    if where == "backend":
        return {
            "networkPolicy": {
                "backendExtraEgress": [rule],
                "acknowledgeMetadataEgress": acknowledged,
            }
        }
    return {
        "backup": {
            "enabled": True,
            "destination": {"type": "gcs", "bucket": "pga-backups"},
            "networkPolicy": {"extraEgress": [rule], "acknowledgeMetadataEgress": acknowledged},
        }
    }


@pytest.mark.parametrize("where", ["backend", "backup"])
@pytest.mark.parametrize(
    "cidr",
    [
        "169.254.169.254/32",
        "169.254.169.0/24",
        "169.254.0.0/16",
        "0.0.0.0/0",
        "128.0.0.0/1",
        "169.0.0.0/8",
    ],
)
def test_extra_egress_to_the_metadata_address_is_refused_unless_acknowledged(where, cidr):
    assert "ipBlock" in refused(_with_extra_egress(where, {"cidr": cidr}))
    assert by_kind(render(values=_with_extra_egress(where, {"cidr": cidr}, True)), "NetworkPolicy")


@pytest.mark.parametrize("where", ["backend", "backup"])
def test_extra_egress_that_leaves_the_metadata_address_out_is_accepted(where):
    render(values=_with_extra_egress(where, {"cidr": "0.0.0.0/0", "except": ["169.254.0.0/16"]}))
    render(values=_with_extra_egress(where, {"cidr": "203.0.113.0/24"}))
    # Another link-local address (the EKS Pod Identity agent) is not the metadata address.
    render(values=_with_extra_egress(where, {"cidr": "169.254.170.23/32"}))


def _egress_blocks(policy: dict) -> list[dict]:
    return [
        p["ipBlock"]
        for rule in policy["spec"]["egress"]
        for p in rule.get("to", [])
        if "ipBlock" in p
    ]


def test_backup_egress_to_the_internet_leaves_out_metadata_and_private_ranges():
    objs = render(
        values={"backup": {"enabled": True, "destination": {"type": "s3", "bucket": "pga-backups"}}}
    )
    blocks = _egress_blocks(find(objs, "NetworkPolicy", "pga-pganalytics-backup"))
    assert blocks == [{"cidr": "0.0.0.0/0", "except": PRIVATE_AND_LINK_LOCAL}]
    # A store in a private network is listed by its own range, which leaves nothing out.
    objs = render(
        values={
            "backup": {
                "enabled": True,
                "destination": {"type": "s3", "bucket": "pga-backups"},
                "networkPolicy": {"objectStoreCIDRs": ["10.1.2.0/24"]},
            }
        }
    )
    blocks = _egress_blocks(find(objs, "NetworkPolicy", "pga-pganalytics-backup"))
    assert blocks == [{"cidr": "10.1.2.0/24"}]


def test_snapshot_egress_to_the_api_server_leaves_out_the_metadata_address():
    objs = render(values={"volumeSnapshots": {"enabled": True, "className": "csi-snap"}})
    blocks = _egress_blocks(find(objs, "NetworkPolicy", "pga-pganalytics-snapshots"))
    assert blocks == [{"cidr": "0.0.0.0/0", "except": ["169.254.0.0/16"]}]


@pytest.mark.parametrize(
    "parameter",
    [
        {"log_statement": "ddl"},
        {"log_statement": "mod"},
        {"log_statement": "all"},
        {"log_statement": "ALL"},
        {"log_min_duration_statement": 0},
        {"log_min_duration_statement": "0"},
    ],
)
def test_logging_that_would_write_role_passwords_is_refused(parameter):
    """The bootstrap and the password-sync container run ALTER ROLE ... PASSWORD."""
    name = next(iter(parameter))
    assert f"/timescaledb/parameters/{name}" in refused({"timescaledb": {"parameters": parameter}})


def test_logging_that_writes_no_statement_text_is_accepted():
    values = {
        "timescaledb": {"parameters": {"log_statement": "none", "log_min_duration_statement": 500}}
    }
    sts = find(render(values=values), "StatefulSet", "pga-pganalytics-timescaledb")
    args = sts["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "log_statement=none" in args and "log_min_duration_statement=500" in args
