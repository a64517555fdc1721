"""The real Pulumi engine, driven from the tests and the benchmark.

`build_engine()` finds (or, offline, builds) the pinned Pulumi CLI and the engine's plugins
with tools/build.sh, the same discovery as `make deploy`: PATH, the language host beside the
CLI, $PULUMI_HOME/plugins, `pulumi plugin install`, and only then the offline source build.
`Project` is a throwaway project directory whose entries are symlinks to this repository's
program (`Pulumi.yaml`, `__main__.py`, `components/`, `charts/`, `scripts/`,
`policy/`, `.venv`), so the real program runs while its stack files, its local state backend
and its passphrase live in the temp dir and the checkout stays untouched.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
BUILD_SH = ROOT / "tools" / "build.sh"
PROGRAM_ENTRIES = ("Pulumi.yaml", "__main__.py", "components", "charts", "scripts", "policy")
PLUGINS = ("pulumi-language-python", "pulumi-resource-kubernetes", "pulumi-resource-random")


class EngineError(RuntimeError):
    """The engine could not be built, or a pulumi command failed; the message has its output."""


@dataclass
class Engine:
    pulumi_bin: Path  # directory of the pulumi CLI
    plugin_dirs: tuple[Path, ...]  # directories of the three plugins (tools/build.sh plugins)

    def path(self, base: str | None = None) -> str:
        """PATH for the engine: the pinned CLI first, the user's PATH, then the plugins'
        directories. A Project runs with its own PULUMI_HOME, so plugins found in
        ~/.pulumi/plugins reach the engine through PATH too."""
        parts = [str(self.pulumi_bin), base if base is not None else os.environ["PATH"]]
        parts += [str(d) for d in self.plugin_dirs]
        return os.pathsep.join(parts)


def _build_sh(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(BUILD_SH), *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def build_engine(log=sys.stderr) -> Engine:
    """tools/build.sh all pulumi pulumi-plugins: the control plane, the CLI and the plugins in
    one call, so that a cold offline build compiles the plugins in parallel with the Go tools."""
    started = time.monotonic()
    proc = _build_sh("all", "pulumi", "pulumi-plugins")
    if proc.returncode != 0:
        tail = "\n".join(proc.stdout.splitlines()[-40:])
        raise EngineError(
            f"tools/build.sh all pulumi pulumi-plugins failed (exit {proc.returncode}).\n{tail}"
        )
    for line in proc.stdout.splitlines():
        if "==>" in line:
            print(line, file=log)
    print(f"==> engine ready in {time.monotonic() - started:.1f}s", file=log)
    pulumi_bin = _build_sh("bindir", "pulumi")
    if pulumi_bin.returncode != 0:
        raise EngineError(pulumi_bin.stdout)
    plugins = subprocess.run(
        ["bash", str(BUILD_SH), "plugins"], cwd=ROOT, capture_output=True, text=True
    )
    if plugins.returncode != 0:
        raise EngineError(plugins.stderr)
    found = [line.split(" ") for line in plugins.stdout.splitlines()]
    if sorted(f[0] for f in found) != sorted(PLUGINS):
        raise EngineError(f"tools/build.sh plugins listed {plugins.stdout!r}, not {PLUGINS}")
    dirs = tuple(dict.fromkeys(Path(f[1]).parent for f in found))
    return Engine(Path(pulumi_bin.stdout.strip()), dirs)


@dataclass
class Result:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return f"{self.stdout}\n{self.stderr}".strip()

    def describe(self) -> str:
        return (
            f"`pulumi {' '.join(self.args)}` exited {self.returncode}; the engine said:\n"
            f"{_tail(self.output, 120)}"
        )


def _tail(text: str, lines: int) -> str:
    return "\n".join(text.splitlines()[-lines:])


class Project:
    """A throwaway project dir (symlinks to the program), a local backend and a passphrase."""

    def __init__(self, engine: Engine, workdir: Path, stack: str = "dev"):
        self.engine = engine
        self.stack = stack
        self.dir = workdir / "project"
        self.dir.mkdir(parents=True)
        for entry in (*PROGRAM_ENTRIES, ".venv"):
            if (ROOT / entry).exists():
                (self.dir / entry).symlink_to(ROOT / entry)
        self.state = workdir / "state"
        self.state.mkdir()
        self.home = workdir / "pulumi-home"
        self.passphrase = secrets.token_urlsafe(24)
        self.stack_file = self.dir / f"Pulumi.{stack}.yaml"

    # ----- environment --------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("PULUMI_") and k not in ("KUBECONFIG", "PGA_LOCAL_STATE")
        }
        env.update(
            {
                "PATH": self.engine.path(),
                "PULUMI_HOME": str(self.home),
                # As scripts/pulumi.sh: no sidecar .attrs files (see there).
                "PULUMI_BACKEND_URL": f"file://{self.state}?metadata=skip",
                "PULUMI_CONFIG_PASSPHRASE": self.passphrase,
                "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
                "PULUMI_SKIP_UPDATE_CHECK": "true",
                # The stacks name their cluster in pganalytics:kubeconfig; nothing ambient.
                "KUBECONFIG": str(self.dir / "no-ambient-kubeconfig"),
                "NO_PROXY": "127.0.0.1,localhost",
                "no_proxy": "127.0.0.1,localhost",
            }
        )
        return env

    # ----- commands -----------------------------------------------------------------------

    def run(
        self,
        *args: str,
        input: str | None = None,
        timeout: float = 900,
        check: bool = True,
        env: dict[str, str] | None = None,
    ) -> Result:
        argv = [*args, "--non-interactive"]
        proc = subprocess.run(
            ["pulumi", *argv],
            cwd=self.dir,
            env={**self.env(), **(env or {})},
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        result = Result(argv, proc.returncode, proc.stdout, proc.stderr)
        if check and proc.returncode != 0:
            raise EngineError(result.describe())
        return result

    def start(self, *args: str, log: Path) -> subprocess.Popen:
        """A pulumi command in the background (its own process group), output to `log`."""
        with open(log, "w") as out:
            return subprocess.Popen(
                ["pulumi", *args, "--non-interactive"],
                cwd=self.dir,
                env=self.env(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @staticmethod
    def kill(proc: subprocess.Popen) -> None:
        """SIGKILL, as when a CI runner or a laptop dies: no clean-up, no lock release."""
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)

    def init(self, config: dict, secret_config: dict[str, str] | None = None) -> None:
        """Creates the stack with `config` (pganalytics:* keys) and secret values."""
        self.stack_file.write_text(yaml.safe_dump({"config": config}, sort_keys=False))
        self.run("stack", "init", self.stack, "--secrets-provider", "passphrase")
        for key, value in (secret_config or {}).items():
            # The value through stdin: a kubeconfig is multi-line and never on a command line.
            self.run("config", "set", "--secret", key, "--stack", self.stack, input=value)

    def set_config(self, path: str, value: str, *flags: str) -> None:
        """`flags`: e.g. --secret, or --plaintext for a key the CLI takes for a secret."""
        self.run("config", "set", "--path", *flags, path, value, "--stack", self.stack)

    def rm_config(self, path: str) -> None:
        self.run("config", "rm", "--path", path, "--stack", self.stack)

    def up(self, *extra: str, check: bool = True, env: dict[str, str] | None = None) -> Result:
        return self.run("up", "--yes", "--stack", self.stack, *extra, check=check, env=env)

    def preview(self, *extra: str, check: bool = True, env: dict[str, str] | None = None) -> Result:
        return self.run("preview", "--stack", self.stack, *extra, check=check, env=env)

    def destroy(self, *extra: str, check: bool = True, env: dict[str, str] | None = None) -> Result:
        return self.run("destroy", "--yes", "--stack", self.stack, *extra, check=check, env=env)

    def preview_script(
        self, *flags: str, comment_limit: int | None = None
    ) -> tuple[subprocess.CompletedProcess, str]:
        """scripts/preview.sh <stack>, as the preview workflow runs it, in this project:
        (the process, whose stdout is the full report; the comment-sized report)."""
        comment = self.dir.parent / "comment.md"
        comment.unlink(missing_ok=True)
        env = {**self.env(), "PREVIEW_COMMENT": str(comment)}
        if comment_limit:
            env["PREVIEW_COMMENT_LIMIT"] = str(comment_limit)
        proc = subprocess.run(
            ["bash", str(self.dir / "scripts" / "preview.sh"), self.stack, *flags],
            cwd=self.dir,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        return proc, comment.read_text() if comment.exists() else ""

    def outputs(self, show_secrets: bool = False) -> dict:
        args = ["stack", "output", "--json", "--stack", self.stack]
        if show_secrets:
            args.append("--show-secrets")
        return json.loads(self.run(*args).stdout)

    def export(self) -> dict:
        """The stack's checkpoint (secrets stay encrypted)."""
        return json.loads(self.run("stack", "export", "--stack", self.stack).stdout)

    def resources(self) -> list[dict]:
        return self.export()["deployment"].get("resources") or []

    def k8s_objects(self) -> dict[tuple[str, str, str], dict]:
        """(kind, namespace, name) -> state entry of every Kubernetes object in the stack; a
        `...Patch` resource (e.g. a claim patch) changes an object it does not own: left out."""
        found = {}
        for r in self.resources():
            t = r["type"]
            if (
                not t.startswith("kubernetes:")
                or not r.get("custom")
                or t.startswith("pulumi:providers:")
            ):
                continue
            if t.startswith("kubernetes:helm.sh/") or t.endswith("Patch"):
                continue
            meta = (r.get("outputs") or {}).get("metadata") or {}
            kind = t.rsplit(":", 1)[1]
            found[(kind, meta.get("namespace", ""), meta.get("name", ""))] = r
        return found
