"""Every command the docs tell a user to run refers to something that exists: each
`pulumi config set pganalytics:<key>` names a key declared in Pulumi.yaml, each `make <target>`
names a Makefile target, each script path exists."""

import re

import pytest
import yaml

from tests.conftest import ROOT

DOCS = sorted(
    [
        ROOT / "README.md",
        ROOT / "CONTRIBUTING.md",
        ROOT / "SECURITY.md",
        ROOT / "CHANGELOG.md",
        ROOT / "charts" / "pganalytics" / "README.md",
        *ROOT.glob("docs/*.md"),
    ]
)
CONFIG_SET = re.compile(r"pulumi config set\b[^\n`]*?\bpganalytics:([A-Za-z0-9_]+)")
MAKE = re.compile(r"(?<![\w-])make ([a-z][a-z0-9-]*)")
SCRIPT = re.compile(r"(?<![\w/.-])((?:scripts|tools|\.ci)/[\w./-]+\w)")


def declared_config_keys() -> set[str]:
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    name = project["name"]
    keys = set()
    for key in project.get("config") or {}:
        namespace, _, bare = key.rpartition(":")
        if namespace in ("", name):
            keys.add(bare)
    return keys


def makefile_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([a-z][a-z0-9-]*):", text, flags=re.M))


def doc_text(path):
    return path.read_text() if path.exists() else ""


def test_the_docs_exist():
    for path in (ROOT / "README.md", ROOT / "docs" / "KUBERNETES_DEPLOYMENT.md"):
        assert path.exists(), f"{path.relative_to(ROOT)} is missing"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_config_keys_in_docs_are_declared(doc):
    known = declared_config_keys()
    used = set(CONFIG_SET.findall(doc_text(doc)))
    unknown = sorted(used - known)
    assert not unknown, f"{doc.name} sets config keys Pulumi.yaml does not declare: {unknown}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_make_targets_in_docs_exist(doc):
    unknown = sorted(set(MAKE.findall(doc_text(doc))) - makefile_targets())
    assert not unknown, f"{doc.name} names make targets the Makefile lacks: {unknown}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_script_paths_in_docs_exist(doc):
    missing = sorted({p for p in SCRIPT.findall(doc_text(doc)) if not (ROOT / p).exists()})
    assert not missing, f"{doc.name} refers to files that do not exist: {missing}"


# One `pulumi config set|rm|get` command (up to the end of its line or code span).
CONFIG_COMMAND = re.compile(r"pulumi config (?:set|rm|get)\b[^\n`]*")


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_nested_config_keys_are_set_with_path(doc):
    """`pulumi config set pganalytics:ingress.domain x` without --path sets a key literally
    named `ingress.domain`, which the program refuses: every dotted or indexed key needs it."""
    wrong = [
        command.strip()
        for command in CONFIG_COMMAND.findall(doc_text(doc))
        if re.search(r"pganalytics:[A-Za-z0-9_]+[.\[]", command) and "--path" not in command
    ]
    assert not wrong, f"{doc.name}: add --path to {wrong}"


def test_docs_show_config_commands():
    # Guards the extraction itself: were the regex to stop matching, the tests above would
    # pass on nothing.
    found = set()
    for doc in DOCS:
        found |= set(CONFIG_SET.findall(doc_text(doc)))
    assert len(found) >= 5, f"only {sorted(found)} found in the docs"


def test_readme_configuration_reference_lists_every_declared_key():
    text = (ROOT / "README.md").read_text()
    missing = [k for k in declared_config_keys() if f"`pganalytics:{k}`" not in text]
    assert not missing, f"README.md misses config keys {missing}: run 'make docs'"


# --- versions: CHANGELOG, UPGRADING, Chart.yaml, pyproject -----------------------------------


def changelog_versions() -> list[str]:
    text = (ROOT / "CHANGELOG.md").read_text()
    return re.findall(r"^## \[([^\]]+)\]", text, re.M)


def test_the_released_version_is_the_charts_and_the_programs():
    versions = changelog_versions()
    assert versions[0] == "Unreleased", versions
    released = versions[1]
    chart = yaml.safe_load((ROOT / "charts/pganalytics/Chart.yaml").read_text())
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert chart["version"] == released, (chart["version"], released)
    assert f'version = "{released}"' in pyproject


def test_every_one_time_change_names_a_version_of_the_changelog():
    text = (ROOT / "docs/UPGRADING.md").read_text()
    section = text.split("\n## One-time changes\n", 1)[1].split("\n## ", 1)[0]
    named = re.findall(r"^### To (\S+)", section, re.M)
    assert named, "docs/UPGRADING.md: no '### To <version>' under '## One-time changes'"
    unknown = [v for v in named if v not in changelog_versions()]
    assert not unknown, f"UPGRADING.md names versions CHANGELOG.md lacks: {unknown}"


def test_the_repository_files_users_look_for_exist():
    license_text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in license_text and "Version 2.0, January 2004" in license_text
    for name in ("CHANGELOG.md", "SECURITY.md", "CONTRIBUTING.md"):
        assert (ROOT / name).is_file(), name
    assert "make lock" in (ROOT / "CONTRIBUTING.md").read_text()
