"""The config objects of what runs on the cluster: ingress, storage and the bundled chart."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationInfo, model_validator
from pydantic import field_validator as check

from components.settings.base import (
    CHART_DIR,
    DEFAULT_STORAGE_CLASS,
    LOCAL_DOMAINS,
    MIRROR,
    REGISTRY,
    RELEASE_NAME,
    TAG,
    TRAEFIK_NAMESPACE,
    VALUES_FILE,
    Flag,
    Host,
    Model,
    Namespace,
    Text,
    chart_values_file,
    cloud_of,
    ctx,
    owned_namespace,
)
from components.settings.checks import (
    CREDENTIAL_NAME,
    EMAIL,
    K8S_NAME,
    NAMESPACE,
    URL_WITH_PASSWORD,
    Problems,
    cron_problem,
    fail,
    matches,
)

# Chart values with a `schedule` of a CronJob (backup dumps, volume snapshots).
CRON_SCHEDULES = ("backup", "volumeSnapshots")


class Ingress(Model):
    """The ingress controller, the hosts of the API, Grafana and the web UI, and TLS."""

    controller: Literal["traefik", "none"] = "traefik"
    """traefik: the program installs Traefik; none: use a controller already in the cluster."""
    class_name: Annotated[
        Text, matches(K8S_NAME, "is not a valid IngressClass name", "traefik")
    ] = "traefik"
    """IngressClass of the chart's Ingresses; with controller none it names your controller's
    class, and empty disables the chart's Ingress."""
    controller_namespace: Namespace = TRAEFIK_NAMESPACE
    """Namespace of the controller: Traefik is installed there, and the chart's NetworkPolicy
    admits traffic from it."""
    service_type: Literal["LoadBalancer", "NodePort"] = "LoadBalancer"
    """Service type of Traefik (NodePort on a laptop cluster without a load balancer)."""
    domain: Host = ""
    """Base domain; the hosts default to api.<domain>, grafana.<domain> and app.<domain>.
    Required while an ingress class is set."""
    api_host: Host = ""
    """Host of the API; empty: api.<domain>."""
    grafana_host: Host = ""
    """Host of Grafana; empty: grafana.<domain>."""
    frontend_host: Host = ""
    """Host of pgAnalytics' web UI (the chart's frontend, on in prod and enterprise); empty:
    app.<domain>."""
    tls: Flag = False
    """HTTPS with Let's Encrypt certificates from cert-manager (HTTP-01 through the class)."""
    acme_email: Annotated[Text, matches(EMAIL, "is not an e-mail address", "ops@example.com")] = ""
    """ACME account e-mail; required when tls is true."""
    acme_issuer: Literal["staging", "production"] = "staging"
    """Let's Encrypt server: ClusterIssuer letsencrypt-staging or letsencrypt-prod."""
    install_cert_manager: Flag = True
    """Install cert-manager when tls is true; false when the cluster has it already."""

    @check("domain", "api_host", "grafana_host", "frontend_host", mode="before")
    def _lower(cls, value: Any) -> Any:
        return value.lower().rstrip(".") if isinstance(value, str) else value

    @check("api_host", "grafana_host", "frontend_host")
    def _host_in_domain(cls, value: str, info: ValidationInfo) -> str:
        domain = info.data.get("domain")
        label = {"frontend_host": "app"}.get(info.field_name, info.field_name.removesuffix("_host"))
        return value or (f"{label}.{domain}" if domain else "")

    @model_validator(mode="after")
    def _consistent(self) -> Ingress:
        found = Problems()
        if self.controller == "traefik" and self.class_name != "traefik":
            why = f"must be traefik while ingress.controller is traefik (got {self.class_name!r})"
            found.add("className", why, "traefik")
        owned = owned_namespace(self.controller_namespace) if self.controller == "traefik" else ""
        if owned:
            why = f"{owned}; the program creates and owns Traefik's"
            found.add("controllerNamespace", why, TRAEFIK_NAMESPACE)
        if self.class_name and not (self.api_host and self.grafana_host):
            why = "is required while an ingress class is set (it names the API and Grafana hosts)"
            found.add("domain", why, "pganalytics.example.com")
        elif self.api_host and self.api_host == self.grafana_host:
            why = f"must differ from the API host ({self.api_host})"
            found.add("grafanaHost", why, "grafana." + self.api_host)
        if self.frontend_host and self.frontend_host in (self.api_host, self.grafana_host):
            which = "API" if self.frontend_host == self.api_host else "Grafana"
            why = f"must differ from the {which} host ({self.frontend_host})"
            found.add("frontendHost", why, "app." + self.frontend_host)
        if self.tls and not self.acme_email:
            why = "is required when ingress.tls is true (Let's Encrypt account)"
            found.add("acmeEmail", why, "ops@example.com")
        if self.tls and not self.class_name:
            why = "needs an ingress class (ingress.className) to solve ACME HTTP-01 challenges"
            found.add("tls", why, "traefik", fix_key="className")
        if self.tls and self.domain.endswith(LOCAL_DOMAINS):
            why = f"must be a public domain you own when ingress.tls is true (got {self.domain!r})"
            found.add("domain", why, "pganalytics.example.com")
        found.raise_any()
        return self

    @property
    def enabled(self) -> bool:
        return bool(self.class_name)

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def cluster_issuer(self) -> str:
        issuers = {"staging": "letsencrypt-staging", "production": "letsencrypt-prod"}
        return issuers[self.acme_issuer] if self.tls else ""


class Storage(Model):
    """The StorageClass of the database and Grafana volumes."""

    class_name: Annotated[Text, matches(K8S_NAME, "is not a valid name", DEFAULT_STORAGE_CLASS)] = (
        ""
    )
    """Clouds: the class the program creates (empty: pganalytics-ssd); existing: empty uses
    the cluster's default class, a name selects a class that exists there."""
    type: Text = ""
    """Disk type: aws gp3, gp2, io1, io2; gcp pd-balanced, pd-ssd, pd-standard; azure
    Premium_LRS, PremiumV2_LRS, StandardSSD_LRS, Premium_ZRS, StandardSSD_ZRS; empty: the first."""
    reclaim_policy: Literal["Delete", "Retain"] = "Delete"
    """Retain keeps the cloud disk when its claim is deleted (prod, enterprise)."""
    make_default: Flag = False
    """Annotate the class as the cluster's default; on GKE and AKS the cloud's default class
    (standard-rwo, default) is then demoted, so there is one default. The chart names its
    class, so it needs no default."""

    @check("class_name")
    def _class(cls, value: str, info: ValidationInfo) -> str:
        cloud = cloud_of(info)
        if cloud and value in cloud.builtin_classes:
            why = f"is a class {cloud.name} clusters have already; the program creates its own"
            fail(f"{why} (got {value!r})", DEFAULT_STORAGE_CLASS)
        return value or (DEFAULT_STORAGE_CLASS if cloud else "")

    @check("type")
    def _type(cls, value: str, info: ValidationInfo) -> str:
        cloud = cloud_of(info)
        if cloud and (value or cloud.disks[0]) not in cloud.disks:
            why = f"must be one of {', '.join(cloud.disks)} on {ctx(info, 'target')}"
            fail(f"{why} (got {value!r})", cloud.disks[0])
        return value or (cloud.disks[0] if cloud else "")


class Chart(Model):
    """The bundled chart: values file, overrides, namespace, images."""

    values_file: Text = ""
    """Values file inside charts/pganalytics; empty: values-<stack>.yaml."""
    values: dict[str, Any] = Field(default_factory=dict)
    """Overrides merged last; the merged values must pass values.schema.json. A credential in
    an extraEnv entry must come from a Secret (valueFrom), never a literal value."""
    namespace: Namespace = "pganalytics"
    """Namespace of the release, created and owned by the program (Pod Security restricted)."""
    image_registry: Annotated[Text, matches(REGISTRY, "is not a registry host[/path]", MIRROR)] = ""
    """Registry mirror for every image (global.imageRegistry)."""
    image_tag: Annotated[
        Text, matches(TAG, "must be an exact image tag, not 'latest'", "3.3.0")
    ] = ""
    """Tag of the backend and collector images; never latest."""

    @check("values_file")
    def _values_file(cls, value: str, info: ValidationInfo) -> str:
        value = value or f"values-{ctx(info, 'stack', 'dev')}.yaml"
        have = sorted(p.name for p in CHART_DIR.glob("values-*.yaml"))
        if not VALUES_FILE.fullmatch(value):
            fail(f"must be a file name inside charts/pganalytics (got {value!r})", have[0])
        if not (CHART_DIR / value).is_file():
            why = f"names {value}, which charts/pganalytics does not have (have: {', '.join(have)})"
            fail(why, have[0])
        return value

    @check("values")
    def _no_literal_credentials(cls, values: dict) -> dict:
        found = Problems()
        for path, name in _literal_credentials(values, ""):
            key, secret = f"{NAMESPACE}:chart.values.{path}", f"{RELEASE_NAME}-extra-env"
            found.add(path, f"gives {name} a literal value: a credential belongs in a Secret, not "
                      "in the pod spec (the chart's own credentials use existingSecret)",
                      fix=f"kubectl create secret generic {secret} --from-literal={name}=... && "
                      f"pulumi config rm --path {key}.value && pulumi config set --path "
                      f"{key}.valueFrom.secretKeyRef.name {secret} && pulumi config set --path "
                      f"{key}.valueFrom.secretKeyRef.key {name}")  # fmt: skip
        found.raise_any()
        return values

    @model_validator(mode="after")
    def _schedules(self) -> Chart:
        """The chart's cron schedules as the API server parses them: a bad one fails here,
        naming its key, and not when the CronJob is applied halfway through an update."""
        found = Problems()
        for part in CRON_SCHEDULES:
            schedule = self.value(part, "schedule")
            why = cron_problem(schedule) if isinstance(schedule, str) else ""
            if why:
                default = chart_values_file("values.yaml")[part]["schedule"]
                found.add(f"values.{part}.schedule", f"{why} (got {schedule!r})", default)
        found.raise_any()
        return self

    @check("namespace")
    def _namespace(cls, value: str) -> str:
        if owned_namespace(value):
            why = "the program creates the release namespace, owns it and enforces Pod Security"
            fail(f"{owned_namespace(value)}; {why}", "pganalytics")
        return value

    @property
    def path(self) -> Path:
        return CHART_DIR

    def value(self, *path: str) -> Any:
        """A chart value as Helm sees it: values.yaml < the values file < `values` (the last
        layer that sets it). For the few values the program acts on before the release."""
        found = None
        for layer in (
            chart_values_file("values.yaml"),
            chart_values_file(self.values_file),
            self.values,
        ):
            node: Any = layer
            for part in path:
                node = node.get(part) if isinstance(node, dict) else None
            if node is not None:
                found = node
        return found

    @property
    def snapshots_enabled(self) -> bool:
        """volumeSnapshots.enabled: scheduled CSI VolumeSnapshots (components/snapshots.py)."""
        return self.value("volumeSnapshots", "enabled") is True

    @property
    def snapshot_class_name(self) -> str:
        """volumeSnapshots.className as configured; empty: the program creates a class."""
        return str(self.value("volumeSnapshots", "className") or "")


def _literal_credentials(values: Any, path: str):
    """(path, name) of each `extraEnv` entry holding a credential as a literal value."""
    for key, value in values.items() if isinstance(values, dict) else ():
        if key != "extraEnv" or not isinstance(value, list):
            yield from _literal_credentials(value, f"{path}{key}.")
            continue
        for i, env in enumerate(e for e in value if isinstance(e, dict)):
            name, literal = str(env.get("name", "")), str(env.get("value") or "")
            if literal and (
                CREDENTIAL_NAME.fullmatch(name) or URL_WITH_PASSWORD.fullmatch(literal)
            ):
                yield f"{path}{key}[{i}]", name
