"""Manual check of the real pgAnalytics collector under the chart (docs/APP_CONTRACT.md).

Not a CI test (CI has no upstream source). It takes a collector built from the pinned source
with its own build and the image's entrypoint from the same checkout, and runs them exactly as
the rendered collector Deployment does: its command and args, its env (ConfigMap + env, the
Secret values filled in), uid/gid 1000, a read-only root, the chart's emptyDirs at their mount
paths (state, config and /tmp outlive a "container restart", as emptyDirs do), the start script
from the rendered ConfigMap. It needs root, bubblewrap and setpriv, and a private network
namespace (loopback only), because the backend binds every interface:

    unshare -n sh -c 'ip link set lo up; .venv/bin/python -m tests.chart.verify_real_collector \
        --migrations <checkout>/backend/migrations --backend <built pganalytics-api> \
        --collector <built collector binary> --entrypoint <checkout>/collector/entrypoint.sh'

The database and the API are prepared as tests/chart/verify_real_backend.py does. Then:
1. first start (chart's command): registration, pushes;
2. the saved token re-signed to have expired (what a restart 30 minutes later finds), container
   started with the image's own entrypoint and CMD: the defect the start script exists for;
3. the same, started with the chart's command: registers again, pushes resume.
Each phase prints the API's answers by endpoint (from its request log), the collector's peak
of concurrent PostgreSQL connections (sampled every 0.5 s) and the rows it delivered.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

from .conftest import PROGRAM_VALUES, find, render
from .verify_real_backend import P, bootstrap, credentials, local_server, start_backend

UID = 1000  # the collector image's user (collector/Dockerfile) and the chart's runAsUser
# Push more often than the chart's default (60 s), so that each phase takes seconds, not minutes.
RUN_VALUES = {**PROGRAM_VALUES, "collector": {"config": {"pushInterval": 10}}}
GIN_LINE = re.compile(r'\|\s*(\d{3})\s*\|.*\|\s*(GET|POST|PUT|DELETE)\s+"([^"?]+)')
PROCESS = "pganalytics-col"  # the collector's comm (15 characters of pganalytics-collector)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--migrations", required=True, type=Path, help="upstream backend/migrations")
    ap.add_argument("--backend", required=True, type=Path, help="built pganalytics-api binary")
    ap.add_argument("--collector", required=True, type=Path, help="built collector binary")
    ap.add_argument(
        "--entrypoint", required=True, type=Path, help="upstream collector/entrypoint.sh"
    )
    ap.add_argument("--phase-seconds", type=int, default=45, help="how long each phase runs")
    args = ap.parse_args()
    for tool in ("bwrap", "setpriv", "ss"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is required (Debian: bubblewrap, util-linux, iproute2)")

    objs = render("values-prod.yaml", values=RUN_VALUES)
    cred = credentials()
    with local_server(objs, args.migrations) as server:
        bootstrap(server, objs, cred)
        api_proc, api = start_backend(server, objs, cred, args.backend)
        try:
            for _ in range(60):
                try:
                    if api.call("GET", "/api/v1/health")[0] == 200:
                        break
                except OSError:
                    pass
                time.sleep(0.5)
            print("GET /api/v1/health ->", api.call("GET", "/api/v1/health")[0])
            Run(server, objs, cred, args).phases()
        finally:
            api_proc.terminate()
            api_proc.wait()


class Run:
    def __init__(self, server, objs, cred, args):
        self.server, self.cred, self.args = server, cred, args
        self.log = server.work / "backend.log"
        dep = find(objs, "Deployment", f"{P}-collector-bundled")
        spec = dep["spec"]["template"]["spec"]
        self.container = spec["containers"][0]
        env = dict(find(objs, "ConfigMap", f"{P}-collector")["data"])
        for e in self.container["env"]:
            if "value" in e:
                value = e["value"]
            else:
                ref = e["valueFrom"]["secretKeyRef"]
                value = cred[ref["key"]]
            for name, old in env.items():
                value = value.replace(f"$({name})", old)
            env[e["name"]] = value
        # The one rewrite: the local server's port (its host name resolves to 127.0.0.1 below).
        env["POSTGRES_PORT"] = str(server.pg.port)
        self.env = env
        print(
            "collector env (rendered):",
            {k: ("<secret>" if k in ("POSTGRES_PASSWORD", "REGISTRATION_SECRET") else v)
             for k, v in sorted(env.items())},
        )  # fmt: skip
        self.root = server.work / "collector"
        self.mounts = {m["mountPath"]: m["name"] for m in self.container["volumeMounts"]}
        scripts = find(objs, "ConfigMap", f"{P}-collector-scripts")["data"]
        self.dirs = {}
        for name in self.mounts.values():
            d = self.root / name
            d.mkdir(parents=True)
            if name == "scripts":  # a ConfigMap volume, defaultMode 0555
                d.chmod(0o755)
                for key, text in scripts.items():
                    (d / key).write_text(text)
                    (d / key).chmod(0o555)
            else:  # an emptyDir owned by fsGroup 1000
                os.chown(d, UID, UID)
                d.chmod(0o2775)
            self.dirs[name] = d
        # The image's files, executable as the image's Dockerfile makes them (chmod +x).
        self.image = {}
        for name, src in (("collector", args.collector), ("entrypoint.sh", args.entrypoint)):
            self.image[name] = self.root / name
            shutil.copyfile(src, self.image[name])
            self.image[name].chmod(0o755)
        self.etc = self.root / "etc"
        self.etc.mkdir()
        (self.etc / "passwd").write_text(
            f"root:x:0:0:root:/root:/bin/sh\npganalytics:x:{UID}:{UID}::/home/pganalytics:/bin/bash\n"
        )
        (self.etc / "group").write_text(f"root:x:0:\npganalytics:x:{UID}:\n")
        hosts = f"127.0.0.1 localhost {P}-backend {P}-timescaledb\n"
        (self.etc / "hosts").write_text(hosts)
        for f in (self.root, self.etc, *self.etc.iterdir()):
            f.chmod(0o755 if f.is_dir() else 0o644)  # whatever the umask: uid 1000 reads them

    def sandbox(self, argv: list[str]) -> list[str]:
        """bwrap: a read-only root with the host's /usr (libcurl, libpq, bash), the image's
        entrypoint and binary at their image paths, the pod's volumes at their mount paths;
        setpriv drops to uid/gid 1000 without capabilities."""
        binary = "/usr/local/bin/pganalytics-collector"
        binds = [("--ro-bind", str(self.image["collector"]), binary)]
        binds.append(("--ro-bind", str(self.image["entrypoint.sh"]), "/app/entrypoint.sh"))
        for f in ("ld.so.cache", "nsswitch.conf", "ssl"):
            if Path(f"/etc/{f}").exists():
                binds.append(("--ro-bind", f"/etc/{f}", f"/etc/{f}"))
        for f in ("passwd", "group", "hosts"):
            binds.append(("--ro-bind", str(self.etc / f), f"/etc/{f}"))
        for path, name in self.mounts.items():
            kind = "--bind" if name != "scripts" else "--ro-bind"
            binds.append((kind, str(self.dirs[name]), path))
        # No --new-session: the container's processes stay in the process group that stop()
        # signals, as a container's processes all get the kubelet's SIGTERM.
        cmd = ["bwrap", "--die-with-parent", "--ro-bind", "/usr", "/usr"]
        cmd += ["--perms", "0755", "--tmpfs", "/usr/local"]
        for link in ("bin", "sbin", "lib", "lib64"):
            if Path(f"/usr/{link}").exists():
                cmd += ["--symlink", f"usr/{link}", f"/{link}"]
        cmd += ["--proc", "/proc", "--dev", "/dev"]
        made = {"/", "/usr", "/usr/local"}
        for _, _, dest in binds:
            for parent in reversed(Path(dest).parents):
                if str(parent) not in made:  # bwrap would make it 0700 (root only)
                    cmd += ["--perms", "0755", "--dir", str(parent)]
                    made.add(str(parent))
        for bind in binds:
            cmd += list(bind)
        cmd += ["--remount-ro", "/", "--chdir", "/var/lib/pganalytics"]
        cmd += ["setpriv", f"--reuid={UID}", f"--regid={UID}", "--clear-groups"]
        cmd += ["--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"]
        return cmd + argv

    def start(self, argv: list[str], out: Path) -> subprocess.Popen:
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", **self.env}
        return subprocess.Popen(
            self.sandbox(argv),
            env=env,
            stdout=out.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop(self, proc: subprocess.Popen) -> None:
        """What the kubelet does to stop a container: SIGTERM, then SIGKILL after the grace."""
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def requests(self, offset: int) -> Counter:
        text = self.log.read_text(errors="replace")[offset:]
        found = Counter()
        for m in GIN_LINE.finditer(text):
            path = m.group(3)
            if path.startswith("/api/v1/config/"):
                path = "/api/v1/config/<id>"
            found[f"{m.group(2)} {path} {m.group(1)}"] += 1
        return found

    def rows(self) -> int:
        sql = "SELECT count(*) FROM pganalytics.metrics_pg_stats_query"
        return int(self.server.pg.psql(sql, db="pganalytics").stdout.strip())

    def expire_token(self) -> None:
        """Re-sign the saved token with the API's JWT secret so that it expired a minute ago:
        what a container restarted 30 minutes after its registration finds."""
        path = self.dirs["state"] / "collector.token"
        head, payload, _ = path.read_text().strip().split(".")
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        now = int(time.time())
        claims.update(exp=now - 60, iat=now - 1860, nbf=now - 1860)
        body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
        key = self.cred["jwt-secret"].encode()
        sig = hmac.new(key, f"{head}.{body}".encode(), hashlib.sha256).digest()
        signed = base64.urlsafe_b64encode(sig).rstrip(b"=").decode()
        path.write_text(f"{head}.{body}.{signed}")

    def phase(self, title: str, argv: list[str]) -> dict:
        print(f"\n== {title}\n   command: {' '.join(argv)}")
        offset = len(self.log.read_text(errors="replace"))
        rows = self.rows()
        out = self.root / f"{title.split(':')[0].replace(' ', '-')}.log"
        proc = self.start(argv, out)
        peak, samples, stop = [0], [], threading.Event()

        def sample():
            while not stop.is_set():
                ss = subprocess.run(
                    ["ss", "-tnpH", "state", "established"], capture_output=True, text=True
                ).stdout
                n = sum(
                    1
                    for line in ss.splitlines()
                    if PROCESS in line and line.split()[3].endswith(f":{self.server.pg.port}")
                )
                samples.append(n)
                peak[0] = max(peak[0], n)
                stop.wait(0.5)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        time.sleep(self.args.phase_seconds)
        cpu = collector_cpu_seconds(proc.pid)
        stop.set()
        sampler.join()
        self.stop(proc)
        output = out.read_text(errors="replace")
        result = {
            "exit": proc.returncode,
            "api": dict(sorted(self.requests(offset).items())),
            "peak_connections": peak[0],
            "mean_connections": round(sum(samples) / max(len(samples), 1), 1),
            "samples": len(samples),
            "query_stat_rows_added": self.rows() - rows,
            "collector_cpu_seconds": cpu,
            "logged 'Metrics pushed successfully'": output.count("Metrics pushed successfully"),
            "collector.id": (self.dirs["state"] / "collector.id").read_text().strip()
            if (self.dirs["state"] / "collector.id").exists()
            else None,
        }
        for key, value in result.items():
            print(f"   {key}: {value}")
        print("   container output (first and last lines):")
        lines = output.splitlines()
        for line in [*lines[:12], "...", *lines[-8:]] if len(lines) > 20 else lines:
            print(f"     | {line[:160]}")
        return result

    def phases(self) -> None:
        chart = [*self.container["command"], *self.container["args"]]
        image = list(self.container["args"])  # the image's own ENTRYPOINT + CMD
        first = self.phase("1 first start: the chart's command", chart)
        self.expire_token()
        self.phase("2 restart with an expired token: the image's entrypoint and CMD", image)
        self.expire_token()
        third = self.phase("3 restart with an expired token: the chart's command", chart)
        same = first["collector.id"] == third["collector.id"]
        print(f"\nsame collector id after registering again: {same}")


def collector_cpu_seconds(root: int) -> float:
    """CPU time (user + system) of the collector processes under `root` so far."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            comm = stat.read_text().split("(", 1)[1].rsplit(")", 1)[0]
        except OSError:
            continue
        if comm == PROCESS and os.getsid(int(stat.parent.name)) == root:
            total += int(fields[11]) + int(fields[12])
    return round(total / os.sysconf("SC_CLK_TCK"), 1)


if __name__ == "__main__":
    main()
