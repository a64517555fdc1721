"""What every `pulumi preview` and `pulumi up` pays before its first resource: the program's
imports and the parsing of the chart's values (docs/PERFORMANCE.md, "Start-up")."""

from __future__ import annotations

import pytest
import yaml

from components.capacity.data import DATA_DIR, table
from components.settings.base import CHART_DIR, chart_values_file
from tests.unit.harness import TARGETS, run_program, stack_config

CLOUD_SDKS = {"aws": "pulumi_aws", "gcp": "pulumi_gcp", "azure": "pulumi_azure_native"}


@pytest.mark.parametrize("target", TARGETS)
def test_only_the_targets_cloud_sdk_is_imported(target):
    """A cloud SDK costs 1-3 s of imports (pulumi_gcp, pulumi_azure_native): only its own
    target may load one."""
    result = run_program("dev", stack_config("dev", target), report_modules=True)
    assert result["error"] is None, result["error"]
    loaded = set(result["modules"]) & set(CLOUD_SDKS.values())
    assert loaded == ({CLOUD_SDKS[target]} if target in CLOUD_SDKS else set())


@pytest.mark.parametrize("path", sorted(CHART_DIR.glob("values*.yaml")), ids=lambda p: p.name)
def test_values_files_parse_as_the_pure_python_loader_parses_them(path):
    """chart_values_file uses libyaml's parser (30x faster on values.yaml): same data."""
    chart_values_file.cache_clear()
    assert chart_values_file(path.name) == (yaml.safe_load(path.read_text()) or {})


@pytest.mark.parametrize("path", sorted(DATA_DIR.glob("*.yaml")), ids=lambda p: p.name)
def test_capacity_tables_parse_as_the_pure_python_loader_parses_them(path):
    """The capacity tables (prices.yaml: 19 KB) go through libyaml's parser too: same data."""
    table.cache_clear()
    assert table(path.stem) == (yaml.safe_load(path.read_text()) or {})
