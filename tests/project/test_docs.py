"""Every command the docs tell a user to run refers to something that exists: each
`pulumi config set pganalytics:<key>` names a key declared in Pulumi.yaml, each `make <target>`
names a Makefile target, each script path exists."""

import re

import pytest
import yaml

from tests.conftest import ROOT

DOCS = sorted(
    [ROOT / "README.md", ROOT / "charts" / "pganalytics" / "README.md", *ROOT.glob("docs/*.md")]
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
