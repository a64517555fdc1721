{{/* Helpers of the CloudNativePG database (cnpg-*.yaml). The operator, its CRDs and the
Barman Cloud plugin are installed outside the chart (the Pulumi program's platform step). */}}

{{/* Name of the Cluster: its Services are <name>-rw, -ro, -r; its backups live under
<destinationPath>/<name>/. */}}
{{- define "pganalytics.cnpg.clusterName" -}}
{{- .Values.cloudnativepg.clusterName | default (printf "%s-db" (include "pganalytics.fullname" .)) -}}
{{- end -}}
{{- define "pganalytics.cnpg.poolerName" -}}{{ include "pganalytics.cnpg.clusterName" . }}-pooler{{- end -}}
{{- define "pganalytics.cnpg.objectStoreName" -}}{{ include "pganalytics.cnpg.clusterName" . }}-backups{{- end -}}
{{- define "pganalytics.cnpg.imageCatalogName" -}}{{ include "pganalytics.cnpg.clusterName" . }}-images{{- end -}}
{{/* The Barman Cloud plugin as CloudNativePG names it. */}}
{{- define "pganalytics.cnpg.barmanPlugin" -}}barman-cloud.cloudnative-pg.io{{- end -}}

{{/* Host of the primary (the read-write Service). */}}
{{- define "pganalytics.cnpg.primaryHost" -}}{{ include "pganalytics.cnpg.clusterName" . }}-rw{{- end -}}

{{/* Host the API and the ML service connect to: the Pooler's Service, or the primary. */}}
{{- define "pganalytics.database.appHost" -}}
{{- if and .Values.cloudnativepg.enabled .Values.cloudnativepg.pooler.enabled -}}
{{- include "pganalytics.cnpg.poolerName" . -}}
{{- else -}}
{{- include "pganalytics.database.host" . -}}
{{- end -}}
{{- end -}}

{{/* "true" when the chart's own server holds the data (bundled StatefulSet or the
CloudNativePG Cluster): a superuser is at hand, pg_stat_statements is preloaded and the
collector's monitoring role (timescaledb.auth.monitorUsername) gets pg_monitor. */}}
{{- define "pganalytics.database.owned" -}}
{{- or .Values.timescaledb.enabled .Values.cloudnativepg.enabled -}}
{{- end -}}

{{/* Pod selector labels of the instance pods and of the PgBouncer pods (set by the operator). */}}
{{- define "pganalytics.cnpg.instanceSelector" -}}
cnpg.io/cluster: {{ include "pganalytics.cnpg.clusterName" . | quote }}
cnpg.io/podRole: instance
{{- end -}}
{{- define "pganalytics.cnpg.poolerSelector" -}}
cnpg.io/poolerName: {{ include "pganalytics.cnpg.poolerName" . | quote }}
{{- end -}}

{{/* Connection budget with the Pooler (docs/APP_CONTRACT.md), as JSON:
- clients of the Pooler (API pods at HPA max x their pools + the ML service's pools) must fit
  in max_client_conn of one PgBouncer pod (a pod may get every client after a restart);
- server connections (PgBouncer pods x default_pool_size x database/user pairs of its clients,
  plus the direct clients: bootstrap and backup (reserve), Grafana, collectors) plus
  superuser_reserved_connections must fit in max_connections. */}}
{{- define "pganalytics.cnpg.connectionBudget" -}}
{{- $cb := .Values.connectionBudget -}}
{{- $p := .Values.cloudnativepg.pooler -}}
{{- $budget := include "pganalytics.connectionBudget" . | fromJson -}}
{{- $clients := add (int $budget.backend) (int $budget.mlService) -}}
{{- /* database/user pairs behind the pooler: the API uses both databases, ML only metadata. */ -}}
{{- $pairs := 2 -}}
{{- $servers := mul (int $p.instances) (int $p.defaultPoolSize) $pairs -}}
{{- $direct := add (int $budget.grafana) (int $budget.collectors) (int $budget.reserve) -}}
{{- $superuser := (get .Values.cloudnativepg.parameters "superuser_reserved_connections" | default 3) | int -}}
{{- dict "poolerClients" $clients "poolerServers" $servers "direct" $direct "superuserReserved" $superuser "total" (add $servers $direct $superuser) | toJson -}}
{{- end -}}

{{/* Checks of the CloudNativePG values the schema cannot express. */}}
{{- define "pganalytics.cnpg.validate" -}}
{{- $c := .Values.cloudnativepg -}}
{{- if $c.enabled -}}
{{- if .Values.timescaledb.enabled -}}
{{- fail "cloudnativepg.enabled: the database is either the bundled StatefulSet or the CloudNativePG cluster; set timescaledb.enabled=false" -}}
{{- end -}}
{{- if not .Values.timescaledb.auth.existingSecret -}}
{{- fail "timescaledb.auth.existingSecret: with cloudnativepg.enabled the passwords come from an existing Secret (the chart generates none for the operator's basic-auth Secrets to copy)" -}}
{{- end -}}
{{- if not $c.auth.appSecret -}}
{{- fail "cloudnativepg.auth.appSecret: name a kubernetes.io/basic-auth Secret with username (timescaledb.auth.username) and password (the same as timescaledb.auth.passwordKey of timescaledb.auth.existingSecret)" -}}
{{- end -}}
{{- if and $c.enableSuperuserAccess (not $c.auth.superuserSecret) -}}
{{- fail "cloudnativepg.auth.superuserSecret: name a kubernetes.io/basic-auth Secret with username postgres and the superuser password, or set cloudnativepg.enableSuperuserAccess=false" -}}
{{- end -}}
{{- if and (not $c.enableSuperuserAccess) (or .Values.databaseBootstrap.enabled .Values.backup.enabled) -}}
{{- fail "cloudnativepg.enableSuperuserAccess: the bootstrap Job and the backup Jobs log in as the superuser; keep it true or turn databaseBootstrap.enabled and backup.enabled off" -}}
{{- end -}}
{{- if gt (int $c.minSyncReplicas) (int $c.maxSyncReplicas) -}}
{{- fail (printf "cloudnativepg.maxSyncReplicas: %d is below minSyncReplicas %d" (int $c.maxSyncReplicas) (int $c.minSyncReplicas)) -}}
{{- end -}}
{{- if ge (int $c.maxSyncReplicas) (int $c.instances) -}}
{{- fail (printf "cloudnativepg.maxSyncReplicas: %d needs at least %d instances (one primary and the standbys); lower it or raise cloudnativepg.instances" (int $c.maxSyncReplicas) (add 1 (int $c.maxSyncReplicas))) -}}
{{- end -}}
{{- if and $c.backup.enabled (not $c.backup.destinationPath) -}}
{{- fail "cloudnativepg.backup.destinationPath is required when cloudnativepg.backup.enabled is true (s3://<bucket>/cnpg, gs://<bucket>/cnpg or https://<account>.blob.core.windows.net/<container>/cnpg)" -}}
{{- end -}}
{{- if $c.recovery.enabled -}}
{{- if not $c.backup.destinationPath -}}
{{- fail "cloudnativepg.recovery.enabled: a recovery reads the object store of cloudnativepg.backup.destinationPath; set it" -}}
{{- end -}}
{{- if or (not $c.recovery.sourceClusterName) (eq $c.recovery.sourceClusterName (include "pganalytics.cnpg.clusterName" .)) -}}
{{- fail "cloudnativepg.recovery.sourceClusterName: name the cluster whose backups are read; it must differ from cloudnativepg.clusterName (the new cluster archives under its own name)" -}}
{{- end -}}
{{- end -}}
{{- if $c.pooler.enabled -}}
{{- $budget := include "pganalytics.cnpg.connectionBudget" . | fromJson -}}
{{- if gt (int $budget.poolerClients) (int $c.pooler.maxClientConn) -}}
{{- fail (printf "cloudnativepg.pooler.maxClientConn: %d is below the clients of the pooler (%d: API pods at HPA max x connectionBudget.backendPerPod + ML service pools); raise it" (int $c.pooler.maxClientConn) (int $budget.poolerClients)) -}}
{{- end -}}
{{- $max := (get $c.parameters "max_connections" | default 100) | int -}}
{{- if lt $max (int $budget.total) -}}
{{- fail (printf "cloudnativepg.parameters.max_connections: %d is below the server connections %d (pooler %d = %d pods x default_pool_size %d x 2 database/user pairs, direct clients %d, superuser reserved %d); raise it or lower cloudnativepg.pooler.defaultPoolSize" $max (int $budget.total) (int $budget.poolerServers) (int $c.pooler.instances) (int $c.pooler.defaultPoolSize) (int $budget.direct) (int $budget.superuserReserved)) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
