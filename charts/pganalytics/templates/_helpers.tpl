{{/* vim: set filetype=mustache: */}}

{{/* Chart name, overridable. */}}
{{- define "pganalytics.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Release fullname: prefix of every object name (kept short so suffixes fit in 63). */}}
{{- define "pganalytics.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "pganalytics.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Stable selector labels. Call with (dict "ctx" $ "component" "backend"). */}}
{{- define "pganalytics.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pganalytics.name" .ctx | quote }}
app.kubernetes.io/instance: {{ .ctx.Release.Name | quote }}
{{- if .component }}
app.kubernetes.io/component: {{ .component | quote }}
{{- end }}
{{- end -}}

{{/* Full label set. Call with (dict "ctx" $ "component" "backend"). */}}
{{- define "pganalytics.labels" -}}
{{ include "pganalytics.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: pganalytics
app.kubernetes.io/managed-by: {{ .ctx.Release.Service | quote }}
helm.sh/chart: {{ include "pganalytics.chart" .ctx | quote }}
{{- with .ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* metadata block: name, namespace, labels, annotations. (dict "ctx" $ "component" "x" "name" "obj-name" "annotations" map) */}}
{{- define "pganalytics.metadata" -}}
name: {{ .name | quote }}
namespace: {{ .ctx.Release.Namespace | quote }}
labels:
  {{- include "pganalytics.labels" . | nindent 2 }}
{{- $ann := merge (dict) (.annotations | default dict) (.ctx.Values.commonAnnotations | default dict) }}
{{- if .checkov }}
{{- $ann = merge $ann (include "pganalytics.checkovSkips" .component | fromYaml) }}
{{- end }}
{{- with $ann }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/*
checkov findings a workload keeps on purpose, as checkov.io/skipN annotations with the reason
(tests/project/test_checkov.py fails on any other finding). Call with the component name.
*/}}
{{- define "pganalytics.checkovSkips" -}}
{{- $cpu := "CKV_K8S_11=no CPU limit on purpose: requests reserve the CPU; a limit only throttles the pod (CFS quota) in bursts. Memory is limited" -}}
{{- $app := "CKV_K8S_40=uid 1000 is the user the pgAnalytics image creates and owns its files with" -}}
{{- $pg := "CKV_K8S_40=uid 70 is postgres of the alpine TimescaleDB image, which owns the data directory" -}}
{{- $skips := dict
  "backend" (list $cpu $app "CKV_K8S_35=the 3.3.0 API reads JWT_SECRET, REGISTRATION_SECRET, ENCRYPTION_KEY and DATABASE_PASSWORD with os.Getenv only (no *_FILE)")
  "bootstrap" (list $cpu $app "CKV_K8S_35=one-shot Job: psql reads PGPASSWORD, the chart's bootstrap scripts the role passwords from env")
  "collector" (list $cpu $app "CKV_K8S_35=the 3.3.0 collector's entrypoint writes its config from POSTGRES_PASSWORD and REGISTRATION_SECRET env only" "CKV_K8S_8=the collector opens no port: a probe could only restate that its process runs" "CKV_K8S_9=the collector serves nothing: no traffic to gate on readiness")
  "ml-service" (list $cpu $app "CKV_K8S_35=the 3.3.0 ML service reads DATABASE_URL and its Celery broker URLs from env only")
  "frontend" (list $cpu $app)
  "grafana" (list $cpu "CKV_K8S_40=uid 472 is grafana of the upstream image, which owns its data and plugin paths")
  "redis" (list $cpu "CKV_K8S_40=uid 999 is redis of the upstream image" "CKV_K8S_35=redis-server takes requirepass from a config file the container writes into memory from REDIS_PASSWORD; redis-cli (the probes) reads REDISCLI_AUTH only")
  "timescaledb" (list $cpu $pg "CKV_K8S_8=the password-sync sidecar applies the passwords and sleeps: nothing to probe (the database container has all three probes)" "CKV_K8S_9=the password-sync sidecar serves nothing")
  "backup" (list $cpu $pg "CKV_K8S_35=pg_dump and pg_restore read PGPASSWORD, rclone its S3 keys (existingSecret) from RCLONE_CONFIG_* env")
  "volume-snapshots" (list $cpu) -}}
{{- range $i, $skip := (get $skips .) }}
checkov.io/skip{{ add1 $i }}: {{ $skip | quote }}
{{- end }}
{{- end -}}

{{/* Pod template labels: stable selector labels + version + extra pod labels. */}}
{{- define "pganalytics.podLabels" -}}
{{ include "pganalytics.labels" . }}
{{- with .podLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Image reference. (dict "image" .Values.x.image "global" .Values.global) */}}
{{- define "pganalytics.image" -}}
{{- $registry := .global.imageRegistry | default .image.registry -}}
{{- $ref := printf "%s:%s" .image.repository (toString .image.tag) -}}
{{- if .image.digest -}}
{{- $ref = printf "%s@%s" $ref .image.digest -}}
{{- end -}}
{{- if $registry -}}
{{- printf "%s/%s" $registry $ref -}}
{{- else -}}
{{- $ref -}}
{{- end -}}
{{- end -}}

{{/* imagePullSecrets of every pod. */}}
{{- define "pganalytics.imagePullSecrets" -}}
{{- with .Values.global.imagePullSecrets }}
imagePullSecrets:
{{- range . }}
{{- if kindIs "map" . }}
  - name: {{ .name | quote }}
{{- else }}
  - name: {{ . | quote }}
{{- end }}
{{- end }}
{{- end }}
{{- end -}}

{{/* ServiceAccount name. */}}
{{- define "pganalytics.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "pganalytics.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Common pod-spec preamble: service account, token, pull secrets. */}}
{{- define "pganalytics.podCommon" -}}
serviceAccountName: {{ include "pganalytics.serviceAccountName" . | quote }}
automountServiceAccountToken: {{ .Values.serviceAccount.automountServiceAccountToken }}
enableServiceLinks: false
{{- include "pganalytics.imagePullSecrets" . }}
{{- end -}}

{{/* storageClassName line for a component persistence block. (dict "ctx" $ "persistence" .Values.x.persistence) */}}
{{- define "pganalytics.storageClass" -}}
{{- $sc := .persistence.storageClass | default .ctx.Values.global.storageClass -}}
{{- if $sc -}}
storageClassName: {{ $sc | quote }}
{{- end -}}
{{- end -}}

{{/* Init container that waits until host:port accepts TCP connections. (dict "ctx" $ "name" "wait-for-x" "host" h "port" p "securityContext" sc) */}}
{{- define "pganalytics.waitContainer" -}}
- name: {{ .name | quote }}
  image: {{ include "pganalytics.image" (dict "image" .ctx.Values.waitImage "global" .ctx.Values.global) | quote }}
  imagePullPolicy: {{ .ctx.Values.waitImage.pullPolicy | quote }}
  command:
    - sh
    - -c
    - |
      until nc -z -w 3 "$WAIT_HOST" "$WAIT_PORT"; do
        echo "waiting for $WAIT_HOST:$WAIT_PORT"
        sleep 3
      done
  env:
    - name: WAIT_HOST
      value: {{ .host | quote }}
    - name: WAIT_PORT
      value: {{ .port | quote }}
  resources:
    {{- toYaml .ctx.Values.waitImage.resources | nindent 4 }}
  securityContext:
    {{- toYaml .securityContext | nindent 4 }}
{{- end -}}

{{/* NetworkPolicy peers, one ipBlock per CIDR; a 0.0.0.0/0 block leaves out the `except`
CIDRs (the metadata address, private ranges). (dict "cidrs" list "except" list) */}}
{{- define "pganalytics.ipBlocks" -}}
{{- $except := .except -}}
{{- range .cidrs }}
- ipBlock:
    cidr: {{ . | quote }}
    {{- if and (eq . "0.0.0.0/0") $except }}
    except:
      {{- range $except }}
      - {{ . | quote }}
      {{- end }}
    {{- end }}
{{- end }}
{{- end -}}

{{/* Component object names. */}}
{{- define "pganalytics.backend.fullname" -}}{{ include "pganalytics.fullname" . }}-backend{{- end -}}
{{- define "pganalytics.collector.fullname" -}}{{ include "pganalytics.fullname" . }}-collector{{- end -}}
{{- define "pganalytics.timescaledb.fullname" -}}{{ include "pganalytics.fullname" . }}-timescaledb{{- end -}}
{{- define "pganalytics.redis.fullname" -}}{{ include "pganalytics.fullname" . }}-redis{{- end -}}
{{- define "pganalytics.grafana.fullname" -}}{{ include "pganalytics.fullname" . }}-grafana{{- end -}}
{{- define "pganalytics.mlservice.fullname" -}}{{ include "pganalytics.fullname" . }}-ml-service{{- end -}}
{{- define "pganalytics.frontend.fullname" -}}{{ include "pganalytics.fullname" . }}-frontend{{- end -}}
{{- define "pganalytics.backup.fullname" -}}{{ include "pganalytics.fullname" . }}-backup{{- end -}}

{{/* Secret names: the user's existingSecret, else the chart's generated Secret. */}}
{{- define "pganalytics.backend.secretName" -}}
{{- .Values.backend.auth.existingSecret | default (printf "%s-backend" (include "pganalytics.fullname" .)) -}}
{{- end -}}
{{- define "pganalytics.redis.secretName" -}}
{{- .Values.redis.auth.existingSecret | default (printf "%s-redis" (include "pganalytics.fullname" .)) -}}
{{- end -}}
{{- define "pganalytics.grafana.secretName" -}}
{{- .Values.grafana.admin.existingSecret | default (printf "%s-grafana" (include "pganalytics.fullname" .)) -}}
{{- end -}}
{{- define "pganalytics.database.secretName" -}}
{{- if eq (include "pganalytics.database.owned" .) "true" -}}
{{- .Values.timescaledb.auth.existingSecret | default (printf "%s-timescaledb" (include "pganalytics.fullname" .)) -}}
{{- else -}}
{{- .Values.externalDatabase.existingSecret | default (printf "%s-external-database" (include "pganalytics.fullname" .)) -}}
{{- end -}}
{{- end -}}
{{- define "pganalytics.database.passwordKey" -}}
{{- if eq (include "pganalytics.database.owned" .) "true" -}}
{{- .Values.timescaledb.auth.passwordKey -}}
{{- else -}}
{{- .Values.externalDatabase.passwordKey -}}
{{- end -}}
{{- end -}}

{{/* Database coordinates (bundled TimescaleDB, the CloudNativePG primary, or externalDatabase). */}}
{{- define "pganalytics.database.host" -}}
{{- if .Values.timescaledb.enabled -}}
{{- include "pganalytics.timescaledb.fullname" . -}}
{{- else if .Values.cloudnativepg.enabled -}}
{{- include "pganalytics.cnpg.primaryHost" . -}}
{{- else -}}
{{- required "externalDatabase.host is required when timescaledb.enabled is false" .Values.externalDatabase.host -}}
{{- end -}}
{{- end -}}
{{- define "pganalytics.database.port" -}}
{{- if .Values.timescaledb.enabled -}}{{ .Values.timescaledb.service.port }}{{- else if .Values.cloudnativepg.enabled -}}5432{{- else -}}{{ .Values.externalDatabase.port }}{{- end -}}
{{- end -}}
{{- define "pganalytics.database.user" -}}
{{- if eq (include "pganalytics.database.owned" .) "true" -}}{{ .Values.timescaledb.auth.username }}{{- else -}}{{ .Values.externalDatabase.username }}{{- end -}}
{{- end -}}
{{- define "pganalytics.database.name" -}}
{{- if eq (include "pganalytics.database.owned" .) "true" -}}{{ .Values.timescaledb.auth.database }}{{- else -}}{{ .Values.externalDatabase.database }}{{- end -}}
{{- end -}}
{{- define "pganalytics.database.metricsName" -}}
{{- if eq (include "pganalytics.database.owned" .) "true" -}}{{ .Values.timescaledb.auth.metricsDatabase }}{{- else -}}{{ .Values.externalDatabase.metricsDatabase }}{{- end -}}
{{- end -}}
{{/* The collector's read-only monitoring role of the chart's database and its password key
(in the database Secret). */}}
{{- define "pganalytics.monitor.user" -}}
{{- if eq (include "pganalytics.database.owned" .) "true" -}}{{ .Values.timescaledb.auth.monitorUsername }}{{- else -}}{{ .Values.externalDatabase.monitorUsername }}{{- end -}}
{{- end -}}
{{- define "pganalytics.monitor.passwordKey" -}}
{{- if eq (include "pganalytics.database.owned" .) "true" -}}{{ .Values.timescaledb.auth.monitorPasswordKey }}{{- else -}}{{ .Values.externalDatabase.monitorPasswordKey }}{{- end -}}
{{- end -}}
{{- define "pganalytics.database.sslMode" -}}
{{- if .Values.timescaledb.enabled -}}disable{{- else if .Values.cloudnativepg.enabled -}}require{{- else -}}{{ .Values.externalDatabase.sslMode }}{{- end -}}
{{- end -}}

{{/* PostgreSQL URL of the API and the ML service, with the password as a $(DATABASE_PASSWORD)
reference: through the CloudNativePG Pooler when there is one. "libpq" false (the API's Go
lib/pq) adds binary_parameters=yes there, so each query's parse, bind and execute travel in one
message, as PgBouncer's transaction mode needs. (dict "ctx" $ "db" name "libpq" bool) */}}
{{- define "pganalytics.database.url" -}}
{{- $c := .ctx -}}
{{- $url := printf "postgres://%s:$(DATABASE_PASSWORD)@%s:%s/%s?sslmode=%s" (include "pganalytics.database.user" $c | urlquery) (include "pganalytics.database.appHost" $c) (include "pganalytics.database.port" $c) .db (include "pganalytics.database.sslMode" $c) -}}
{{- if and $c.Values.cloudnativepg.enabled $c.Values.cloudnativepg.pooler.enabled (not .libpq) -}}
{{- $url = printf "%s&binary_parameters=yes" $url -}}
{{- end -}}
{{- $url -}}
{{- end -}}

{{/* env entry DATABASE_PASSWORD from the database Secret. */}}
{{- define "pganalytics.database.passwordEnv" -}}
- name: DATABASE_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "pganalytics.database.secretName" . | quote }}
      key: {{ include "pganalytics.database.passwordKey" . | quote }}
{{- end -}}

{{/* URL scheme of the public endpoints. */}}
{{- define "pganalytics.scheme" -}}
{{- if .Values.ingress.tls.enabled -}}https{{- else -}}http{{- end -}}
{{- end -}}
{{- define "pganalytics.publicEndpoints" -}}
{{- or .Values.ingress.enabled .Values.httpRoute.enabled -}}
{{- end -}}

{{/* API_BASE_URL: explicit value, else derived from the API host when it is published. */}}
{{- define "pganalytics.apiBaseUrl" -}}
{{- if .Values.backend.config.apiBaseUrl -}}
{{- .Values.backend.config.apiBaseUrl -}}
{{- else if and (or .Values.ingress.enabled .Values.httpRoute.enabled) .Values.ingress.api.host -}}
{{- printf "%s://%s" (include "pganalytics.scheme" .) .Values.ingress.api.host -}}
{{- end -}}
{{- end -}}

{{/* FRONTEND_URL: explicit value, else the frontend host, else the API URL. */}}
{{- define "pganalytics.frontendUrl" -}}
{{- if .Values.backend.config.frontendUrl -}}
{{- .Values.backend.config.frontendUrl -}}
{{- else if and .Values.frontend.enabled (or .Values.ingress.enabled .Values.httpRoute.enabled) .Values.ingress.frontend.host -}}
{{- printf "%s://%s" (include "pganalytics.scheme" .) .Values.ingress.frontend.host -}}
{{- else -}}
{{- include "pganalytics.apiBaseUrl" . -}}
{{- end -}}
{{- end -}}

{{/*
A generated credential, stable across upgrades: reuse the value already stored in the
release's Secret (lookup, plain helm only), else a fresh random alphanumeric string.
(dict "ctx" $ "secret" name "key" key "length" 32)
*/}}
{{- define "pganalytics.generatedValue" -}}
{{- $existing := lookup "v1" "Secret" .ctx.Release.Namespace .secret -}}
{{- if and $existing (hasKey ($existing.data | default dict) .key) -}}
{{- index $existing.data .key | b64dec -}}
{{- else -}}
{{- randAlphaNum (int (.length | default 32)) -}}
{{- end -}}
{{- end -}}

{{/* Checks of value combinations the schema cannot express. */}}
{{- define "pganalytics.validate" -}}
{{- if eq .Values.backend.config.environment "production" -}}
{{- $api := include "pganalytics.apiBaseUrl" . -}}
{{- $fe := include "pganalytics.frontendUrl" . -}}
{{- if or (not $api) (contains "localhost" $api) -}}
{{- fail "backend.config.apiBaseUrl: ENVIRONMENT=production needs a real API URL (set backend.config.apiBaseUrl or enable ingress with ingress.api.host)" -}}
{{- end -}}
{{- if or (not $fe) (contains "localhost" $fe) -}}
{{- fail "backend.config.frontendUrl: ENVIRONMENT=production needs a real frontend URL" -}}
{{- end -}}
{{- end -}}
{{- if and .Values.mlService.enabled (not .Values.redis.enabled) -}}
{{- fail "redis.enabled: the ML service uses Redis as its Celery broker; enable redis" -}}
{{- end -}}
{{- if and (ne (include "pganalytics.database.owned" .) "true") (not .Values.externalDatabase.host) -}}
{{- fail "externalDatabase.host is required when timescaledb.enabled is false" -}}
{{- end -}}
{{- if and (ne (include "pganalytics.database.owned" .) "true") (not .Values.externalDatabase.existingSecret) (not .Values.externalDatabase.password) -}}
{{- fail "externalDatabase.existingSecret (or externalDatabase.password) is required when timescaledb.enabled is false" -}}
{{- end -}}
{{- if and .Values.backend.ldap.enabled (not .Values.backend.ldap.existingSecret) -}}
{{- fail "backend.ldap.existingSecret is required when backend.ldap.enabled is true" -}}
{{- end -}}
{{- if and .Values.backend.saml.enabled (not .Values.backend.saml.existingSecret) -}}
{{- fail "backend.saml.existingSecret is required when backend.saml.enabled is true" -}}
{{- end -}}
{{- if and .Values.backend.oauth.enabled (not .Values.backend.oauth.existingSecret) -}}
{{- fail "backend.oauth.existingSecret is required when backend.oauth.enabled is true" -}}
{{- end -}}
{{- if and (eq .Values.backend.encryption.keyBackend "vault") (or (not .Values.backend.encryption.vault.existingSecret) (not .Values.backend.encryption.vault.address)) -}}
{{- fail "backend.encryption.vault.address and backend.encryption.vault.existingSecret are required when backend.encryption.keyBackend is vault" -}}
{{- end -}}
{{- if and (eq .Values.backend.encryption.keyBackend "aws") (not .Values.backend.encryption.aws.secretsManagerArn) -}}
{{- fail "backend.encryption.aws.secretsManagerArn is required when backend.encryption.keyBackend is aws" -}}
{{- end -}}
{{- if and (eq .Values.backend.encryption.keyBackend "gcp") (not .Values.backend.encryption.gcp.kmsKeyName) -}}
{{- fail "backend.encryption.gcp.kmsKeyName is required when backend.encryption.keyBackend is gcp" -}}
{{- end -}}
{{- if and .Values.httpRoute.enabled (not .Values.httpRoute.parentRefs) -}}
{{- fail "httpRoute.parentRefs is required when httpRoute.enabled is true" -}}
{{- end -}}
{{- if and .Values.backend.autoscaling.enabled (gt (int .Values.backend.autoscaling.minReplicas) (int .Values.backend.autoscaling.maxReplicas)) -}}
{{- fail "backend.autoscaling.minReplicas must not exceed backend.autoscaling.maxReplicas" -}}
{{- end -}}
{{- $names := dict -}}
{{- range $i, $t := .Values.collector.targets -}}
{{- if hasKey $names $t.name -}}
{{- fail (printf "collector.targets[%d].name: %q is used twice; each target is collected once, give each a unique name" $i $t.name) -}}
{{- end -}}
{{- $_ := set $names $t.name true -}}
{{- if and $t.nodeLocal $t.host -}}
{{- fail (printf "collector.targets[%d]: a nodeLocal target monitors the PostgreSQL on each node's own IP; remove host (or nodeLocal)" $i) -}}
{{- end -}}
{{- if and (or $t.host $t.nodeLocal) (not $t.existingSecret) -}}
{{- fail (printf "collector.targets[%d].existingSecret is required for a target with a host or nodeLocal (a Secret holding its password)" $i) -}}
{{- end -}}
{{- if and (or $t.host $t.nodeLocal) (not $t.databases) -}}
{{- fail (printf "collector.targets[%d].databases is required for a target with a host or nodeLocal: list the databases to monitor, e.g. [\"postgres\", \"app\"]" $i) -}}
{{- end -}}
{{- if and (or $t.host $t.nodeLocal) (not $t.username) -}}
{{- fail (printf "collector.targets[%d].username is required for a target with a host or nodeLocal" $i) -}}
{{- end -}}
{{- end -}}
{{- if and .Values.databaseBootstrap.enabled (ne (include "pganalytics.database.owned" .) "true") (or (not .Values.externalDatabase.admin.username) (not .Values.externalDatabase.admin.existingSecret)) -}}
{{- fail "externalDatabase.admin.username and externalDatabase.admin.existingSecret are required when databaseBootstrap.enabled is true and timescaledb.enabled is false (the bootstrap creates roles and applies the migrations as that role), or set databaseBootstrap.enabled=false and bootstrap the database yourself" -}}
{{- end -}}
{{- $budget := include "pganalytics.connectionBudget" . | fromJson -}}
{{- $max := 0 -}}
{{- $maxKey := "" -}}
{{- if .Values.timescaledb.enabled -}}
{{- if hasKey .Values.timescaledb.parameters "max_connections" -}}
{{- $max = get .Values.timescaledb.parameters "max_connections" | int -}}
{{- $maxKey = "timescaledb.parameters.max_connections" -}}
{{- end -}}
{{- else if and .Values.cloudnativepg.enabled (not .Values.cloudnativepg.pooler.enabled) -}}
{{- /* With the Pooler, pganalytics.cnpg.validate checks the budget against it instead. */ -}}
{{- $max = (get .Values.cloudnativepg.parameters "max_connections" | default 100) | int -}}
{{- $maxKey = "cloudnativepg.parameters.max_connections" -}}
{{- else if and (not .Values.cloudnativepg.enabled) .Values.externalDatabase.maxConnections -}}
{{- $max = .Values.externalDatabase.maxConnections | int -}}
{{- $maxKey = "externalDatabase.maxConnections" -}}
{{- end -}}
{{- if and $maxKey (lt $max (int $budget.total)) -}}
{{- fail (printf "%s: %d is below the connection budget %d (API %d = %s pods x %v, Grafana %v, ML service %v, collectors %v, reserve %v, superuser reserved %v); raise it to at least %d, remove it to let the chart size the bundled server, or lower backend.autoscaling.maxReplicas" $maxKey $max (int $budget.total) (int $budget.backend) (include "pganalytics.backend.maxPods" .) .Values.connectionBudget.backendPerPod $budget.grafana $budget.mlService $budget.collectors $budget.reserve $budget.superuserReserved (int $budget.total)) -}}
{{- end -}}
{{- end -}}

{{/* Database bootstrap: Job name carries a hash of everything the run depends on, so a change
(new image = new migrations, new scripts, other roles or Secrets, databaseBootstrap.runToken)
creates a new Job that Pulumi and Helm both wait for; an unchanged release keeps its Job. */}}
{{- define "pganalytics.bootstrap.fullname" -}}{{ include "pganalytics.fullname" . }}-bootstrap{{- end -}}
{{- define "pganalytics.bootstrap.jobName" -}}
{{- $inputs := dict
  "image" (include "pganalytics.image" (dict "image" .Values.backend.image "global" .Values.global))
  "scripts" (.Files.Glob "files/db/*").AsConfig
  "env" (include "pganalytics.bootstrap.env" .)
  "runToken" .Values.databaseBootstrap.runToken -}}
{{- printf "%s-%s" (include "pganalytics.bootstrap.fullname" .) (toJson $inputs | sha256sum | trunc 8) -}}
{{- end -}}

{{/* The superuser (bundled server, CloudNativePG cluster) or administrative role (external server) of the bootstrap. */}}
{{- define "pganalytics.bootstrap.adminUser" -}}
{{- if eq (include "pganalytics.database.owned" .) "true" -}}postgres{{- else -}}{{ .Values.externalDatabase.admin.username }}{{- end -}}
{{- end -}}
{{- define "pganalytics.bootstrap.adminSecretName" -}}
{{- if eq (include "pganalytics.database.owned" .) "true" -}}
{{- include "pganalytics.database.secretName" . -}}
{{- else -}}
{{- .Values.externalDatabase.admin.existingSecret -}}
{{- end -}}
{{- end -}}
{{- define "pganalytics.bootstrap.adminPasswordKey" -}}
{{- if eq (include "pganalytics.database.owned" .) "true" -}}{{ .Values.timescaledb.auth.adminPasswordKey }}{{- else -}}{{ .Values.externalDatabase.admin.passwordKey }}{{- end -}}
{{- end -}}

{{/* Grafana's read-only database role and where its password lives. */}}
{{- define "pganalytics.reader.secretName" -}}
{{- .Values.grafana.datasource.existingSecret | default (include "pganalytics.grafana.secretName" .) -}}
{{- end -}}
{{- define "pganalytics.reader.passwordKey" -}}
{{- .Values.grafana.datasource.passwordKey | default .Values.grafana.admin.passwordKey -}}
{{- end -}}

{{/* env of the bootstrap container (names and Secret references only, never a value of a Secret). */}}
{{- define "pganalytics.bootstrap.env" -}}
- name: PGHOST
  value: {{ include "pganalytics.database.host" . | quote }}
- name: PGPORT
  value: {{ include "pganalytics.database.port" . | quote }}
- name: PGSSLMODE
  value: {{ include "pganalytics.database.sslMode" . | quote }}
- name: PGUSER
  value: {{ include "pganalytics.bootstrap.adminUser" . | quote }}
- name: PGPASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "pganalytics.bootstrap.adminSecretName" . | quote }}
      key: {{ include "pganalytics.bootstrap.adminPasswordKey" . | quote }}
- name: APP_DB
  value: {{ include "pganalytics.database.name" . | quote }}
- name: METRICS_DB
  value: {{ include "pganalytics.database.metricsName" . | quote }}
- name: APP_USER
  value: {{ include "pganalytics.database.user" . | quote }}
- name: APP_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "pganalytics.database.secretName" . | quote }}
      key: {{ include "pganalytics.database.passwordKey" . | quote }}
- name: READER_USER
  value: {{ .Values.grafana.datasource.username | quote }}
- name: READER_PASSWORD
  {{- if .Values.grafana.enabled }}
  valueFrom:
    secretKeyRef:
      name: {{ include "pganalytics.reader.secretName" . | quote }}
      key: {{ include "pganalytics.reader.passwordKey" . | quote }}
  {{- else }}
  {{- /* No Grafana: the role exists but cannot log in with any known password. */}}
  value: ""
  {{- end }}
- name: MONITOR_USER
  value: {{ include "pganalytics.monitor.user" . | quote }}
- name: MONITOR_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "pganalytics.database.secretName" . | quote }}
      key: {{ include "pganalytics.monitor.passwordKey" . | quote }}
- name: OWNER_USER
  value: {{ .Values.databaseBootstrap.ownerRole | quote }}
- name: EXTENSIONS
  value: {{ join " " .Values.databaseBootstrap.extensions | quote }}
- name: ADMIN_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "pganalytics.backend.secretName" . | quote }}
      key: {{ .Values.backend.auth.adminPasswordKey | quote }}
- name: OWNS_SERVER
  value: {{ include "pganalytics.database.owned" . | quote }}
- name: MIGRATIONS_DIR
  value: {{ .Values.databaseBootstrap.migrationsDir | quote }}
- name: SCRIPTS_DIR
  value: /opt/pganalytics-bootstrap
- name: WAIT_SECONDS
  value: {{ .Values.databaseBootstrap.waitSeconds | quote }}
- name: HOME
  value: /tmp
{{- end -}}

{{/* Collector targets with defaults filled in, as JSON ({"targets": [...]}): a target without
host is the chart's database. */}}
{{- define "pganalytics.collector.targets" -}}
{{- $out := list -}}
{{- range .Values.collector.targets -}}
{{- $t := deepCopy . -}}
{{- $chartDb := and (not $t.host) (not $t.nodeLocal) -}}
{{- $_ := set $t "chartDatabase" $chartDb -}}
{{- if $chartDb -}}
{{- $_ := set $t "host" (include "pganalytics.database.host" $) -}}
{{- $_ := set $t "port" (include "pganalytics.database.port" $ | int) -}}
{{- $_ := set $t "username" ($t.username | default (include "pganalytics.monitor.user" $)) -}}
{{- $_ := set $t "database" ($t.database | default (include "pganalytics.database.name" $)) -}}
{{- if not $t.databases -}}
{{- $_ := set $t "databases" (list (include "pganalytics.database.name" $) (include "pganalytics.database.metricsName" $)) -}}
{{- end -}}
{{- if not $t.existingSecret -}}
{{- $_ := set $t "existingSecret" (include "pganalytics.database.secretName" $) -}}
{{- $_ := set $t "passwordKey" (include "pganalytics.monitor.passwordKey" $) -}}
{{- end -}}
{{- end -}}
{{- $_ := set $t "port" (($t.port | default 5432) | int) -}}
{{- $_ := set $t "database" ($t.database | default "postgres") -}}
{{- $_ := set $t "passwordKey" ($t.passwordKey | default "postgres-password") -}}
{{- $out = append $out $t -}}
{{- end -}}
{{- dict "targets" $out | toJson -}}
{{- end -}}

{{/* Largest number of API pods: HPA max when autoscaling, else replicaCount. */}}
{{- define "pganalytics.backend.maxPods" -}}
{{- if .Values.backend.autoscaling.enabled -}}{{ .Values.backend.autoscaling.maxReplicas | int }}{{- else -}}{{ .Values.backend.replicaCount | int }}{{- end -}}
{{- end -}}

{{/* Connection budget (max_connections the chart's database needs), as JSON with its terms:
{"backend": API pods at HPA max (else replicaCount) x connectionBudget.backendPerPod,
 "grafana": grafana.datasource.maxOpenConns (Grafana on),
 "mlService": ML pods x mlService.workers x connectionBudget.mlServicePerWorker (ML on),
 "collectors": collectors of the chart's database x connectionBudget.perCollector,
 "reserve": connectionBudget.reserve,
 "superuserReserved": timescaledb.parameters.superuser_reserved_connections (default 3),
 "total": their sum}. docs/APP_CONTRACT.md explains each term; components/budget.py computes the
same from the merged values at settings time (tests/chart/test_connection_budget.py keeps the two
equal), so keep the terms and their names stable. */}}
{{- define "pganalytics.connectionBudget" -}}
{{- $cb := .Values.connectionBudget -}}
{{- $backend := mul (include "pganalytics.backend.maxPods" . | int) ($cb.backendPerPod | int) -}}
{{- $grafana := 0 -}}
{{- if .Values.grafana.enabled -}}{{- $grafana = .Values.grafana.datasource.maxOpenConns | int -}}{{- end -}}
{{- $ml := 0 -}}
{{- if .Values.mlService.enabled -}}
{{- $ml = mul (.Values.mlService.replicaCount | int) (.Values.mlService.workers | int) ($cb.mlServicePerWorker | int) -}}
{{- end -}}
{{- $collectors := 0 -}}
{{- if .Values.collector.enabled -}}
{{- range (include "pganalytics.collector.targets" . | fromJson).targets -}}
{{- if .chartDatabase -}}{{- $collectors = add $collectors ($cb.perCollector | int) -}}{{- end -}}
{{- end -}}
{{- end -}}
{{- $params := ternary .Values.cloudnativepg.parameters .Values.timescaledb.parameters .Values.cloudnativepg.enabled -}}
{{- $superuser := (get $params "superuser_reserved_connections" | default 3) | int -}}
{{- $total := add $backend $grafana $ml $collectors ($cb.reserve | int) $superuser -}}
{{- dict "backend" $backend "grafana" $grafana "mlService" $ml "collectors" $collectors "reserve" ($cb.reserve | int) "superuserReserved" $superuser "total" $total | toJson -}}
{{- end -}}
