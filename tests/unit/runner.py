"""Runs the Pulumi program once under `pulumi.runtime.set_mocks` and prints, as JSON, every
resource it registered (type, name, parent, provider, dependencies, options, inputs with
secrets marked) and the stack outputs.

One process per run: Pulumi's runtime state is process-global, so a fresh interpreter per
stack x target is the robust way to run the program many times.

Input (stdin, JSON): {"stack": "dev", "config": {"pganalytics:target": "aws", ...},
"secret_keys": [...], "preview": true, "previous_outputs": {...}, "fail_types": [...]}.
Output (stdout, JSON):
{"resources": [...], "outputs": {...}, "error": null | "..."}.
"""

from __future__ import annotations

import base64
import json
import os
import runpy
import sys
import tempfile
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
clusters: [{name: aks, cluster: {server: "https://aks.example.com:443"}}]
contexts: [{name: aks, context: {cluster: aks, user: aks}}]
current-context: aks
users: [{name: aks, user: {token: mock-token}}]
"""


def _extra_outputs(typ: str, name: str, inputs: dict) -> dict:
    """Outputs a real provider would compute, for the types the program reads them from."""
    if typ == "aws:eks/cluster:Cluster":
        return {
            "endpoint": "https://MOCK.gr7.eu-west-1.eks.amazonaws.com",
            "certificateAuthority": {"data": MOCK_CA},
            "arn": f"arn:aws:eks:eu-west-1:123456789012:cluster/{inputs.get('name')}",
        }
    if typ.startswith("aws:"):
        return {"arn": f"arn:aws:mock::123456789012:{name}", "name": inputs.get("name", name)}
    if typ == "gcp:container/cluster:Cluster":
        return {
            "endpoint": "34.0.0.1",
            "masterAuth": {"clusterCaCertificate": MOCK_CA},
            "privateClusterConfig": {
                **(inputs.get("privateClusterConfig") or {}),
                "privateEndpoint": "172.16.0.34",
            },
        }
    if typ == "gcp:serviceaccount/account:Account":
        return {"email": f"{inputs.get('accountId')}@mock-project.iam.gserviceaccount.com"}
    if typ == "azure-native:managedidentity:UserAssignedIdentity":
        return {"principalId": "00000000-0000-0000-0000-00000000beef", "clientId": "mock"}
    if typ == "azure-native:containerservice:ManagedCluster":
        # Inputs take a list of identity ids; the API answers with a map.
        ids = (inputs.get("identity") or {}).get("userAssignedIdentities") or []
        return {
            "name": inputs.get("resourceName"),
            "identity": {"type": "UserAssigned", "userAssignedIdentities": {i: {} for i in ids}},
        }
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
    def __init__(self, previous_outputs: dict | None = None, fail_types: list | None = None):
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
    if value == rpc.UNKNOWN:
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


def main() -> None:
    spec = json.loads(sys.stdin.read())
    config = {k: v if isinstance(v, str) else json.dumps(v) for k, v in spec["config"].items()}
    pulumi.runtime.set_all_config(config, spec.get("secret_keys", []))
    mocks_ = Mocks(spec.get("previous_outputs"), spec.get("fail_types"))
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
    json.dump(
        {
            "resources": monitor.records,
            "outputs": outputs,
            "error": error,
            "error_type": error_type,
        },
        sys.stdout,
        indent=1,
        default=repr,
    )


if __name__ == "__main__":
    main()
