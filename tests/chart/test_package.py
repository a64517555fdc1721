"""The chart as adopters get it: `helm package` (scripts/chart-package.sh, `make chart`, the
chart workflow on a version tag) and the metadata Artifact Hub and `helm show chart` read."""

from __future__ import annotations

import subprocess
import tarfile

import yaml

from tests.conftest import ROOT

CHART = ROOT / "charts" / "pganalytics"
ARTIFACT_HUB_KINDS = {"added", "changed", "deprecated", "removed", "fixed", "security"}


def chart_yaml() -> dict:
    return yaml.safe_load((CHART / "Chart.yaml").read_text())


def test_chart_metadata_for_adopters():
    chart = chart_yaml()
    assert chart["icon"].startswith("https://"), chart.get("icon")
    assert chart["home"].startswith("https://") and chart["sources"]
    assert chart["maintainers"] and all(m.get("name") for m in chart["maintainers"])
    notes = chart["annotations"]
    assert notes["artifacthub.io/license"] == "Apache-2.0"
    assert "Apache License" in (ROOT / "LICENSE").read_text()
    links = yaml.safe_load(notes["artifacthub.io/links"])
    assert links and all(link["url"].startswith("https://") for link in links)
    changes = yaml.safe_load(notes["artifacthub.io/changes"])
    assert changes and {c["kind"] for c in changes} <= ARTIFACT_HUB_KINDS, changes
    assert notes["artifacthub.io/prerelease"] in ("true", "false")


def test_the_packaged_chart_holds_the_chart_and_nothing_else(tmp_path):
    tree = tmp_path / "tree"
    (tree / "scripts").mkdir(parents=True)
    (tree / "charts").mkdir()
    (tree / "charts" / "pganalytics").symlink_to(CHART)
    (tree / "scripts" / "chart-package.sh").symlink_to(ROOT / "scripts" / "chart-package.sh")
    version = chart_yaml()["version"]
    refused = subprocess.run(
        ["scripts/chart-package.sh", "v0.0.0-not-this"], cwd=tree, capture_output=True, text=True
    )
    assert refused.returncode == 1
    assert f"has version {version} (tag v{version})" in refused.stderr
    proc = subprocess.run(
        ["scripts/chart-package.sh", f"v{version}"], cwd=tree, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    package = tree / proc.stdout.strip().splitlines()[-1]
    assert package.name == f"pganalytics-{version}.tgz"
    with tarfile.open(package) as tgz:
        names = tgz.getnames()
        packaged = yaml.safe_load(tgz.extractfile("pganalytics/Chart.yaml").read())
    assert packaged["version"] == version and packaged["icon"] == chart_yaml()["icon"]
    for needed in ("values.yaml", "values.schema.json", "templates/_helpers.tpl", "README.md"):
        assert f"pganalytics/{needed}" in names, needed
    assert not [n for n in names if "/tests/" in n or n.endswith((".pyc", ".orig"))], names
