"""Generated credentials of the release, kept in the (encrypted) Pulumi state and in one
Kubernetes Secret that the chart references through `existingSecret`.

Keys are exactly those of docs/CHART_INTERFACE.md. Passwords are alphanumeric because the
chart builds database URLs from them. A credential never changes on update, except through
rotation (docs/OPERATIONS.md#credential-rotation): `pganalytics:credentials.rotation.<key>: N`
puts keepers `{"rotation": N}` on that key's RandomPassword, so changing N replaces that one
password; generation 0 has no keepers, so stacks deployed before rotation existed keep theirs.

What a rotation touches, and why nothing holding data is replaced:
- the RandomPassword of the key: replaced. It is protected like the rest, except in the update
  that changes its generation (known from the previous update's record, previous.py): the
  engine refuses to replace a resource that stays protected.
- the Secret: updated in place (the provider runs with enableSecretMutable), never replaced,
  and stays protected.
- the pods: `CREDENTIALS_VERSION_ANNOTATION` (a hash of the generations, no secret in it) is
  set on every pod template the chart renders (release.py), so they restart with the new
  value; a Job's pod template is immutable, so the Job is recreated and runs again.
- PostgreSQL: the database pod's `password-sync` container applies the superuser and
  application passwords from the Secret over the local socket when the pod starts; the same
  hash is the chart's `databaseBootstrap.runToken` (values.py), so the bootstrap Job runs
  again and applies the role passwords.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components.settings import CREDENTIALS_SECRET, NAMESPACE, RELEASE_NAME, ConfigError
from components.settings.credentials import ROTATABLE, rotation_version

if TYPE_CHECKING:
    from components.settings import Settings

# key in the Secret -> length of the generated password
PASSWORDS = {
    "postgres-password": 32,
    "database-password": 32,
    # The collector's read-only monitoring role of the chart's database (pg_monitor).
    "monitor-password": 32,
    "redis-password": 32,
    "jwt-secret": 64,
    "registration-secret": 48,
    "grafana-admin-password": 24,
    "admin-password": 24,
}
GRAFANA_ADMIN_USER = "admin"
SECRET_KEYS = (*PASSWORDS, "encryption-key", "grafana-admin-user")
# Which of them rotate (ROTATABLE) and why the others cannot is part of the validated config:
# components/settings/credentials.py.
CREDENTIALS_VERSION_ANNOTATION = "pganalytics.io/credentials-version"


# Keys only the bundled database uses: with an external database its password lives there.
BUNDLED_DATABASE_KEYS = ("postgres-password", "database-password", "monitor-password")


def rotating_keys(rotation: dict[str, int], previous: dict[str, int]) -> frozenset[str]:
    """Keys whose generation differs from the one the last update deployed."""
    return frozenset(k for k in ROTATABLE if rotation.get(k, 0) != previous.get(k, 0))


def check_rotation(settings: Settings, previous: dict[str, int]) -> None:
    """ConfigError for a rotation that would change nothing real: the bundled database's
    passwords while the chart runs against an external database."""
    from components import values as chart_values

    values = chart_values.merged_values(settings, include_defaults=True)
    owned = (values.get("timescaledb") or {}).get("enabled", True) or (
        values.get("cloudnativepg") or {}
    ).get("enabled", False)
    if owned:  # the bundled or the CloudNativePG database: its passwords are these
        return
    rotating = rotating_keys(settings.credentials.rotation, previous)
    problems = []
    for key in BUNDLED_DATABASE_KEYS:
        if key not in rotating:
            continue
        path = f"{NAMESPACE}:credentials.rotation.{key}"
        live = previous.get(key, 0)
        fix = (
            f"pulumi config set --path {path} {live}" if live else f"pulumi config rm --path {path}"
        )
        problems.append(
            f"{path} rotates a password of the bundled database, which is off "
            "(timescaledb.enabled false): an external database's password is changed there and "
            f"in its Secret (externalDatabase.existingSecret); fix: {fix}"
        )
    if problems:
        raise ConfigError(problems, settings.stack)


@dataclass
class CredentialsArgs:
    namespace: pulumi.Input[str]
    provider: k8s.Provider
    protect: bool = False
    # Secret key -> generation (settings.credentials.rotation).
    rotation: dict[str, int] = field(default_factory=dict)
    # Keys whose generation differs from the last update's: unprotected for this update only.
    rotating: frozenset[str] = frozenset()
    # basic-auth Secrets for the CloudNativePG operator: name -> (role, key of its password
    # here) (components/database.py); {} unless the database mode is cloudnativepg.
    role_secrets: dict[str, tuple[str, str]] = field(default_factory=dict)


class Credentials(pulumi.ComponentResource):
    """Outputs: `secret_name` (Output[str]) and `secret` (the Kubernetes Secret)."""

    def __init__(
        self, name: str, args: CredentialsArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("pganalytics:credentials:Credentials", name, None, opts)
        # Losing a generated password means losing access to the database: protect on prod.
        # (pulumi-random already registers `result`, `base64` and `hex` as secret outputs.)
        keep = pulumi.ResourceOptions(parent=self, protect=args.protect)
        data: dict[str, pulumi.Output[str]] = {}
        for key, length in PASSWORDS.items():
            generation = args.rotation.get(key, 0)
            password = random.RandomPassword(
                key,
                length=length,
                special=False,  # alphanumeric: safe inside postgres:// URLs
                min_lower=2,
                min_upper=2,
                min_numeric=2,
                # Changing keepers replaces the password; none at generation 0.
                keepers={"rotation": str(generation)} if generation else None,
                opts=pulumi.ResourceOptions(
                    parent=self, protect=args.protect and key not in args.rotating
                ),
            )
            data[key] = password.result
        encryption_key = random.RandomBytes(
            "encryption-key",
            length=32,
            opts=keep,
        )
        data["encryption-key"] = encryption_key.base64
        data["grafana-admin-user"] = pulumi.Output.from_input(GRAFANA_ADMIN_USER)

        self.secret = k8s.core.v1.Secret(
            "credentials",
            metadata={
                "name": CREDENTIALS_SECRET,
                "namespace": args.namespace,
                "labels": {
                    "app.kubernetes.io/part-of": "pganalytics",
                    "app.kubernetes.io/instance": RELEASE_NAME,
                    "app.kubernetes.io/managed-by": "pulumi",
                },
            },
            type="Opaque",
            # Every value wrapped as a secret: never plaintext in the state or a preview.
            string_data={k: pulumi.Output.secret(v) for k, v in data.items()},
            opts=pulumi.ResourceOptions(
                parent=self,
                provider=args.provider,
                protect=args.protect,
            ),
        )
        self.secret_name = self.secret.metadata.name
        self.role_secrets = [
            self._role_secret(args, name, role, data[key])
            for name, (role, key) in args.role_secrets.items()
        ]
        self.version = rotation_version(args.rotation)
        self.register_outputs({"secretName": self.secret_name, "version": self.version})

    def _role_secret(
        self, args: CredentialsArgs, name: str, role: str, password: pulumi.Output[str]
    ) -> k8s.core.v1.Secret:
        """The same password in the shape CloudNativePG reads (kubernetes.io/basic-auth, the
        role's name as `username`). Labelled cnpg.io/reload, so a rotation reaches the role
        at once. Protected like the credentials Secret: the operator sets the roles' passwords
        from it, and a rotation updates it in place."""
        return k8s.core.v1.Secret(
            name,
            metadata={
                "name": name,
                "namespace": args.namespace,
                "labels": {
                    "app.kubernetes.io/part-of": "pganalytics",
                    "app.kubernetes.io/instance": RELEASE_NAME,
                    "app.kubernetes.io/managed-by": "pulumi",
                    "cnpg.io/reload": "true",
                },
            },
            type="kubernetes.io/basic-auth",
            string_data={"username": role, "password": pulumi.Output.secret(password)},
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider, protect=args.protect),
        )
