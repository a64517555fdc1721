"""The README's deploy command as a new user runs it: `make deploy` / `make destroy` through
scripts/pulumi.sh, in a checkout-like tree, with a fresh HOME (no Pulumi login, no state, no
passphrase, no kubeconfig context) and no `pulumi` on PATH.

The tree is symlinks to this repository (Makefile, scripts, tools, program, chart, venv) plus
a real copy of Pulumi.dev.yaml, which `pulumi stack init` writes its salt into. Only the Go tool
cache (PGA_TOOLS_CACHE) and the plugin sources (PGA_THIRD_PARTY) are shared with the machine,
so nothing is rebuilt.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.cluster.harness import INGRESS_CLASS

from .engine import ROOT

TREE = (
    "Makefile",
    "Pulumi.yaml",
    "__main__.py",
    "components",
    "charts",
    "scripts",
    "tools",
    "tests",
    "requirements.txt",
    "requirements-dev.txt",
    ".venv",
    ".tools",
)
TOOLS_CACHE = Path(os.environ.get("PGA_TOOLS_CACHE", Path.home() / ".cache/pganalytics-tools"))
# Go is a prerequisite of the README; wherever this machine has it.
GO_DIR = [str(Path(shutil.which("go")).parent)] if shutil.which("go") else []
THIRD_PARTY = Path(os.environ.get("PGA_THIRD_PARTY", ROOT.parent / "shared" / "third_party"))


def checkout(tmp: Path) -> Path:
    tree = tmp / "checkout"
    tree.mkdir()
    for entry in TREE:
        (tree / entry).symlink_to(ROOT / entry)
    for stack in ("dev", "prod", "enterprise"):
        shutil.copyfile(ROOT / f"Pulumi.{stack}.yaml", tree / f"Pulumi.{stack}.yaml")
    return tree


def user_env(tmp: Path, path_dirs: list[str] | None = None, **extra: str) -> dict[str, str]:
    """A new user's environment: own HOME, the basic PATH (no pulumi), no PULUMI_* variable."""
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    env = {
        "HOME": str(home),
        "PATH": os.pathsep.join([*(path_dirs or []), *GO_DIR, "/usr/bin", "/bin"]),
        "KUBECONFIG": str(home / ".kube" / "config"),  # absent: no context
        "PGA_TOOLS_CACHE": str(TOOLS_CACHE),
        "PGA_THIRD_PARTY": str(THIRD_PARTY),
        # Go's caches stay the machine's (only read when a tool needs building).
        "GOCACHE": os.environ.get("GOCACHE") or str(Path.home() / ".cache" / "go-build"),
        "GOMODCACHE": os.environ.get("GOMODCACHE") or str(Path.home() / "go" / "pkg" / "mod"),
        "LANG": "C.UTF-8",
    }
    for key in ("GOPROXY", "GOFLAGS", "GONOSUMDB", "GOPRIVATE", "GOSUMDB"):
        if key in os.environ:
            env[key] = os.environ[key]
    env.update(extra)
    return env


def make(tree: Path, target: str, env: dict, timeout: float = 1200) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", target],
        cwd=tree,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def shown(proc: subprocess.CompletedProcess) -> str:
    out, err = proc.stdout[-8000:], proc.stderr[-8000:]
    return f"exit {proc.returncode}\n--- stdout\n{out}\n--- stderr\n{err}"


def test_make_deploy_without_a_context_deploys_dev_on_a_simulated_cluster(engine, tmp_path):
    tree = checkout(tmp_path)
    env = user_env(tmp_path)
    try:
        deploy = make(tree, "deploy", env)
        assert deploy.returncode == 0, shown(deploy)
        out = deploy.stdout
        assert "--print-bin" not in deploy.stderr
        assert "starting a local SIMULATED cluster" in out, shown(deploy)
        assert "no container runs" in out and "'make destroy' removes the stack" in out
        # It ends with the stack outputs.
        outputs_at = out.rindex("stack 'dev' outputs:")
        tail = out[outputs_at:]
        for name in ("apiUrl", "grafanaUrl", "kubeconfig", "namespace", "target"):
            assert name in tail, shown(deploy)
        assert "[secret]" in tail
        kubeconfig = Path(env["HOME"]) / ".local/state/pganalytics/local-cluster/kubeconfig"
        assert kubeconfig.is_file()
        pods = subprocess.run(
            [str(ROOT / ".tools/bin/kubectl"), "get", "pods", "-n", "pganalytics", "-o", "name"],
            env={**env, "KUBECONFIG": str(kubeconfig)},
            capture_output=True,
            text=True,
        )
        assert pods.returncode == 0 and "pod/pganalytics-timescaledb-0" in pods.stdout, pods
        # Run again: it reuses the running simulated cluster and changes nothing.
        again = make(tree, "deploy", env)
        assert again.returncode == 0, shown(again)
        assert "starting a local SIMULATED cluster" not in again.stdout
        assert "cluster: the local simulated cluster" in again.stdout
    finally:
        destroy = make(tree, "destroy", env)
    assert destroy.returncode == 0, shown(destroy)
    assert "removed stack 'dev' and the local simulated cluster" in destroy.stdout
    assert not (Path(env["HOME"]) / ".local/state/pganalytics/local-cluster").exists()
    # The stack is gone from the local backend; the project's stack file stays.
    stacks = Path(env["HOME"]) / ".pulumi" / "stacks" / "pganalytics"
    assert not list(stacks.glob("dev.json*")), list(stacks.iterdir())
    assert (tree / "Pulumi.dev.yaml").is_file()


def test_make_deploy_with_a_context_uses_it(engine, cluster, tmp_path):
    tree = checkout(tmp_path)
    # This cluster has the harness's IngressClass and no Traefik chart to fetch.
    doc = yaml.safe_load((tree / "Pulumi.dev.yaml").read_text())
    doc["config"]["pganalytics:ingress"].update({"controller": "none", "className": INGRESS_CLASS})
    doc["config"]["pganalytics:chart"] = {"namespace": "pga-e2e-context"}
    (tree / "Pulumi.dev.yaml").write_text(yaml.safe_dump(doc))
    env = user_env(tmp_path, KUBECONFIG=str(cluster.kubeconfig))
    preview = make(tree, "preview", env)
    assert preview.returncode == 0, shown(preview)
    assert "cluster: kubeconfig context pga-test" in preview.stdout
    assert "SIMULATED" not in preview.stdout
    assert "kubernetes:apps/v1:StatefulSet" in preview.stdout or "StatefulSet" in preview.stdout


def test_deploy_without_language_host_or_plugin_sources_names_the_installer(tmp_path):
    fakes = tmp_path / "bin"
    fakes.mkdir()
    (fakes / "pulumi").write_text("#!/bin/sh\nexit 0\n")  # a CLI without its language host
    (fakes / "pulumi").chmod(0o755)
    env = user_env(
        tmp_path,
        [str(fakes)],
        PGA_TOOLS_CACHE=str(tmp_path / "empty-cache"),
        PGA_THIRD_PARTY=str(tmp_path / "no-such-dir"),
    )
    proc = subprocess.run(
        ["scripts/pulumi.sh", "preview", "dev"],
        cwd=checkout(tmp_path),
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 1, shown(proc)
    assert "pulumi-language-python" in proc.stderr
    assert "get.pulumi.com" in proc.stderr
    assert "no-such-dir/build.sh is missing" in proc.stderr


@pytest.mark.parametrize("missing", ["pulumi", "plugins"])
def test_tools_build_bindir_names_what_is_not_built(tmp_path, missing):
    tool = {"pulumi": "pulumi", "plugins": "pulumi-plugins"}[missing]
    proc = subprocess.run(
        ["bash", str(ROOT / "tools/build.sh"), "bindir", tool],
        env={**os.environ, "PGA_TOOLS_CACHE": str(tmp_path)},
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1
    assert f"run: tools/build.sh {tool}" in proc.stderr


def test_readme_and_bootstrap_ask_for_the_go_the_builds_need():
    pinned = next(
        line.split("=", 1)[1]
        for line in (ROOT / "tools/versions.env").read_text().splitlines()
        if line.startswith("GO_MIN_VERSION=")
    )
    minor = ".".join(pinned.split(".")[:2])
    readme = (ROOT / "README.md").read_text()
    assert f"Go {minor}+" in readme
    assert "Go 1.22" not in readme
    assert "GO_MIN_VERSION" in (ROOT / "scripts/bootstrap.sh").read_text()
