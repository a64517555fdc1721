"""pganalytics:chart.valuesFile outside the chart: a path relative to the project (the
directory of the Pulumi.yaml the engine runs), so a team keeps its values beside its stack files
and adopts the chart without forking it."""

from __future__ import annotations

import pytest

from components.settings import ConfigError, build_settings
from components.settings import base as settings_base


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A project directory elsewhere, as the engine reports it, with values/custom.yaml."""
    (tmp_path / "Pulumi.yaml").write_text("name: pganalytics\nruntime: python\n")
    (tmp_path / "values").mkdir()
    (tmp_path / "values" / "custom.yaml").write_text("backend:\n  config:\n    logLevel: debug\n")
    monkeypatch.setattr(settings_base.pulumi, "get_root_directory", lambda: str(tmp_path))
    settings_base.chart_values_file.cache_clear()
    yield tmp_path
    settings_base.chart_values_file.cache_clear()


def settings(values_file: str):
    from components import values

    config = {
        "ingress": {"domain": "pganalytics.example.com"},
        "chart": {"valuesFile": values_file},
    }
    return build_settings("prod", config, set(), set(), chart_check=values.problems)


def test_a_values_file_in_the_project_feeds_the_release(project):
    from components.values import merged_values

    s = settings("values/custom.yaml")
    assert s.chart.values_file == "values/custom.yaml"
    assert s.chart.value("backend", "config", "logLevel") == "debug"
    assert merged_values(s)["backend"]["config"]["logLevel"] == "debug"
    # The chart's own values-prod.yaml plays no part: the named file replaces it.
    assert settings("values-prod.yaml").chart.value("backend", "config", "logLevel") != "debug"


def test_a_missing_project_values_file_names_the_key(project):
    with pytest.raises(ConfigError) as error:
        settings("values/staging.yaml")
    message = str(error.value)
    assert "pganalytics:chart.valuesFile names values/staging.yaml" in message
    assert "which the project does not have" in message
    assert "pulumi config set --path pganalytics:chart.valuesFile" in message


@pytest.mark.parametrize("bad", ["/etc/pganalytics/prod.yaml", "../values/prod.yaml", "values/"])
def test_an_absolute_or_escaping_path_is_refused(project, bad):
    with pytest.raises(ConfigError) as error:
        settings(bad)
    message = str(error.value)
    assert "pganalytics:chart.valuesFile must be a file name inside charts/pganalytics" in message
    assert "values/prod.yaml" in message
