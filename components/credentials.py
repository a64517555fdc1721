"""Generated credentials of the release, kept in the (encrypted) Pulumi state and in one
Kubernetes Secret that the chart references through `existingSecret`.

Keys are exactly those of docs/CHART_INTERFACE.md. Passwords are alphanumeric because the
chart builds database URLs from them. No keepers: a credential never changes on update.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components.settings import CREDENTIALS_SECRET, RELEASE_NAME

# key in the Secret -> length of the generated password
PASSWORDS = {
    "postgres-password": 32,
    "database-password": 32,
    "redis-password": 32,
    "jwt-secret": 64,
    "registration-secret": 48,
    "grafana-admin-password": 24,
    "admin-password": 24,
}
GRAFANA_ADMIN_USER = "admin"
SECRET_KEYS = (*PASSWORDS, "encryption-key", "grafana-admin-user")


@dataclass
class CredentialsArgs:
    namespace: pulumi.Input[str]
    provider: k8s.Provider
    protect: bool = False


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
            password = random.RandomPassword(
                key,
                length=length,
                special=False,  # alphanumeric: safe inside postgres:// URLs
                min_lower=2,
                min_upper=2,
                min_numeric=2,
                opts=keep,
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
        self.register_outputs({"secretName": self.secret_name})
