"""Free-form strings of the settings and of the chart values, one test per class of bad input
(issue 18 item 13). Each is refused before any resource, with a problem naming its key:

- look-alike characters: Python's `\\d` and `\\w` match fullwidth digits and Cyrillic letters,
  so `３.３.0` passed as an image tag and `ops@ехаmple.com` as an e-mail; every pattern is
  now written with ASCII classes, and the chart schema is read as Helm reads it (Go's RE2);
- cron schedules, parsed as the API server parses a CronJob's;
- each cloud's limits on tags (GCP: labels): how many, key and value length, characters.

The settings are checked in this process with the chart check the program uses
(`components.values.problems`); tests/unit/test_bad_config.py runs one case of each class
through the whole program under mocks.
"""

from __future__ import annotations

import re

import pytest

from tests.unit.harness import ROOT, stack_config
from tests.unit.test_bad_config import _problems, _set

FULLWIDTH_3 = "\uff13"  # ３ FULLWIDTH DIGIT THREE: Python's \d matches it
CYRILLIC_E = "\u0435"  # е CYRILLIC SMALL LETTER IE, drawn like a Latin e
ARABIC_INDIC_1 = "\u0661"  # ١ ARABIC-INDIC DIGIT ONE


def _refused(stack: str, target: str | None, changes: dict) -> list[str]:
    config = stack_config(stack, target)
    for key, value in changes.items():
        _set(config, key, value)
    return _problems(stack, config)


def _keys(problems: list[str]) -> set[str]:
    return {p.split(" ", 1)[0] for p in problems}


# --- look-alike characters -------------------------------------------------------------------

# (stack, target, dotted key, a valid value): the look-alike replaces one ASCII character.
PATTERN_CHECKED = [
    ("prod", None, "chart.imageTag", "3.3.0"),
    ("prod", None, "chart.imageRegistry", "registry.example.com:5000/mirror"),
    ("prod", "aws", "region", "eu-west-3"),
    ("enterprise", "gcp", "region", "europe-west3"),
    ("prod", "aws", "kubernetesVersion", "1.33"),
    ("prod", "aws", "nodePool.machineType", "m6i.large"),
    ("prod", None, "ingress.acmeEmail", "ops@example.com"),
    ("prod", None, "ingress.domain", "pganalytics.example.com"),
    ("prod", None, "chart.valuesFile", "values-prod.yaml"),
    ("prod", "aws", "clusterAdmins.aws", ["arn:aws:iam::123456789012:role/platform-admins"]),
    ("prod", "azure", "clusterAdmins.azure", ["00000000-0000-0000-0000-000000000003"]),
    ("prod", "aws", "backup.bucketName", "pganalytics-backups-3"),
    ("prod", "aws", "tags", {"team": "platform-3"}),
    ("prod", "aws", "tags", {"team3": "platform"}),
]


def _look_alike(value):
    """`value` with its first 3 (or, without one, its first e) replaced by a look-alike."""
    if isinstance(value, list):
        return [_look_alike(value[0]), *value[1:]]
    if isinstance(value, dict):
        key, item = next(iter(value.items()))
        return {_look_alike(key): item} if "3" in key else {key: _look_alike(item)}
    return value.replace("3", FULLWIDTH_3, 1) if "3" in value else value.replace("e", CYRILLIC_E, 1)


@pytest.mark.parametrize(
    ("stack", "target", "key", "valid"),
    PATTERN_CHECKED,
    ids=[f"{t or s}-{k}" for s, t, k, v in PATTERN_CHECKED],
)
def test_a_look_alike_character_is_refused_where_a_pattern_checks_the_string(
    stack, target, key, valid
):
    assert not [p for p in _refused(stack, target, {key: valid}) if key.split(".")[0] in p]
    bad = _look_alike(valid)
    assert bad != valid
    problems = _refused(stack, target, {key: bad})
    assert any(p.startswith(f"pganalytics:{key}") for p in problems), problems


def test_no_settings_pattern_uses_a_unicode_class():
    """`\\d` and `\\w` in a str pattern match any script's digits and letters (re.ASCII aside):
    the settings write [0-9] and [A-Za-z0-9_] instead."""
    found = []
    for path in sorted((ROOT / "components" / "settings").glob("*.py")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"\\[dwb]", line) and "re.A" not in line:
                found.append(f"{path.name}:{number}: {line.strip()}")
    assert not found, "\n".join(found)


# Chart values the schema checks with a pattern, where a look-alike would pull another image,
# connect to another host or upload the backups elsewhere.
CHART_STRINGS = [
    ("grafana.image.tag", "11.6.3"),
    ("backend.image.registry", "registry3.example.com"),
    ("timescaledb.image.repository", "timescale/timescaledb3"),
    ("backup.uploader.image.tag", "1.76.3"),
    ("global.imageRegistry", "mirror3.example.com"),
    ("backend.config.apiBaseUrl", "https://api3.example.com"),
    ("backup.destination.s3.endpoint", "https://s3.example.com:9003"),
]


@pytest.mark.parametrize(("path", "valid"), CHART_STRINGS, ids=[p for p, _ in CHART_STRINGS])
def test_a_look_alike_character_is_refused_in_chart_values(path, valid):
    key = f"chart.values.{path}"
    assert not [p for p in _refused("prod", None, {key: valid}) if key in p]
    assert _look_alike(valid) != valid
    problems = _refused("prod", None, {key: _look_alike(valid)})
    assert any(p.startswith(f"pganalytics:{key} is rejected by the chart schema") for p in problems)


@pytest.mark.parametrize("value", ["11.6.3\n", f"11.6.{ARABIC_INDIC_1}"])
def test_the_chart_schema_is_read_as_helm_reads_it(value):
    """Helm validates values.schema.json with Go's RE2: `$` ends the text and `\\s` is ASCII.
    Python's re let '11.6.3\\n' through `^[^\\s]*$` (its `$` also matches before a final
    newline), so the program's check passed what Helm then refused mid-update."""
    from components.values import helm_regex

    assert helm_regex(r"^[^\s]*$").search("11.6.3")
    assert not helm_regex(r"^[^\s]*$").search("11.6.3\n")
    assert not helm_regex(r"^\d+$").search(ARABIC_INDIC_1)
    assert helm_regex(r"^[a$]+$").search("a$a"), "a $ inside a class is a character"
    key = "chart.values.grafana.image.tag"
    assert any(p.startswith(f"pganalytics:{key}") for p in _refused("prod", None, {key: value}))


# --- cron schedules --------------------------------------------------------------------------

GOOD_SCHEDULES = ["15 2 * * *", "*/20 1-5 * * MON-FRI", "0 0 1,15 jan-dec ?", "@daily", "0 3 * * 0"]
BAD_SCHEDULES = {
    "15 24 * * *": "outside 0-23 in its hour field",
    "60 2 * * *": "outside 0-59 in its minute field",
    "0 0 0 * *": "outside 1-31 in its day of month field",
    "0 0 * 13 *": "outside 1-12 in its month field",
    "0 0 * * 7": "outside 0-6 in its day of week field",
    "0 5-1 * * *": "a range that runs backwards in its hour field",
    "*/0 * * * *": "a step of 0 in the minute field",
    "0 0 * * FUN": "an unknown value in its day of week field",
    "15 2 * *": "must have five fields",
    "0 15 2 * * *": "must have five fields",
    "@every 1h": "is not one of @yearly",
    "TZ=UTC 15 2 * * *": "holds characters a cron schedule does not have",
    f"15 {FULLWIDTH_3} * * *": "holds characters a cron schedule does not have",
    "15 2 * * *\n": "holds characters a cron schedule does not have",
}


@pytest.mark.parametrize("schedule", GOOD_SCHEDULES)
def test_cron_schedules_the_api_server_takes_are_accepted(schedule):
    from components.settings.checks import cron_problem

    assert cron_problem(schedule) == ""
    assert _refused("prod", None, {"chart.values.backup.schedule": schedule}) == []


@pytest.mark.parametrize("part", ["backup", "volumeSnapshots"])
@pytest.mark.parametrize("schedule", sorted(BAD_SCHEDULES))
def test_a_bad_cron_schedule_is_refused_naming_its_key(part, schedule):
    problems = _refused("prod", None, {f"chart.values.{part}.schedule": schedule})
    key = f"pganalytics:chart.values.{part}.schedule"
    mine = [p for p in problems if p.startswith(key)]
    assert len(mine) == 1, problems
    assert BAD_SCHEDULES[schedule] in mine[0], mine[0]
    assert re.search(rf'fix: pulumi config set --path {key} "[0-9]+ [0-9]+ \* \* \*"', mine[0])


# --- each cloud's tag (label) limits ---------------------------------------------------------

# (target, tags, problem keys, a text of the problem): AWS, GCP and Azure limits as their
# documentation states them (components/settings/base.py, TAG_RULES).
TAG_CASES = [
    ("aws", {f"t{i}": "x" for i in range(47)}, {"tags"}, "51 tags, more than the 50"),
    ("aws", {f"t{i}": "x" for i in range(46)}, set(), ""),
    ("aws", {"k" * 129: "x"}, {f"tags.{'k' * 129}"}, "1-128 letters"),
    ("aws", {"k" * 128: "v" * 256}, set(), ""),
    ("aws", {"team": "v" * 257}, {"tags.team"}, "0-256 letters"),
    ("aws", {"AWS:team": "x"}, {"tags.AWS:team"}, "not starting with aws:"),
    ("aws", {"team": "ops;rm"}, {"tags.team"}, "0-256 letters"),
    ("aws", {"cost-center": "R&D"}, {"tags.cost-center"}, "0-256 letters"),
    ("aws", {"cost center": "R and D"}, set(), ""),
    ("gcp", {f"l{i}": "x" for i in range(61)}, {"tags"}, "65 labels, more than the 64"),
    ("gcp", {f"l{i}": "x" for i in range(60)}, set(), ""),
    ("gcp", {"Team": "ops"}, {"tags.Team"}, "lowercase letters, digits, _ and -, starting"),
    ("gcp", {"3team": "ops"}, {"tags.3team"}, "starting with a letter"),
    ("gcp", {"k" * 64: "ops"}, {f"tags.{'k' * 64}"}, "1-63 lowercase"),
    ("gcp", {"team": "Ops"}, {"tags.team"}, "0-63 lowercase"),
    ("gcp", {"team": "platform.ops"}, {"tags.team"}, "0-63 lowercase"),
    ("azure", {f"t{i}": "x" for i in range(47)}, {"tags"}, "51 tags, more than the 50"),
    ("azure", {"k" * 129: "x"}, {f"tags.{'k' * 129}"}, "1-128 letters"),
    ("azure", {"a/b": "x"}, {"tags.a/b"}, "1-128 letters"),
    ("azure", {"team": "v" * 257}, {"tags.team"}, "0-256 letters"),
    ("azure", {"Team": "a", "team": "b"}, {"tags.team"}, "names ignore case"),
]


@pytest.mark.parametrize(
    ("target", "tags", "keys", "text"),
    TAG_CASES,
    ids=[f"{c[0]}-{i}" for i, c in enumerate(TAG_CASES)],
)
def test_each_cloud_s_tag_limits(target, tags, keys, text):
    stack = "enterprise" if target == "gcp" else "prod"
    problems = [
        p for p in _refused(stack, target, {"tags": tags}) if p.startswith("pganalytics:tags")
    ]
    assert _keys(problems) == {f"pganalytics:{k}" for k in keys}, problems
    assert all(text in p for p in problems), problems


def test_a_suggested_tag_value_is_accepted_by_its_cloud():
    for target, value in (
        ("gcp", "Platform.Ops Team"),
        ("aws", "ops;rm -rf"),
        ("azure", "a" * 300),
    ):
        stack = "enterprise" if target == "gcp" else "prod"
        problems = _refused(stack, target, {"tags": {"team": value}})
        fixed = re.search(
            r"fix: pulumi config set --path pganalytics:tags\.team (.*)$", problems[0]
        )
        assert fixed, problems
        raw = fixed.group(1)
        value = raw[1:-1] if raw.startswith('"') else raw
        assert _refused(stack, target, {"tags": {"team": value}}) == [], value
