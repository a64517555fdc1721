"""A real Kubernetes control plane on 127.0.0.1 for the cluster test tier.

etcd, kube-apiserver, kube-controller-manager and kube-scheduler run as local processes (built
by tools/build.sh from the Go module proxy); KWOK simulates the nodes and the pods' lifecycle
(no container runtime runs here: a pod that the scheduler binds to a KWOK node is marked
Running/Ready by KWOK's stages). A small in-process provisioner creates a PersistentVolume for
each claim of the harness's StorageClass, so PVCs bind the way they do on a cloud cluster.

Everything listens on 127.0.0.1 only, on ports chosen at run time. Pod and Service IPs (from
10.244.0.0/16 and 10.96.0.0/16) are only written into API objects: no process dials them (there
is no kube-proxy, no CNI, no kubelet), and the simulated nodes' address is 127.0.0.1.

Used by tests/cluster/conftest.py and tests/e2e/conftest.py (`running_cluster`); also runnable
by hand:

    .venv/bin/python tests/cluster/harness.py   # starts a cluster, prints KUBECONFIG; Ctrl-C stops
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import ctypes
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BUILD_SH = ROOT / "tools" / "build.sh"

LOOPBACK = "127.0.0.1"
SERVICE_CIDR = "10.96.0.0/16"
POD_CIDR = "10.244.0.0/16"
STORAGE_CLASS = "pga-standard"
PROVISIONER = "fake.pganalytics.test"  # also the (never called) CSI driver name of its PVs
INGRESS_CLASS = "traefik"
# Three simulated nodes in two zones (and one region), like a small multi-AZ cluster.
NODES = (
    ("kwok-node-a1", "test-region-a"),
    ("kwok-node-b1", "test-region-b"),
    ("kwok-node-a2", "test-region-a"),
)
REGION = "test-region"


class ClusterError(RuntimeError):
    """The cluster could not be built, started or reached; the message says why."""


# --------------------------------------------------------------------------------------------
# Tools
# --------------------------------------------------------------------------------------------


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


@dataclass
class Tools:
    etcd: Path
    kube_apiserver: Path
    kube_controller_manager: Path
    kube_scheduler: Path
    kwok: Path
    kubectl: Path
    helm: Path


def _find_client(name: str) -> Path:
    local = ROOT / ".tools" / "bin" / name
    if local.is_file() and os.access(local, os.X_OK):
        return local
    found = shutil.which(name)
    if found:
        return Path(found)
    raise ClusterError(
        f"'{name}' was not found in {local.parent} nor on PATH: run scripts/bootstrap.sh "
        f"(it installs the pinned helm and kubectl) and run the tests again."
    )


def build_tools(log=sys.stderr) -> Tools:
    """Builds (or reuses from the cache) the control-plane binaries with tools/build.sh."""
    if not BUILD_SH.is_file():
        raise ClusterError(f"{BUILD_SH} is missing")
    started = time.monotonic()
    proc = subprocess.run(
        ["bash", str(BUILD_SH), "all"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    out = proc.stdout
    if proc.returncode != 0:
        tail = "\n".join(out.splitlines()[-40:])
        raise ClusterError(
            f"tools/build.sh all failed (exit {proc.returncode}), so the cluster tier cannot run.\n"
            f"Last lines of its output:\n{tail}"
        )
    for line in out.splitlines():
        if line.startswith("==>"):
            print(line, file=log)
    print(f"==> cluster tools ready in {time.monotonic() - started:.1f}s", file=log)
    listed = subprocess.run(
        ["bash", str(BUILD_SH), "list"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    paths = dict(line.split(" ", 1) for line in listed.stdout.splitlines() if " " in line)
    missing = [
        t
        for t in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
        if t not in paths
    ]
    if missing:
        raise ClusterError(
            f"tools/build.sh reported success but did not list: {', '.join(missing)}"
        )
    return Tools(
        etcd=Path(paths["etcd"]),
        kube_apiserver=Path(paths["kube-apiserver"]),
        kube_controller_manager=Path(paths["kube-controller-manager"]),
        kube_scheduler=Path(paths["kube-scheduler"]),
        kwok=Path(paths["kwok"]),
        kubectl=_find_client("kubectl"),
        helm=_find_client("helm"),
    )


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def port_is_free(port: int) -> bool:
    """True when nothing listens on the port (connections in TIME_WAIT do not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((LOOPBACK, port))
        except OSError:
            return False
        return True


def _run(cmd: list[str], cwd: Path | None = None) -> None:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise ClusterError(
            f"command failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr.strip()}"
        )


def _remove_stale_workdirs() -> None:
    """Temp dirs left by a harness that was SIGKILLed (its processes died with it)."""
    for d in Path(tempfile.gettempdir()).glob("pga-cluster-*"):
        try:
            pid = int((d / "owner.pid").read_text())
        except (OSError, ValueError):
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(d, ignore_errors=True)
        except PermissionError:
            pass


def _die_with_parent() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class PKI:
    """A throw-away CA and the certificates of the control plane, made with the openssl CLI."""

    def __init__(self, directory: Path):
        self.dir = directory
        directory.mkdir(parents=True, exist_ok=True)
        if not shutil.which("openssl"):
            raise ClusterError(
                "the 'openssl' command is needed to make the test cluster's certificates "
                "(apt-get install openssl)"
            )
        self.ca_crt, self.ca_key = directory / "ca.crt", directory / "ca.key"
        _run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                str(self.ca_key),
                "-out",
                str(self.ca_crt),
                "-days",
                "2",
                "-subj",
                "/CN=pganalytics-test-ca",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ]
        )
        # Service-account token signing key pair (ES256).
        self.sa_key, self.sa_pub = directory / "sa.key", directory / "sa.pub"
        _run(
            [
                "openssl",
                "ecparam",
                "-name",
                "prime256v1",
                "-genkey",
                "-noout",
                "-out",
                str(self.sa_key),
            ]
        )
        _run(["openssl", "ec", "-in", str(self.sa_key), "-pubout", "-out", str(self.sa_pub)])

    def issue(
        self, name: str, subject: str, server_sans: list[str] | None = None
    ) -> tuple[Path, Path]:
        key, csr, crt, ext = (self.dir / f"{name}.{x}" for x in ("key", "csr", "crt", "ext"))
        _run(
            [
                "openssl",
                "req",
                "-new",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                str(key),
                "-out",
                str(csr),
                "-subj",
                subject,
            ]
        )
        lines = [
            "basicConstraints=critical,CA:FALSE",
            "keyUsage=critical,digitalSignature,keyEncipherment",
        ]
        if server_sans:
            lines += [
                "extendedKeyUsage=serverAuth,clientAuth",
                "subjectAltName=" + ",".join(server_sans),
            ]
        else:
            lines += ["extendedKeyUsage=clientAuth"]
        ext.write_text("\n".join(lines) + "\n")
        _run(
            [
                "openssl",
                "x509",
                "-req",
                "-in",
                str(csr),
                "-CA",
                str(self.ca_crt),
                "-CAkey",
                str(self.ca_key),
                "-CAcreateserial",
                "-days",
                "2",
                "-sha256",
                "-extfile",
                str(ext),
                "-out",
                str(crt),
            ]
        )
        return crt, key


@dataclass
class Component:
    name: str
    proc: subprocess.Popen
    log: Path
    ports: list[int] = field(default_factory=list)
    argv: list[str] = field(default_factory=list)
    env: dict[str, str] | None = None


# --------------------------------------------------------------------------------------------
# The cluster
# --------------------------------------------------------------------------------------------


class Cluster:
    """Starts and stops the local control plane. Use as a context manager or start()/stop()."""

    def __init__(
        self,
        tools: Tools,
        log=sys.stderr,
        keep_logs_in: Path | None = None,
        workdir: Path | None = None,
        stages: Path | None = None,
    ):
        """`workdir`: where certificates, kubeconfigs and etcd data go (default: a new temp
        dir); it must not exist yet and is removed on stop. `stages`: the KWOK stages file
        (default kwok-stages.yaml: pods Ready at once; see ROLLOUT_STAGES_FILE)."""
        self.tools = tools
        self.log = log
        self.keep_logs_in = keep_logs_in
        self._requested_workdir = workdir
        self.stages = stages or KWOK_STAGES_FILE
        self.components: list[Component] = []
        self.workdir: Path | None = None
        self._stop_provisioner = threading.Event()
        self._provisioner: threading.Thread | None = None
        self.provisioner_errors: list[str] = []
        self.provisioned: list[str] = []
        self._stopped = False
        self._stopped_apiserver: Component | None = None

    # ----- lifecycle -----------------------------------------------------------------------

    def __enter__(self) -> Cluster:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        t0 = time.monotonic()
        _remove_stale_workdirs()
        if self._requested_workdir is not None:
            self._requested_workdir.mkdir(parents=True)
            self.workdir = self._requested_workdir
        else:
            self.workdir = Path(tempfile.mkdtemp(prefix="pga-cluster-"))
        (self.workdir / "owner.pid").write_text(str(os.getpid()))
        atexit.register(self.stop)
        try:
            self._start()
        except BaseException:
            self.stop(failed=True)
            raise
        self._say(f"cluster ready in {time.monotonic() - t0:.1f}s (KUBECONFIG={self.kubeconfig})")

    def _say(self, msg: str) -> None:
        print(f"==> [cluster] {msg}", file=self.log, flush=True)

    def _start(self) -> None:
        w = self.workdir
        assert w is not None
        (w / "logs").mkdir()
        pki = self.pki = PKI(w / "pki")
        self.etcd_port, self.etcd_peer_port = free_port(), free_port()
        self.api_port, self.kcm_port, self.sched_port = free_port(), free_port(), free_port()
        self.server = f"https://{LOOPBACK}:{self.api_port}"
        api_crt, api_key = pki.issue(
            "apiserver",
            "/CN=kube-apiserver",
            [
                "IP:127.0.0.1",
                "DNS:localhost",
                "DNS:kubernetes",
                "DNS:kubernetes.default",
                "DNS:kubernetes.default.svc",
                "DNS:kubernetes.default.svc.cluster.local",
                "IP:10.96.0.1",
            ],
        )
        self.admin_crt, self.admin_key = pki.issue("admin", "/O=system:masters/CN=pga-test-admin")
        self.kubeconfig = self._kubeconfig("admin", self.admin_crt, self.admin_key)
        kcm_kc = self._kubeconfig("kcm", *pki.issue("kcm", "/CN=system:kube-controller-manager"))
        sched_kc = self._kubeconfig(
            "scheduler", *pki.issue("scheduler", "/CN=system:kube-scheduler")
        )
        # KWOK plays every kubelet; it gets a cluster-admin identity of its own.
        kwok_kc = self._kubeconfig(
            "kwok", *pki.issue("kwok", "/O=system:masters/CN=kwok-controller")
        )

        # etcd ---------------------------------------------------------------------------
        etcd_url = f"http://{LOOPBACK}:{self.etcd_port}"
        peer_url = f"http://{LOOPBACK}:{self.etcd_peer_port}"
        self._spawn(
            "etcd",
            [
                str(self.tools.etcd),
                "--name=pga-test",
                f"--data-dir={w / 'etcd'}",
                f"--listen-client-urls={etcd_url}",
                f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=pga-test={peer_url}",
                "--initial-cluster-state=new",
                "--unsafe-no-fsync=true",
                "--log-level=warn",
                "--quota-backend-bytes=2147483648",
            ],
            ports=[self.etcd_port, self.etcd_peer_port],
        )
        self._wait("etcd", lambda: self._http_ok(f"{etcd_url}/health"), 60)

        # kube-apiserver -----------------------------------------------------------------
        self._spawn(
            "kube-apiserver",
            [
                str(self.tools.kube_apiserver),
                f"--etcd-servers={etcd_url}",
                f"--bind-address={LOOPBACK}",
                f"--advertise-address={LOOPBACK}",
                f"--secure-port={self.api_port}",
                f"--tls-cert-file={api_crt}",
                f"--tls-private-key-file={api_key}",
                f"--client-ca-file={pki.ca_crt}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={pki.sa_pub}",
                f"--service-account-signing-key-file={pki.sa_key}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--authorization-mode=RBAC",
                # PodSecurity is on by default; named here so the tier fails loudly if that changes.
                "--enable-admission-plugins=PodSecurity,NamespaceLifecycle,LimitRanger,ServiceAccount,"
                "DefaultStorageClass,StorageObjectInUseProtection,ResourceQuota",
                # The only apiserver address is loopback, which may not be an Endpoints address.
                "--endpoint-reconciler-type=none",
                # As on kubeadm/managed clusters: Pod Security admission is the gate.
                "--allow-privileged=true",
                "--profiling=false",
                "--enable-priority-and-fairness=false",
                "--event-ttl=1h",
                "--v=1",
            ],
            ports=[self.api_port],
        )
        self._wait("kube-apiserver", lambda: self._api_ok("/readyz"), 120)

        # kube-controller-manager, kube-scheduler -----------------------------------------
        self._spawn(
            "kube-controller-manager",
            [
                str(self.tools.kube_controller_manager),
                f"--kubeconfig={kcm_kc}",
                f"--authentication-kubeconfig={kcm_kc}",
                f"--authorization-kubeconfig={kcm_kc}",
                f"--bind-address={LOOPBACK}",
                f"--secure-port={self.kcm_port}",
                "--leader-elect=false",
                "--use-service-account-credentials=true",
                f"--service-account-private-key-file={pki.sa_key}",
                f"--root-ca-file={pki.ca_crt}",
                f"--cluster-signing-cert-file={pki.ca_crt}",
                f"--cluster-signing-key-file={pki.ca_key}",
                "--controllers=*",
                "--profiling=false",
                "--v=1",
            ],
            ports=[self.kcm_port],
        )
        self._spawn(
            "kube-scheduler",
            [
                str(self.tools.kube_scheduler),
                f"--kubeconfig={sched_kc}",
                f"--authentication-kubeconfig={sched_kc}",
                f"--authorization-kubeconfig={sched_kc}",
                f"--bind-address={LOOPBACK}",
                f"--secure-port={self.sched_port}",
                "--leader-elect=false",
                "--profiling=false",
                "--v=1",
            ],
            ports=[self.sched_port],
        )
        self._wait(
            "kube-controller-manager", lambda: self._https_anon_ok(self.kcm_port, "/healthz"), 60
        )
        self._wait("kube-scheduler", lambda: self._https_anon_ok(self.sched_port, "/healthz"), 60)

        # KWOK ---------------------------------------------------------------------------
        kwok_home = w / "kwok-home"  # KWOK also reads ~/.kwok/kwok.yaml: keep it to ours
        kwok_home.mkdir()
        stages = w / "kwok-stages.yaml"
        shutil.copyfile(self.stages, stages)
        self._spawn(
            "kwok",
            [
                str(self.tools.kwok),
                f"--kubeconfig={kwok_kc}",
                f"--config={stages}",
                "--manage-all-nodes=false",
                "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
                f"--cidr={POD_CIDR}",
                f"--node-ip={LOOPBACK}",
                "--node-lease-duration-seconds=40",
            ],
            env={"HOME": str(kwok_home)},
        )

        for name, zone in NODES:
            self.apply(_node_manifest(name, zone))
        self._wait("simulated nodes Ready", self._nodes_ready, 60)
        self._wait(
            "default ServiceAccount",
            lambda: self.api("GET", "/api/v1/namespaces/default/serviceaccounts/default")[0] == 200,
            60,
        )

        # Storage and ingress classes of the "cloud", and the provisioner -------------------
        self.apply(STORAGE_MANIFESTS)
        self._provisioner = threading.Thread(
            target=self._provision_loop, name="pga-fake-provisioner", daemon=True
        )
        self._provisioner.start()

    def stop(self, failed: bool = False) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._stop_provisioner.set()
        if self._provisioner is not None:
            self._provisioner.join(timeout=5)
        for comp in reversed(self.components):
            self._terminate(comp)
        leftovers = [(c.name, p) for c in self.components for p in c.ports if not port_is_free(p)]
        if self.workdir and self.workdir.exists():
            if self.keep_logs_in is not None:
                dest = self.keep_logs_in
                dest.mkdir(parents=True, exist_ok=True)
                for f in (self.workdir / "logs").glob("*.log"):
                    shutil.copy2(f, dest / f.name)
                self._say(f"component logs copied to {dest}")
            elif failed:
                for c in self.components:
                    self._say(f"last lines of {c.name}:\n{self.log_tail(c.name)}")
            shutil.rmtree(self.workdir, ignore_errors=True)
        if leftovers:
            self._say(f"WARNING: ports still in use after teardown: {leftovers}")
        self._say("cluster stopped")

    def _terminate(self, comp: Component) -> None:
        proc = comp.proc
        if proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        # Anything left in the group (none of these fork, but be sure).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)

    def _spawn(
        self, name: str, argv: list[str], ports: list[int] | None = None, env: dict | None = None
    ) -> None:
        assert self.workdir is not None
        log = self.workdir / "logs" / f"{name}.log"
        full_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.workdir)}
        full_env.update(env or {})
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                env=full_env,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        self.components.append(Component(name, proc, log, ports or [], argv, env))
        self._say(
            f"started {name} (pid {proc.pid}"
            f"{', ports ' + ','.join(map(str, ports)) if ports else ''})"
        )

    def stop_apiserver(self) -> None:
        """Stops kube-apiserver (SIGTERM, as an outage or a control-plane upgrade would);
        clients then get "connection refused" on its port."""
        comp = next(c for c in self.components if c.name == "kube-apiserver")
        self._terminate(comp)
        self.components.remove(comp)
        self._stopped_apiserver = comp
        self._say("kube-apiserver stopped")

    def start_apiserver(self) -> None:
        """Starts kube-apiserver again on the same port, with the same flags and etcd data."""
        comp = self._stopped_apiserver
        assert comp is not None, "start_apiserver() without stop_apiserver()"
        self._stopped_apiserver = None
        self._spawn(comp.name, comp.argv, ports=comp.ports, env=comp.env)
        # Everything else (etcd, controllers, KWOK) kept running; put the apiserver back in
        # its place so teardown still stops it before etcd.
        self.components.insert(1, self.components.pop())
        self._wait("kube-apiserver", lambda: self._api_ok("/readyz"), 120)

    def inline_kubeconfig(self) -> str:
        """The admin kubeconfig with the certificates embedded (no file paths): what a user
        would hand to `pulumi config set --secret pganalytics:kubeconfig`."""
        auth = {
            "client-certificate-data": _b64(self.admin_crt),
            "client-key-data": _b64(self.admin_key),
        }
        return self.kubeconfig_text("admin", auth, embed_ca=True)

    def kubeconfig_text(
        self, user: str, auth: dict[str, str], embed_ca: bool = False, namespace: str = ""
    ) -> str:
        """A kubeconfig of this cluster for `user`, who authenticates with `auth` (the
        kubeconfig's user fields: client certificate and key, or a token). `embed_ca` puts the
        CA into the document instead of naming its file."""
        ca = (
            f"certificate-authority-data: {_b64(self.pki.ca_crt)}"
            if embed_ca
            else f"certificate-authority: {self.pki.ca_crt}"
        )
        context = f"cluster: pga-test, user: {user}" + (
            f", namespace: {namespace}" if namespace else ""
        )
        lines = [
            "apiVersion: v1",
            "kind: Config",
            "clusters:",
            "- name: pga-test",
            "  cluster:",
            f"    server: {self.server}",
            f"    {ca}",
            "users:",
            f"- name: {user}",
            "  user:",
            *(f"    {field_}: {value}" for field_, value in auth.items()),
            "contexts:",
            "- name: pga-test",
            f"  context: {{{context}}}",
            "current-context: pga-test",
        ]
        return "\n".join(lines) + "\n"

    def log_tail(self, name: str, lines: int = 25) -> str:
        for c in self.components:
            if c.name == name and c.log.exists():
                return "\n".join(c.log.read_text(errors="replace").splitlines()[-lines:])
        return "(no log)"

    def _wait(self, what: str, ready, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last_exc: Exception | None = None
        while time.monotonic() < deadline:
            for c in self.components:
                if c.proc.poll() is not None:
                    raise ClusterError(
                        f"{c.name} exited with code {c.proc.returncode} while waiting for {what}; "
                        "last lines of its log:\n"
                        f"{self.log_tail(c.name)}"
                    )
            try:
                if ready():
                    self._say(f"{what}: ready")
                    return
            except Exception as exc:
                last_exc = exc
            time.sleep(0.5)
        raise ClusterError(
            f"timed out after {timeout:.0f}s waiting for {what} (last error: {last_exc!r})"
        )

    # ----- clients ---------------------------------------------------------------------------

    def _kubeconfig(self, user: str, crt: Path, key: Path) -> Path:
        assert self.workdir is not None
        path = self.workdir / f"{user}.kubeconfig"
        auth = {"client-certificate": str(crt), "client-key": str(key)}
        path.write_text(self.kubeconfig_text(user, auth))
        return path

    def _ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.pki.ca_crt))
        ctx.load_cert_chain(str(self.admin_crt), str(self.admin_key))
        return ctx

    def api(
        self,
        method: str,
        path: str,
        body: dict | None = None,
        content_type: str = "application/json",
        timeout: float = 30,
    ) -> tuple[int, dict | str]:
        """One request to the API server as cluster admin; returns (status, parsed JSON or text)."""
        conn = http.client.HTTPSConnection(
            LOOPBACK, self.api_port, context=self._ssl_context(), timeout=timeout
        )
        try:
            data = json.dumps(body).encode() if body is not None else None
            headers = {"Accept": "application/json"}
            if data is not None:
                headers["Content-Type"] = content_type
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            raw = resp.read().decode(errors="replace")
            try:
                return resp.status, json.loads(raw)
            except ValueError:
                return resp.status, raw
        finally:
            conn.close()

    def _api_ok(self, path: str) -> bool:
        status, _ = self.api("GET", path, timeout=5)
        return status == 200

    @staticmethod
    def _http_ok(url: str) -> bool:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status == 200

    @staticmethod
    def _https_anon_ok(port: int, path: str) -> bool:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # self-signed serving certs of kcm/scheduler, loopback only
        conn = http.client.HTTPSConnection(LOOPBACK, port, context=ctx, timeout=5)
        try:
            conn.request("GET", path)
            return conn.getresponse().status == 200
        finally:
            conn.close()

    def client_env(self) -> dict[str, str]:
        """Environment for kubectl/helm: this cluster's kubeconfig, helm's state in the work dir."""
        assert self.workdir is not None
        env = dict(os.environ)
        env.update(
            {
                "KUBECONFIG": str(self.kubeconfig),
                "HELM_CACHE_HOME": str(self.workdir / "helm" / "cache"),
                "HELM_CONFIG_HOME": str(self.workdir / "helm" / "config"),
                "HELM_DATA_HOME": str(self.workdir / "helm" / "data"),
                "NO_PROXY": "127.0.0.1,localhost",
                "no_proxy": "127.0.0.1,localhost",
            }
        )
        return env

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            [str(self.tools.kubectl), *args],
            input=input,
            capture_output=True,
            text=True,
            env=self.client_env(),
            timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise ClusterError(
                f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr.strip()}"
            )
        return proc

    def kubectl_json(self, *args: str) -> dict:
        return json.loads(self.kubectl(*args, "-o", "json").stdout)

    def helm(
        self, *args: str, check: bool = True, timeout: float = 600
    ) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            [str(self.tools.helm), *args],
            capture_output=True,
            text=True,
            env=self.client_env(),
            timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise ClusterError(
                f"helm {' '.join(args)} failed ({proc.returncode}):\n"
                f"{proc.stdout.strip()}\n{proc.stderr.strip()}"
            )
        return proc

    def apply(self, manifest: str) -> None:
        self.kubectl(
            "apply", "--server-side", "--field-manager=pga-test-harness", "-f", "-", input=manifest
        )

    def _nodes_ready(self) -> bool:
        status, body = self.api("GET", "/api/v1/nodes")
        if status != 200:
            return False
        ready = {
            n["metadata"]["name"]
            for n in body.get("items", [])
            for c in n.get("status", {}).get("conditions", [])
            if c["type"] == "Ready" and c["status"] == "True"
        }
        return ready >= {name for name, _ in NODES}

    # ----- the fake provisioner ------------------------------------------------------------

    def _provision_loop(self) -> None:
        while not self._stop_provisioner.wait(0.5):
            try:
                self.provision_once()
            except Exception as exc:
                if not self._stop_provisioner.is_set():
                    self.provisioner_errors.append(repr(exc))

    def provision_once(self) -> None:
        """Creates a PV for each pending claim of our StorageClass (honouring WaitForFirstConsumer:
        after the scheduler picked a node, the PV is pinned to that node's zone), and deletes the
        released PVs it made (reclaimPolicy Delete)."""
        status, pvcs = self.api("GET", "/api/v1/persistentvolumeclaims")
        if status != 200:
            return
        status, nodes = self.api("GET", "/api/v1/nodes")
        zones = {
            n["metadata"]["name"]: n["metadata"]
            .get("labels", {})
            .get("topology.kubernetes.io/zone")
            for n in nodes.get("items", [])
        }
        for pvc in pvcs.get("items", []):
            spec, meta = pvc["spec"], pvc["metadata"]
            if (
                spec.get("storageClassName") != STORAGE_CLASS
                or spec.get("volumeName")
                or pvc.get("status", {}).get("phase") != "Pending"
            ):
                continue
            if meta.get("deletionTimestamp"):
                continue
            node = meta.get("annotations", {}).get("volume.kubernetes.io/selected-node")
            if not node:
                continue  # WaitForFirstConsumer: wait until the scheduler picks a node
            name = f"pvc-{meta['uid']}"
            pv = {
                "apiVersion": "v1",
                "kind": "PersistentVolume",
                "metadata": {
                    "name": name,
                    "annotations": {"pv.kubernetes.io/provisioned-by": PROVISIONER},
                    "labels": {"pganalytics.test/fake-pv": "true"},
                },
                "spec": {
                    "capacity": {"storage": spec["resources"]["requests"]["storage"]},
                    "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
                    "volumeMode": spec.get("volumeMode", "Filesystem"),
                    "storageClassName": STORAGE_CLASS,
                    "persistentVolumeReclaimPolicy": "Delete",
                    "claimRef": {
                        "apiVersion": "v1",
                        "kind": "PersistentVolumeClaim",
                        "namespace": meta["namespace"],
                        "name": meta["name"],
                        "uid": meta["uid"],
                    },
                    # Never mounted (no kubelet runs); a CSI source: no in-tree plugin acts on it.
                    "csi": {"driver": PROVISIONER, "volumeHandle": name},
                },
            }
            if zones.get(node):
                pv["spec"]["nodeAffinity"] = {
                    "required": {
                        "nodeSelectorTerms": [
                            {
                                "matchExpressions": [
                                    {
                                        "key": "topology.kubernetes.io/zone",
                                        "operator": "In",
                                        "values": [zones[node]],
                                    }
                                ]
                            }
                        ]
                    }
                }
            status, body = self.api("POST", "/api/v1/persistentvolumes", pv)
            if status == 201:
                self.provisioned.append(f"{meta['namespace']}/{meta['name']}")
            elif status != 409:
                self.provisioner_errors.append(
                    f"creating PV for {meta['namespace']}/{meta['name']}: {status} {body}"
                )
        status, pvs = self.api(
            "GET", "/api/v1/persistentvolumes?labelSelector=pganalytics.test%2Ffake-pv%3Dtrue"
        )
        for pv in pvs.get("items", []) if status == 200 else []:
            if (
                pv.get("status", {}).get("phase") == "Released"
                and pv["spec"].get("persistentVolumeReclaimPolicy") == "Delete"
            ):
                self.api("DELETE", f"/api/v1/persistentvolumes/{pv['metadata']['name']}")


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (CI stopping the run, `timeout`) unwinds like Ctrl-C while inside, so the
    `finally` blocks that stop the cluster run; the previous handler is restored on exit."""
    try:
        previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    except ValueError:  # not the main thread: signals are not ours to handle
        previous = None
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def running_cluster(**cluster_args) -> Iterator[Cluster]:
    """Builds the tools, starts a Cluster (`cluster_args` as for Cluster) and stops it on exit,
    also on SIGTERM. ClusterError, with the reason, when it cannot be built or started."""
    with sigterm_as_interrupt():
        cluster = Cluster(build_tools(), **cluster_args)
        cluster.start()  # stops what it started when it fails
        try:
            yield cluster
        finally:
            cluster.stop()


def _node_manifest(name: str, zone: str) -> str:
    return textwrap.dedent(f"""\
        apiVersion: v1
        kind: Node
        metadata:
          name: {name}
          annotations:
            kwok.x-k8s.io/node: fake
            node.alpha.kubernetes.io/ttl: "0"
          labels:
            kubernetes.io/hostname: {name}
            kubernetes.io/os: linux
            kubernetes.io/arch: amd64
            node.kubernetes.io/instance-type: kwok-standard-4
            topology.kubernetes.io/region: {REGION}
            topology.kubernetes.io/zone: {zone}
            type: kwok
        status:
          allocatable: {{cpu: "8", memory: 32Gi, pods: "110", ephemeral-storage: 100Gi}}
          capacity: {{cpu: "8", memory: 32Gi, pods: "110", ephemeral-storage: 100Gi}}
          nodeInfo:
            architecture: amd64
            operatingSystem: linux
        """)


STORAGE_MANIFESTS = f"""\
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: {STORAGE_CLASS}
  annotations:
    # The cluster's default class, as on a cloud cluster: claims that name no class get it.
    storageclass.kubernetes.io/is-default-class: "true"
provisioner: {PROVISIONER}
reclaimPolicy: Delete
volumeBindingMode: WaitForFirstConsumer
allowVolumeExpansion: true
---
# No attach step, so the attach/detach controller leaves these volumes alone.
apiVersion: storage.k8s.io/v1
kind: CSIDriver
metadata:
  name: {PROVISIONER}
spec:
  attachRequired: false
  podInfoOnMount: false
---
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata:
  name: {INGRESS_CLASS}
spec:
  controller: traefik.io/ingress-controller
"""

# KWOK stages (from sigs.k8s.io/kwok v0.8.0 kustomize/stage/{node/fast,node/heartbeat-with-lease,
# pod/fast}): nodes become Ready and keep their leases; a scheduled pod becomes Running and Ready at
# once (init containers Completed); a Job's pod then Succeeds; a deleted pod goes away.
KWOK_STAGES_FILE = Path(__file__).with_name("kwok-stages.yaml")
# The same stages, but readiness arrives the way a real rollout's does: containers Ready some
# 10-30 s after scheduling, the database last (used by `make bench`).
ROLLOUT_STAGES_FILE = Path(__file__).with_name("kwok-stages-rollout.yaml")
STAGES = {"instant": KWOK_STAGES_FILE, "rollout": ROLLOUT_STAGES_FILE}


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument(
        "--workdir", type=Path, help="keep the cluster's files here (must not exist yet)"
    )
    parser.add_argument(
        "--kubeconfig-out",
        type=Path,
        help="once the cluster is ready, copy its admin kubeconfig here (the readiness signal "
        "for scripts/local-cluster.sh)",
    )
    parser.add_argument("--stages", choices=sorted(STAGES), default="instant")
    args = parser.parse_args(argv)

    tools = build_tools()
    cluster = Cluster(tools, workdir=args.workdir, stages=STAGES[args.stages])

    def on_signal(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)  # also when started as a background job
    try:
        cluster.start()
        if args.kubeconfig_out:
            tmp = args.kubeconfig_out.with_suffix(".part")
            shutil.copyfile(cluster.kubeconfig, tmp)
            tmp.replace(args.kubeconfig_out)
        print(f"export KUBECONFIG={cluster.kubeconfig}", flush=True)
        print("Ctrl-C (or SIGTERM) stops the cluster.", flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        cluster.stop()
        if args.kubeconfig_out:
            args.kubeconfig_out.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
