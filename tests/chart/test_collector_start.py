"""The collector container's start script (files/collector/collector-start.sh), run as the
rendered Deployment runs it: its command and args, its env, a state directory that outlives
the "container" as the chart's emptyDir does.

CI has no pgAnalytics collector (the upstream source is not in the repository), so two
STAND-INS play the image's parts, each reduced to what the start script depends on:
- the image's entrypoint: skips registration when collector.id is saved, else registers
  when AUTO_REGISTER is true, then execs its command (as collector/entrypoint.sh of 3.3.0);
- the collector binary: `register` saves the id and token, the default mode loads the saved
  token, refreshes it (refresh needs a token that is still valid) and pushes.
The fake API issues tokens that expire after 1800 s, as the real one does, on a clock the
test moves forward. The real collector against the real API: tests/chart/verify_real_collector.py
(docs/APP_CONTRACT.md).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from hashlib import md5, sha1
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from .conftest import RELEASE, find, render

P = f"{RELEASE}-pganalytics"
SECRET = "registration-secret-for-the-test"
TOKEN_TTL = 1800  # backend/cmd/pganalytics-api/main.go:114 (collector tokens)
IMAGE_ENTRYPOINT = "/app/entrypoint.sh"
IMAGE_BINARY = "/usr/local/bin/pganalytics-collector"

STANDIN_ENTRYPOINT = """#!/bin/sh
# STAND-IN for the collector image's entrypoint (not the real one): the behaviour the start
# script relies on. Writes the config, registers only without a saved id, execs its command.
set -e
state="$PGANALYTICS_STATE_DIR"
persisted=""
[ -f "$state/collector.id" ] && persisted="$(cat "$state/collector.id")"
echo "id=${persisted:-${COLLECTOR_ID:-collector-001}}" > "$CONFIG_DIR/collector.toml"
if [ "$AUTO_REGISTER" = "true" ] && [ -n "$REGISTRATION_SECRET" ] && [ -z "$persisted" ]; then
  "$COLLECTOR_BINARY" register || echo "Warning: Auto-registration failed, continuing anyway..."
fi
if [ "$#" -eq 1 ] && [ "$1" = "$COLLECTOR_BINARY" ]; then exec "$1"; fi
exec "$@"
"""

STANDIN_COLLECTOR = '''"""STAND-IN for the collector binary (not the real one)."""
import json, os, sys, urllib.error, urllib.request

state, api = os.environ["PGANALYTICS_STATE_DIR"], os.environ["BACKEND_URL"]

def call(path, headers, body=None):
    req = urllib.request.Request(api + path, data=json.dumps(body or {}).encode(),
                                 headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, {}

if sys.argv[1:] == ["register"]:
    name = os.environ["COLLECTOR_NAME"]
    status, body = call("/api/v1/collectors/register",
                        {"X-Registration-Secret": os.environ["REGISTRATION_SECRET"]},
                        {"name": name, "hostname": name})
    if status != 200:
        sys.exit(1)
    open(os.path.join(state, "collector.token"), "w").write(body["token"])
    open(os.path.join(state, "collector.id"), "w").write(body["collector_id"])
    sys.exit(0)

token = open(os.path.join(state, "collector.token")).read()
status, body = call("/api/v1/collectors/refresh-token", {"Authorization": "Bearer " + token})
if status == 200:
    token = body["token"]
status, _ = call("/api/v1/metrics/push", {"Authorization": "Bearer " + token}, {"metrics": []})
print("push", status)
sys.exit(0 if status == 200 else 3)
'''


def collector_id(hostname: str) -> str:
    """The id the API gives a collector: uuid.NewSHA1(uuid.Nil, md5(hostname))
    (backend/internal/auth/service.go:151-152 of 3.3.0)."""
    digest = sha1(uuid.UUID(int=0).bytes + md5(hostname.encode()).digest()).digest()
    return str(uuid.UUID(bytes=digest[:16], version=5))


class FakeApi(ThreadingHTTPServer):
    """The three collector endpoints of the API, with expiring tokens and a movable clock."""

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.now = 1_000_000.0
        self.tokens: dict[str, tuple[str, float]] = {}  # token -> (collector id, expiry)
        self.calls: list[tuple[str, int]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def issue(self, collector_id: str) -> str:
        token = f"token-{len(self.tokens)}"
        self.tokens[token] = (collector_id, self.now + TOKEN_TTL)
        return token

    def valid(self, header: str | None) -> str | None:
        entry = self.tokens.get((header or "").removeprefix("Bearer "))
        return entry[0] if entry and entry[1] > self.now else None

    def count(self, path: str, status: int) -> int:
        return self.calls.count((path, status))


class _Handler(BaseHTTPRequestHandler):
    server: FakeApi

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        api, status, out = self.server, 401, {}
        if self.path == "/api/v1/collectors/register":
            if self.headers.get("X-Registration-Secret") == SECRET:
                # The real API derives the id from the hostname: the same name, the same id.
                cid = collector_id(body["hostname"])
                status, out = 200, {"collector_id": cid, "token": api.issue(cid)}
        elif self.path == "/api/v1/collectors/refresh-token":
            cid = api.valid(self.headers.get("Authorization"))
            if cid:
                status, out = 200, {"token": api.issue(cid)}
        elif self.path == "/api/v1/metrics/push" and api.valid(self.headers.get("Authorization")):
            status = 200
        api.calls.append((self.path, status))
        data = json.dumps(out).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def api():
    server = FakeApi()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def pod():
    """The rendered collector container, its start script and its plain env."""
    objs = render("values-prod.yaml")
    dep = find(objs, "Deployment", f"{P}-collector-bundled")
    spec = dep["spec"]["template"]["spec"]
    container = spec["containers"][0]
    scripts = find(objs, "ConfigMap", f"{P}-collector-scripts")["data"]
    env = dict(find(objs, "ConfigMap", f"{P}-collector")["data"])
    env.update({e["name"]: e["value"] for e in container["env"] if "value" in e})
    env["COLLECTOR_ID"] = env["COLLECTOR_ID"].replace("$(COLLECTOR_NAME)", env["COLLECTOR_NAME"])
    return spec, container, scripts, env


@pytest.fixture
def container(pod, tmp_path, api):
    """A function that starts the container once (its state survives between calls, as the
    emptyDir does across container restarts) and returns (exit code, output)."""
    _, c, scripts, env = pod
    mount = next(m for m in c["volumeMounts"] if m["name"] == "scripts")["mountPath"]
    script_path = c["command"][1]
    assert c["command"][0] == "/bin/sh" and script_path.startswith(mount + "/")
    start = tmp_path / "scripts" / script_path.removeprefix(mount + "/")
    start.parent.mkdir()
    start.write_text(scripts[start.name])
    entrypoint, binary = tmp_path / "entrypoint.sh", tmp_path / "collector"
    entrypoint.write_text(STANDIN_ENTRYPOINT)
    binary.write_text(f"#!{sys.executable}\n{STANDIN_COLLECTOR}")
    for f in (entrypoint, binary):
        f.chmod(0o755)
    stand_in = {IMAGE_ENTRYPOINT: str(entrypoint), IMAGE_BINARY: str(binary)}
    for d in ("state", "config"):
        (tmp_path / d).mkdir()
    run_env = {
        "PATH": os.environ["PATH"],
        **env,
        "BACKEND_URL": api.url,
        "REGISTRATION_SECRET": SECRET,
        "PGANALYTICS_STATE_DIR": str(tmp_path / "state"),
        "CONFIG_DIR": str(tmp_path / "config"),
        "COLLECTOR_BINARY": str(binary),
    }

    def start_container(command=None, **extra):
        argv = command or ["/bin/sh", str(start), *[stand_in.get(a, a) for a in c["args"]]]
        proc = subprocess.run(
            argv, env={**run_env, **extra}, capture_output=True, text=True, timeout=30
        )
        return proc.returncode, proc.stdout + proc.stderr

    start_container.state = tmp_path / "state"
    start_container.config = tmp_path / "config"
    start_container.image_default = [str(entrypoint), str(binary)]
    return start_container


def test_the_chart_starts_the_image_entrypoint_through_the_start_script(pod):
    spec, c, scripts, env = pod
    assert c["args"] == [IMAGE_ENTRYPOINT, IMAGE_BINARY]
    assert list(scripts) == ["collector-start.sh"]
    vol = next(v for v in spec["volumes"] if v["name"] == "scripts")
    assert vol["configMap"]["name"] == f"{P}-collector-scripts"
    state = next(m for m in c["volumeMounts"] if m["mountPath"] == "/var/lib/pganalytics")
    assert "emptyDir" in next(v for v in spec["volumes"] if v["name"] == state["name"])
    assert env["AUTO_REGISTER"] == "true"
    assert env["COLLECTOR_ID"] == env["COLLECTOR_NAME"] == "bundled"


def test_first_start_registers_and_pushes(container, api):
    code, out = container()
    assert code == 0, out
    assert api.count("/api/v1/collectors/register", 200) == 1
    assert api.count("/api/v1/metrics/push", 200) == 1
    # the config the collector runs with names the id the API knows (pass 2 of the script)
    cid = (container.state / "collector.id").read_text()
    assert (container.config / "collector.toml").read_text().strip() == f"id={cid}"


def test_a_restart_after_the_token_expired_registers_again_and_pushes(container, api):
    assert container()[0] == 0
    first_id = (container.state / "collector.id").read_text()
    api.now += TOKEN_TTL + 1  # the container restarts 30 minutes later; the emptyDir stays
    code, out = container()
    assert code == 0, out
    assert api.count("/api/v1/collectors/register", 200) == 2
    assert api.count("/api/v1/metrics/push", 200) == 2
    assert api.count("/api/v1/metrics/push", 401) == 0
    assert (container.state / "collector.id").read_text() == first_id


def test_without_the_start_script_such_a_restart_never_pushes_again(container, api):
    """The defect the script exists for: the image's own entrypoint and CMD keep the expired
    token (the stand-in reproduces what the real collector did, docs/APP_CONTRACT.md)."""
    assert container()[0] == 0
    api.now += TOKEN_TTL + 1
    code, out = container(command=container.image_default)
    assert api.count("/api/v1/collectors/register", 200) == 1
    assert api.count("/api/v1/collectors/refresh-token", 401) == 1
    assert api.count("/api/v1/metrics/push", 401) == 1
    assert code != 0, out


def test_a_failed_registration_stops_the_container_before_the_collector_runs(container, api):
    assert container()[0] == 0
    api.now += TOKEN_TTL + 1
    code, out = container(REGISTRATION_SECRET="wrong")
    assert code == 1
    assert "registration failed" in out
    assert api.count("/api/v1/metrics/push", 401) == 0  # the collector never started
    assert not (container.state / "collector.token").exists()


def test_without_auto_register_the_saved_state_is_kept(container, api):
    assert container()[0] == 0
    token = (container.state / "collector.token").read_text()
    code, out = container(AUTO_REGISTER="false")
    assert code == 0, out
    assert api.count("/api/v1/collectors/register", 200) == 1
    assert (container.state / "collector.token").read_text() == token


def test_the_script_needs_an_entrypoint_and_a_command(container, pod, tmp_path):
    scripts = pod[2]
    script = tmp_path / "only.sh"
    script.write_text(scripts["collector-start.sh"])
    code, out = container(command=["/bin/sh", str(script), IMAGE_ENTRYPOINT])
    assert code == 2 and "usage" in out
