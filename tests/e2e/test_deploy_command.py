"""The README's deploy command as a new user runs it: `make deploy` / `make destroy` through
scripts/pulumi.sh, in a checkout-like tree, with a fresh HOME (no Pulumi login, no state, no
passphrase, no kubeconfig context).

Two users: one with no `pulumi` on PATH (the offline fallback builds it; the Go tool cache
PGA_TOOLS_CACHE and the plugin sources PGA_THIRD_PARTY are the machine's, so nothing is
rebuilt), and one with Pulumi installed the ordinary way (the CLI with its language host on
PATH, the providers in ~/.pulumi/plugins) and no Go at all, whose virtualenv is built from
requirements.lock alone.

The tree is symlinks to this repository (Makefile, scripts, tools, program, chart, venv) plus
real copies of the stack files, which must come out of a deploy unchanged.
"""

from __future__ import annotations

import os
import pty
import re
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
    "policy",
    "requirements.txt",
    "requirements-dev.txt",
    "requirements.lock",
    "requirements-dev.lock",
    ".venv",
    ".tools",
)
STACK_FILES = ("dev", "prod", "enterprise")
TOOLS_CACHE = Path(os.environ.get("PGA_TOOLS_CACHE", Path.home() / ".cache/pganalytics-tools"))
# Go is a prerequisite of the README; wherever this machine has it.
GO_DIR = [str(Path(shutil.which("go")).parent)] if shutil.which("go") else []
THIRD_PARTY = Path(os.environ.get("PGA_THIRD_PARTY", ROOT.parent / "shared" / "third_party"))


def checkout(tmp: Path, own: tuple[str, ...] = ()) -> Path:
    """Symlinks to this repository, copies of the stack files; `own` entries (.venv, .tools)
    are left for the tree's own bootstrap to make."""
    tree = tmp / "checkout"
    tree.mkdir()
    for entry in TREE:
        if entry not in own:
            (tree / entry).symlink_to(ROOT / entry)
    for stack in STACK_FILES:
        shutil.copyfile(ROOT / f"Pulumi.{stack}.yaml", tree / f"Pulumi.{stack}.yaml")
    return tree


def stack_files(tree: Path) -> dict[str, bytes]:
    return {s: (tree / f"Pulumi.{s}.yaml").read_bytes() for s in STACK_FILES}


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
        # Confirmed in advance: stdin is no terminal (tests of the prompt give it one).
        "YES": "1",
    }
    for key in ("GOPROXY", "GOFLAGS", "GONOSUMDB", "GOPRIVATE", "GOSUMDB"):
        if key in os.environ:
            env[key] = os.environ[key]
    env.update(extra)
    return env


def make(tree: Path, target: str, env: dict, timeout: float = 1200) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", *target.split()],
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
    shipped = stack_files(tree)
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
    # The stack is gone from the local backend; the project's stack files are as shipped
    # (no encryptionsalt written into them, booleans still booleans).
    stacks = Path(env["HOME"]) / ".pulumi" / "stacks" / "pganalytics"
    assert stacks.is_dir() and not (stacks / "dev.json").exists(), list(stacks.iterdir())
    assert stack_files(tree) == shipped


def context_tree(tmp_path: Path, namespace: str, **own) -> Path:
    """A checkout whose dev stack suits the harness cluster (its IngressClass, no Traefik chart
    to fetch) in a namespace of its own."""
    tree = checkout(tmp_path, **own)
    doc = yaml.safe_load((tree / "Pulumi.dev.yaml").read_text())
    doc["config"]["pganalytics:ingress"].update({"controller": "none", "className": INGRESS_CLASS})
    doc["config"]["pganalytics:chart"] = {"namespace": namespace}
    (tree / "Pulumi.dev.yaml").write_text(yaml.safe_dump(doc))
    return tree


def answered(tree: Path, target: str, env: dict, answer: str) -> tuple[int, str]:
    """`make <target>` with a terminal as stdin, typing `answer` at the prompt."""
    master, slave = pty.openpty()
    with subprocess.Popen(
        ["make", *target.split()],
        cwd=tree,
        env=env,
        stdin=slave,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as proc:
        os.close(slave)
        os.write(master, answer.encode())
        out, _ = proc.communicate(timeout=1200)
    os.close(master)
    return proc.returncode, out


def test_make_deploy_with_a_context_shows_the_preview_asks_then_updates_once(
    engine, cluster, tmp_path
):
    tree = context_tree(tmp_path, "pga-e2e-context")
    shipped = stack_files(tree)
    env = user_env(tmp_path, KUBECONFIG=str(cluster.kubeconfig))
    del env["YES"]  # a person at a terminal
    preview = make(tree, "preview", {**env, "YES": ""})
    assert preview.returncode == 0, shown(preview)
    assert "cluster: kubeconfig context pga-test" in preview.stdout
    assert "SIMULATED" not in preview.stdout
    assert "StatefulSet" in preview.stdout and "pganalytics-platform" in preview.stdout
    try:
        refused, out = answered(tree, "deploy", env, "n\n")
        assert refused != 0 and "not deployed" in out, out[-3000:]
        assert "Updating (dev)" not in out
        status, out = answered(tree, "deploy", env, "y\n")
        assert status == 0, out[-6000:]
        # The preview the person read, the question, then the update without a second preview.
        asked = out.index("Deploy these changes to stack 'dev'?")
        assert out.count("Previewing update (dev)") == 1, out[-6000:]
        assert out.index("Previewing update (dev)") < asked < out.index("Updating (dev)")
        assert "pganalytics-platform" in out  # the policy pack ran
        # PREVIEWED=1 (the deploy workflow on main): no preview pass at all.
        again = make(tree, "deploy", {**env, "YES": "1", "PREVIEWED": "1"})
        assert again.returncode == 0, shown(again)
        assert "Previewing update" not in again.stdout and "Updating (dev)" in again.stdout
    finally:
        destroy = make(tree, "destroy", {**env, "YES": "1"})
    assert destroy.returncode == 0, shown(destroy)
    assert stack_files(tree) == shipped


# --- Pulumi installed the ordinary way, no Go ----------------------------------------------------


@pytest.fixture(scope="module")
def ordinary_install(engine, tmp_path_factory):
    """A machine with Pulumi installed as its installer does it: the CLI and its language host
    in one directory on PATH, the providers in ~/.pulumi/plugins/resource-<name>-v<pin>/ (as
    `pulumi plugin install` leaves them; here the plugins this machine has), no Go anywhere."""
    base = tmp_path_factory.mktemp("ordinary")
    found = dict(
        line.split(" ", 1)
        for line in subprocess.run(
            ["bash", str(ROOT / "tools/build.sh"), "plugins"], capture_output=True, text=True
        ).stdout.splitlines()
    )
    install = base / "pulumi-install"
    install.mkdir()
    (install / "pulumi").symlink_to(engine.pulumi_bin / "pulumi")
    host = Path(found["pulumi-language-python"].rsplit(" ", 1)[0])
    for name in (
        "pulumi-language-python",
        "pulumi-language-python-exec",
        "pulumi-resource-pulumi-python",
    ):
        (install / name).symlink_to(host.parent / name)
    home = base / "home"
    pins = (ROOT / "requirements.txt").read_text()
    for provider in ("kubernetes", "random"):
        version = re.search(rf"^pulumi-{provider}==(\S+)", pins, re.M).group(1)
        plugin_dir = home / ".pulumi" / "plugins" / f"resource-{provider}-v{version}"
        plugin_dir.mkdir(parents=True)
        binary = f"pulumi-resource-{provider}"
        (plugin_dir / binary).symlink_to(Path(found[binary].rsplit(" ", 1)[0]))
    assert not shutil.which("go", path=f"{install}:/usr/bin:/bin"), "go would be on PATH"
    return install, home


def ordinary_env(tmp_path: Path, install: Path, home: Path, **extra) -> dict:
    env = user_env(tmp_path, **extra)
    env.update(
        HOME=str(home),
        PATH=os.pathsep.join([str(install), "/usr/bin", "/bin"]),  # no Go
        # Nothing cached and no plugin sources: any build would fail.
        PGA_TOOLS_CACHE=str(tmp_path / "empty-tool-cache"),
        PGA_THIRD_PARTY=str(tmp_path / "no-plugin-sources"),
    )
    return env


@pytest.fixture(scope="module")
def deploy_venv(tmp_path_factory):
    """A checkout's own .venv, made by `scripts/bootstrap.sh deploy` (what make deploy runs)."""
    base = tmp_path_factory.mktemp("deploy-venv")
    tree = checkout(base, own=(".venv", ".tools"))
    # The machine's pip settings (index, certificates, proxies) and cache; the system Python.
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env.update(HOME=str(base), PATH="/usr/bin:/bin", PYTHON="/usr/bin/python3")
    env.setdefault("PIP_CACHE_DIR", str(Path.home() / ".cache" / "pip"))
    proc = subprocess.run(
        ["scripts/bootstrap.sh", "deploy"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert proc.returncode == 0, shown(proc)
    return tree


def test_the_deploy_venv_holds_requirements_lock_and_no_test_tooling(deploy_venv):
    freeze = subprocess.run(
        [str(deploy_venv / ".venv/bin/python"), "-m", "pip", "freeze"],
        capture_output=True,
        text=True,
    ).stdout
    installed = {
        re.sub(r"[-_.]+", "-", line.split("==")[0]).lower(): line.split("==")[1]
        for line in freeze.splitlines()
        if "==" in line
    }
    locked = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==(\S+)", line)
        if m and "python_full_version < '3.1" not in line:
            locked[re.sub(r"[-_.]+", "-", m.group(1)).lower()] = m.group(2)
    assert installed == {k: v for k, v in locked.items() if k in installed}, installed
    assert set(installed) <= set(locked), set(installed) - set(locked)
    for pin in ("pulumi", "pulumi-kubernetes", "pulumi-policy", "pydantic"):
        assert pin in installed, pin
    for tool in ("pytest", "ruff", "zizmor", "moto", "uv", "yamllint"):
        assert tool not in installed, tool
    assert not (deploy_venv / ".tools/bin/actionlint").exists()


def test_make_deploy_with_an_ordinary_pulumi_install_needs_no_go(
    ordinary_install, deploy_venv, cluster, tmp_path
):
    install, home = ordinary_install
    tree = tmp_path / "tree"
    shutil.copytree(deploy_venv, tree, symlinks=True)
    doc = yaml.safe_load((tree / "Pulumi.dev.yaml").read_text())
    doc["config"]["pganalytics:ingress"].update({"controller": "none", "className": INGRESS_CLASS})
    doc["config"]["pganalytics:chart"] = {"namespace": "pga-e2e-ordinary"}
    (tree / "Pulumi.dev.yaml").write_text(yaml.safe_dump(doc))
    written = stack_files(tree)
    env = ordinary_env(tmp_path, install, home, KUBECONFIG=str(cluster.kubeconfig))
    try:
        deploy = make(tree, "deploy", env)
        assert deploy.returncode == 0, shown(deploy)
        out = deploy.stdout + deploy.stderr
        assert "offline fallback" not in out and "building" not in out, shown(deploy)
        assert "pulumi-resource-kubernetes" in out and "pulumi-home" in out
        assert "stack 'dev' outputs:" in deploy.stdout
    finally:
        destroy = make(tree, "destroy", env)
    assert destroy.returncode == 0, shown(destroy)
    assert stack_files(tree) == written


def test_make_deploy_without_a_cluster_or_go_says_what_to_do(
    ordinary_install, deploy_venv, tmp_path
):
    install, home = ordinary_install
    tree = tmp_path / "tree"
    shutil.copytree(deploy_venv, tree, symlinks=True)
    env = ordinary_env(tmp_path, install, home)
    proc = make(tree, "preview", env, timeout=600)
    assert proc.returncode != 0, shown(proc)
    err = proc.stderr
    assert "the local simulated" in err and "no 'go' is on PATH" in err, shown(proc)
    assert "kind create cluster" in err and "install Go" in err
    assert not (Path(env["PGA_TOOLS_CACHE"]) / "kube-apiserver-v1").exists()


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
    assert "pulumi.com/docs/install" in proc.stderr
    assert "no plugin sources to build them from" in proc.stderr
    assert "no-such-dir/build.sh" in proc.stderr


def test_tools_build_names_what_is_not_built_or_found(tmp_path):
    env = {**os.environ, "PGA_TOOLS_CACHE": str(tmp_path), "HOME": str(tmp_path)}
    env["PATH"] = "/usr/bin:/bin"
    proc = subprocess.run(
        ["bash", str(ROOT / "tools/build.sh"), "bindir", "pulumi"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1
    assert "run: tools/build.sh pulumi" in proc.stderr
    plugins = subprocess.run(
        ["bash", str(ROOT / "tools/build.sh"), "plugins"], env=env, capture_output=True, text=True
    )
    assert plugins.returncode == 1
    assert (
        "pulumi-resource-kubernetes: not found (run: tools/build.sh pulumi-plugins)"
        in plugins.stderr
    )


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
