"""Runs the Pulumi program once under `pulumi.runtime.set_mocks` and prints, as JSON, every
resource it registered (type, name, parent, provider, dependencies, options, inputs with
secrets marked) and the stack outputs.

One process per run: Pulumi's runtime state is process-global, so a fresh interpreter per
stack x target is the robust way to run the program many times.

Input (stdin, JSON): {"stack": "dev", "config": {"pganalytics:target": "aws", ...},
"secret_keys": [...], "preview": true, "previous_outputs": {...}, "fail_types": [...], and
optionally "invokes": {token: result} (a run's own data-source answers),
"ambient_kubeconfig": text, "http": {url part: [bodies]} (the cloud's answers to the HTTP
calls the program makes itself) and "report_modules": true (add "modules": the top-level
packages imported by the end of the run)}. Output (stdout, JSON): {"resources": [...],
"invokes": [{token, args}], "outputs": {...}, "error": null | "...", "http": [{url,
authorized}]}.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import runpy
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import pulumi  # noqa: E402
from google.protobuf import json_format  # noqa: E402
from pulumi.runtime import mocks, rpc  # noqa: E402
from pulumi.runtime.stack import run_pulumi_func  # noqa: E402
from pulumi.runtime.sync_await import _sync_await  # noqa: E402

MOCK_CA = base64.b64encode(b"-----BEGIN CERTIFICATE-----mock").decode()
MOCK_KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: aks, cluster: {server: "https://aks.example.com:443",
  certificate-authority-data: "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tbW9jaw=="}}]
contexts: [{name: aks, context: {cluster: aks, user: aks}}]
current-context: aks
users: [{name: aks, user: {token: mock-token}}]
"""


# The version a cloud gives a cluster created without one (the dev stack sets none).
DEFAULT_VERSION = "1.33"
# Minor versions the mocked clouds offer, and where (overridable per run: spec "invokes").
EKS_VERSIONS = {"1.32": "EXTENDED_SUPPORT", "1.33": "STANDARD_SUPPORT", "1.34": "STANDARD_SUPPORT"}
GKE_CHANNELS = {
    "RAPID": "1.35.1-gke.1000",
    "REGULAR": "1.34.3-gke.1000",
    "STABLE": "1.34.1-gke.1000",
    "EXTENDED": "1.33.5-gke.1000",
}
# The ambient kubeconfig of the `existing` target (KUBECONFIG points at it in every run).
AMBIENT_KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: kind-pganalytics, cluster: {server: "https://127.0.0.1:6443"}}]
contexts: [{name: kind-pganalytics, context: {cluster: kind-pganalytics, user: kind}}]
current-context: kind-pganalytics
users: [{name: kind, user: {token: mock-token}}]
"""


def secret(value):
    """A value as a provider returns one it marks secret."""
    return {rpc._special_sig_key: rpc._special_secret_sig, "value": value}


def ssm_parameter(name: str, value: str) -> dict:
    """What aws:ssm/getParameter answers: pulumi-aws marks `value` secret whatever the
    parameter's type ("always marked as sensitive"); `insecureValue` is the same, in clear."""
    return {"name": name, "value": secret(value), "insecureValue": value, "type": "String"}


def _extra_outputs(typ: str, name: str, inputs: dict) -> dict:
    """Outputs a real provider would compute, for the types the program reads them from."""
    if typ == "aws:eks/cluster:Cluster":
        return {
            "vpcConfig": {
                **(inputs.get("vpcConfig") or {}),
                "clusterSecurityGroupId": "sg-cluster",
            },
            "version": inputs.get("version") or DEFAULT_VERSION,
            "endpoint": "https://MOCK.gr7.eu-west-1.eks.amazonaws.com",
            "certificateAuthority": {"data": MOCK_CA},
            "arn": f"arn:aws:eks:eu-west-1:123456789012:cluster/{inputs.get('name')}",
        }
    if typ == "aws:eks/nodeGroup:NodeGroup":
        # The name Pulumi generates for a group created without one.
        return {"nodeGroupName": inputs.get("nodeGroupName") or f"{name}-mock1234"}
    if typ == "aws:ec2/launchTemplate:LaunchTemplate":
        # EC2 numbers each distinct content of a template as a new version.
        content = json.dumps(inputs, sort_keys=True, default=str).encode()
        version = int(hashlib.sha256(content).hexdigest()[:4], 16) + 1
        return {"latestVersion": version, "defaultVersion": version}
    if typ.startswith("aws:"):
        return {"arn": f"arn:aws:mock::123456789012:{name}", "name": inputs.get("name", name)}
    if typ == "gcp:container/cluster:Cluster":
        wanted = inputs.get("minMasterVersion") or DEFAULT_VERSION
        return {
            "masterVersion": f"{wanted}.2-gke.1000" if wanted.count(".") == 1 else wanted,
            "endpoint": "34.0.0.1",
            "masterAuth": {"clusterCaCertificate": MOCK_CA},
            "privateClusterConfig": {
                **(inputs.get("privateClusterConfig") or {}),
                "privateEndpoint": "172.16.0.34",
            },
        }
    if typ == "gcp:serviceaccount/account:Account":
        email = f"{inputs.get('accountId')}@mock-project.iam.gserviceaccount.com"
        # `name` is the fully qualified name the provider computes from the project and email.
        return {"email": email, "name": f"projects/{inputs.get('project')}/serviceAccounts/{email}"}
    if typ == "azure-native:managedidentity:UserAssignedIdentity":
        return {
            "name": inputs.get("resourceName"),
            "principalId": "00000000-0000-0000-0000-00000000beef",
            "clientId": "mock",
        }
    if typ == "azure-native:containerservice:ManagedCluster":
        # Inputs take a list of identity ids; the API answers with a map.
        ids = (inputs.get("identity") or {}).get("userAssignedIdentities") or []
        return {
            "name": inputs.get("resourceName"),
            "kubernetesVersion": inputs.get("kubernetesVersion") or DEFAULT_VERSION,
            "currentKubernetesVersion": f"{inputs.get('kubernetesVersion') or DEFAULT_VERSION}.2",
            "identity": {"type": "UserAssigned", "userAssignedIdentities": {i: {} for i in ids}},
            "oidcIssuerProfile": {
                **(inputs.get("oidcIssuerProfile") or {}),
                "issuerURL": "https://westeurope.oic.prod-aks.azure.com/tenant/mock/",
            },
        }
    if typ == "random:index/randomString:RandomString":
        return {"result": "mock" + "0" * (int(inputs.get("length", 8)) - 4)}
    if typ == "azure-native:keyvault:Vault":
        return {"name": inputs.get("vaultName")}
    if typ == "azure-native:keyvault:Key":
        uri = f"https://{inputs.get('vaultName')}.vault.azure.net/keys/{inputs.get('keyName')}"
        return {"name": inputs.get("keyName"), "keyUri": uri, "keyUriWithVersion": f"{uri}/0a1b2c"}
    if typ == "azure-native:operationalinsights:Workspace":
        return {"name": inputs.get("workspaceName")}
    if typ == "azure-native:storage:BlobContainer":
        return {"name": inputs.get("containerName")}
    if typ == "azure-native:storage:StorageAccount":
        return {"name": inputs.get("accountName")}
    if typ == "gcp:storage/bucket:Bucket":
        return {"url": f"gs://{inputs.get('name')}"}
    if typ.startswith("azure-native:"):
        return {"name": inputs.get("resourceName") or inputs.get("resourceGroupName") or name}
    if typ == "kubernetes:helm.sh/v3:Release":
        return {
            "status": {
                "name": inputs.get("name"),
                "namespace": inputs.get("namespace"),
                "status": "deployed",
            }
        }
    if typ == "kubernetes:core/v1:Service":
        return {"status": {"loadBalancer": {"ingress": [{"hostname": "lb.example.com"}]}}}
    if typ == "random:index/randomPassword:RandomPassword":
        return {"result": f"Mock{name.replace('-', '')}Password123"}
    if typ == "random:index/randomBytes:RandomBytes":
        return {"base64": base64.b64encode(b"0" * 32).decode(), "hex": "30" * 32}
    return {}


class Mocks(pulumi.runtime.Mocks):
    def __init__(
        self,
        invokes: dict | None = None,
        previous_outputs: dict | None = None,
        fail_types: list | None = None,
    ):
        # token -> result: a run's own answers for a data source (e.g. another GKE channel
        # table); a result {"__error__": "..."} makes the invoke fail as a provider's would.
        self.invokes = invokes or {}
        self.calls: list[dict] = []
        # What `pulumi:pulumi:readStackOutputs` answers for this stack: the outputs of its
        # last update (none: a new stack).
        self.previous_outputs = previous_outputs or {}
        # Resource types whose creation fails, as a provider error would.
        self.fail_types = set(fail_types or ())

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        if args.typ in self.fail_types:
            raise RuntimeError(f"mock failure creating {args.typ} {args.name}")
        outputs = dict(args.inputs)
        outputs.update(_extra_outputs(args.typ, args.name, args.inputs))
        return f"{args.name}-id", outputs

    def call(self, args: pulumi.runtime.MockCallArgs):
        token = args.token
        self.calls.append({"token": token, "args": _plain(dict(args.args))})
        if token in self.invokes:
            result = self.invokes[token]
            if isinstance(result, dict) and "__by__" in result:
                # One answer per value of an argument, e.g. per node group name.
                result = result.get(
                    str(args.args.get(result["__by__"])), {"__error__": "not found"}
                )
            if isinstance(result, dict) and "__error__" in result:
                # A provider's failed invoke: the engine raises it at the call site.
                return {}, [("", result["__error__"])]
            return result
        if token == "aws:eks/getClusterVersions:getClusterVersions":
            return {
                "clusterVersions": [
                    {"clusterVersion": v, "versionStatus": status, "clusterType": "eks"}
                    for v, status in EKS_VERSIONS.items()
                ]
            }
        if token == "aws:ssm/getParameter:getParameter":
            # /aws/service/eks/optimized-ami/<version>/amazon-linux-2023/.../release_version
            version = args.args["name"].split("/")[5]
            return ssm_parameter(args.args["name"], f"{version}.0-20260101")
        if token == "aws:eks/getNodeGroups:getNodeGroups":
            return {"clusterName": args.args.get("clusterName"), "names": [], "id": "groups"}
        if token == "aws:eks/getAddonVersion:getAddonVersion":
            k8s_minor = args.args["kubernetesVersion"].split(".")[1]
            return {
                "addonName": args.args["addonName"],
                "kubernetesVersion": args.args["kubernetesVersion"],
                "version": f"v1.{k8s_minor}.0-eksbuild.1",
                "id": args.args["addonName"],
            }
        if token == "gcp:container/getEngineVersions:getEngineVersions":
            return {
                "location": args.args.get("location"),
                "project": args.args.get("project"),
                "releaseChannelLatestVersion": GKE_CHANNELS,
                "releaseChannelDefaultVersion": GKE_CHANNELS,
                "validMasterVersions": sorted(set(GKE_CHANNELS.values()), reverse=True),
                "defaultClusterVersion": GKE_CHANNELS["REGULAR"],
                "latestMasterVersion": GKE_CHANNELS["RAPID"],
                "latestNodeVersion": GKE_CHANNELS["RAPID"],
                "id": "versions",
            }
        if token == "gcp:organizations/getProject:getProject":
            return {"projectId": args.args.get("projectId"), "number": "123456789012", "id": "p"}
        if token == "pulumi:pulumi:readStackOutputs":
            return {"name": args.args.get("name"), "outputs": self.previous_outputs}
        if token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": "123456789012",
                "userId": "AROAMOCK:deployer",
                "arn": "arn:aws:sts::123456789012:assumed-role/Deployer/session",
            }
        if token == "aws:iam/getSessionContext:getSessionContext":
            return {
                "arn": args.args.get("arn"),
                "issuerArn": "arn:aws:iam::123456789012:role/Deployer",
                "issuerId": "AROAMOCK",
                "issuerName": "Deployer",
                "sessionName": "session",
            }
        if token == "aws:index/getPartition:getPartition":
            return {
                "partition": "aws",
                "dnsSuffix": "amazonaws.com",
                "id": "aws",
                "reverseDnsPrefix": "com.amazonaws",
            }
        if token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            return {
                "names": ["eu-west-1a", "eu-west-1b", "eu-west-1c"],
                "zoneIds": ["euw1-az1", "euw1-az2", "euw1-az3"],
                "id": "eu-west-1",
            }
        if token == "azure-native:authorization:getClientConfig":
            return {
                "subscriptionId": "00000000-0000-0000-0000-000000000000",
                "tenantId": "11111111-1111-1111-1111-111111111111",
                "clientId": "mock",
                "objectId": "mock",
            }
        if token == "azure-native:authorization:getClientToken":
            return {"token": "mock-arm-token"}
        if token == "azure-native:containerservice:listManagedClusterUserCredentials":
            return {
                "kubeconfigs": [
                    {
                        "name": "clusterUser",
                        "value": base64.b64encode(MOCK_KUBECONFIG.encode()).decode(),
                    }
                ]
            }
        return {}


def _urn_label(urn: str) -> str:
    """`type::name` of a URN (the type without its parents' chain)."""
    if not urn:
        return ""
    parts = urn.split("::")
    return f"{parts[2].split('$')[-1]}::{parts[3]}"


def _plain(value):
    """Deserialized inputs -> JSON, secrets as {"__secret__": value}."""
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return {"__secret__": _plain(value.get("value"))}
        if rpc._special_sig_key in value:
            return f"<special {value.get(rpc._special_sig_key)}>"
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    # Unknowns deserialize to fresh `Unknown()` objects, not the wire sentinel: never repr them
    # (the address would differ between two runs and look like a change).
    if value == rpc.UNKNOWN or isinstance(value, pulumi.output.Unknown):
        return "<unknown>"
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return repr(value)


def _secret_paths(node, path=()) -> list:
    """Paths of the secret values in a raw request struct, as the engine receives them (the
    SDK's deserializer would push a nested secret up to the whole top-level property)."""
    if isinstance(node, dict):
        sig = node.get(rpc._special_sig_key)
        if sig == rpc._special_secret_sig or (
            sig == rpc._special_output_value_sig and node.get("secret")
        ):
            return [list(path)]
        if sig == rpc._special_output_value_sig:
            return _secret_paths(node.get("value"), path)
        return [p for k, v in node.items() for p in _secret_paths(v, (*path, k))]
    if isinstance(node, list):
        return [p for i, v in enumerate(node) for p in _secret_paths(v, (*path, i))]
    return []


class RecordingMonitor(mocks.MockMonitor):
    def __init__(self, m):
        super().__init__(m)
        self.records: list[dict] = []

    def _record(self, request, read: bool) -> None:
        inputs = rpc.deserialize_properties(
            request.properties if read else request.object, keep_unknowns=True, keep_internal=True
        )
        rec = {
            "type": request.type,
            "name": request.name,
            "parent": _urn_label(request.parent),
            "provider": request.provider.split("::")[-2] if request.provider else "",
            "custom": True if read else bool(request.custom),
            "read": read,
            "inputs": _plain(inputs),
            "secretPaths": _secret_paths(
                json_format.MessageToDict(request.properties if read else request.object)
            ),
        }
        if not read:
            rec.update(
                dependencies=sorted(_urn_label(u) for u in request.dependencies),
                protect=bool(request.protect),
                retainOnDelete=bool(request.retainOnDelete),
                deleteBeforeReplace=bool(request.deleteBeforeReplace),
                ignoreChanges=list(request.ignoreChanges),
                replaceOnChanges=list(request.replaceOnChanges),
                deletedWith=_urn_label(request.deletedWith),
                propertyDependencies={
                    k: sorted(_urn_label(u) for u in v.urns)
                    for k, v in request.propertyDependencies.items()
                },
                additionalSecretOutputs=list(request.additionalSecretOutputs),
                transforms=len(request.transforms),
                remote=bool(request.remote),
            )
        self.records.append(rec)

    def RegisterResource(self, request):
        if request.type != "pulumi:pulumi:Stack":
            self._record(request, read=False)
        return super().RegisterResource(request)

    def ReadResource(self, request):
        self._record(request, read=True)
        return super().ReadResource(request)


class _Response(io.BytesIO):
    """What urllib.request.urlopen returns, for a canned JSON body."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _fake_http(answers: dict, calls: list) -> None:
    """The cloud's HTTP APIs the program calls itself (Azure RBAC polling) answer from the
    run's spec: {url substring: [body, body, ...]}, one body per call, the last repeated.
    Anything else fails, as a machine without the cloud would."""
    queues = {k: list(v) for k, v in answers.items()}

    def urlopen(request, timeout=None):
        url = getattr(request, "full_url", request)
        calls.append({"url": url, "authorized": bool(request.get_header("Authorization"))})
        for part, bodies in queues.items():
            if part in url:
                body = bodies.pop(0) if len(bodies) > 1 else bodies[0]
                return _Response(json.dumps(body).encode())
        raise urllib.error.URLError(f"no answer for {url} in this run")

    urllib.request.urlopen = urlopen


def main() -> None:
    spec = json.loads(sys.stdin.read())
    http_calls: list = []
    _fake_http(spec.get("http") or {}, http_calls)
    config = {k: v if isinstance(v, str) else json.dumps(v) for k, v in spec["config"].items()}
    pulumi.runtime.set_all_config(config, spec.get("secret_keys", []))
    # The `existing` target reads the ambient kubeconfig: give every run the same one (or
    # the run's own text; "" leaves none at all).
    ambient = spec.get("ambient_kubeconfig", AMBIENT_KUBECONFIG)
    kubeconfig_path = Path(tempfile.mkdtemp()) / "kubeconfig"
    if ambient:
        kubeconfig_path.write_text(ambient)
    os.environ["KUBECONFIG"] = str(kubeconfig_path)
    os.environ["HOME"] = str(kubeconfig_path.parent)
    mocks_ = Mocks(spec.get("invokes"), spec.get("previous_outputs"), spec.get("fail_types"))
    monitor = RecordingMonitor(mocks_)
    pulumi.runtime.set_mocks(
        mocks_,
        project="pganalytics",
        stack=spec["stack"],
        preview=spec.get("preview", True),
        monitor=monitor,
    )
    # The program must not depend on the working directory.
    os.chdir(tempfile.gettempdir())

    error = None
    error_type = None
    try:
        _sync_await(
            run_pulumi_func(lambda: runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__"))
        )
    except Exception as exc:
        error, error_type = str(exc), type(exc).__name__

    outputs = {}
    root = pulumi.runtime.settings.get_root_resource()
    for key, value in (getattr(root, "outputs", None) or {}).items():
        out = pulumi.Output.from_input(value)
        try:
            outputs[key] = {
                "value": _plain(_sync_await(out.future())),
                "secret": bool(_sync_await(out.is_secret())),
            }
        except Exception as exc:
            error = error or f"output {key}: {exc}"
    result = {
        "resources": monitor.records,
        "invokes": mocks_.calls,
        "outputs": outputs,
        "error": error,
        "error_type": error_type,
        "http": http_calls,
    }
    if spec.get("report_modules"):
        result["modules"] = sorted({name.split(".")[0] for name in sys.modules})
    json.dump(
        result,
        sys.stdout,
        indent=1,
        default=repr,
    )


if __name__ == "__main__":
    main()
