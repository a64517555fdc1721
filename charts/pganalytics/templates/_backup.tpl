{{/* Helpers of the backup and restore pods (backup-*.yaml). */}}

{{/* Name of the backup ServiceAccount: the identity that writes backups. */}}
{{- define "pganalytics.backup.serviceAccountName" -}}{{ include "pganalytics.backup.fullname" . }}{{- end -}}

{{/* Name of the restore ServiceAccount: the identity that only reads them. */}}
{{- define "pganalytics.backup.restoreServiceAccountName" -}}{{ include "pganalytics.fullname" . }}-restore{{- end -}}

{{/* The databases a restore may touch (the chart's two), space-separated. */}}
{{- define "pganalytics.backup.databases" -}}
{{- printf "%s %s" (include "pganalytics.database.name" .) (include "pganalytics.database.metricsName" .) -}}
{{- end -}}

{{/* rclone remote path of the backups: backup:<bucket>/<prefix>. */}}
{{- define "pganalytics.backup.remote" -}}
{{- $d := .Values.backup.destination -}}
{{- printf "backup:%s/%s" (required "backup.destination.bucket is required when backup.destination.type is set" $d.bucket) ($d.prefix | default .Release.Name) -}}
{{- end -}}

{{/* libpq env of the pg_dump / pg_restore container: the superuser of the bundled database
     (owners, grants and TimescaleDB catalogs need it), else the external database's user. */}}
{{- define "pganalytics.backup.pgEnv" -}}
- name: PGHOST
  value: {{ include "pganalytics.database.host" . | quote }}
- name: PGPORT
  value: {{ include "pganalytics.database.port" . | quote }}
- name: PGSSLMODE
  value: {{ include "pganalytics.database.sslMode" . | quote }}
- name: PGUSER
  value: {{ ternary "postgres" (include "pganalytics.database.user" .) (eq (include "pganalytics.database.owned" .) "true") | quote }}
- name: PGPASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "pganalytics.database.secretName" . | quote }}
      key: {{ ternary .Values.timescaledb.auth.adminPasswordKey (include "pganalytics.database.passwordKey" .) (eq (include "pganalytics.database.owned" .) "true") | quote }}
- name: PGDATABASE
  value: postgres
{{- end -}}

{{/* rclone env: the `backup` remote, configured per destination type; no config file.
     Call: (dict "ctx" $ "restore" bool). The restore reads with backup.restore.existingSecret
     when set (S3 keys that only read); the upload writes once and, when set, locks. */}}
{{- define "pganalytics.backup.rcloneEnv" -}}
{{- $ctx := .ctx -}}
{{- $restore := .restore -}}
{{- $d := $ctx.Values.backup.destination -}}
{{- $keys := ternary ($ctx.Values.backup.restore.existingSecret | default $d.s3.existingSecret) $d.s3.existingSecret $restore -}}
- name: HOME
  value: /tmp
{{- /* Empty: no config file, the remote lives in the environment below. */}}
- name: RCLONE_CONFIG
  value: ""
- name: BACKUP_REMOTE
  value: {{ include "pganalytics.backup.remote" $ctx | quote }}
{{- if eq $d.type "s3" }}
- name: RCLONE_CONFIG_BACKUP_TYPE
  value: s3
- name: RCLONE_CONFIG_BACKUP_PROVIDER
  value: {{ $d.s3.provider | quote }}
- name: RCLONE_CONFIG_BACKUP_REGION
  value: {{ $d.s3.region | quote }}
{{- with $d.s3.endpoint }}
- name: RCLONE_CONFIG_BACKUP_ENDPOINT
  value: {{ . | quote }}
{{- end }}
- name: RCLONE_CONFIG_BACKUP_FORCE_PATH_STYLE
  value: {{ $d.s3.forcePathStyle | quote }}
{{- /* The bucket exists (the program or its owner made it): no CreateBucket permission needed. */}}
- name: RCLONE_CONFIG_BACKUP_NO_CHECK_BUCKET
  value: "true"
{{- if and (not $restore) $d.s3.writeOnce }}
{{- /* S3 answers 412 instead of replacing an existing key; the program's bucket policy
     refuses an upload without it. */}}
- name: RCLONE_HEADER_UPLOAD
  value: "If-None-Match: *"
{{- end }}
{{- if and (not $restore) $d.s3.objectLock.mode }}
- name: RCLONE_CONFIG_BACKUP_OBJECT_LOCK_MODE
  value: {{ $d.s3.objectLock.mode | quote }}
- name: RCLONE_CONFIG_BACKUP_OBJECT_LOCK_RETAIN_UNTIL_DATE
  value: {{ printf "%dd" (int $d.s3.objectLock.days) | quote }}
{{- end }}
{{- if $keys }}
- name: RCLONE_CONFIG_BACKUP_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ $keys | quote }}
      key: {{ $d.s3.accessKeyIdKey | quote }}
- name: RCLONE_CONFIG_BACKUP_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $keys | quote }}
      key: {{ $d.s3.secretAccessKeyKey | quote }}
{{- else }}
- name: RCLONE_CONFIG_BACKUP_ENV_AUTH
  value: "true"
{{- end }}
{{- else if eq $d.type "gcs" }}
- name: RCLONE_CONFIG_BACKUP_TYPE
  value: google cloud storage
- name: RCLONE_CONFIG_BACKUP_ENV_AUTH
  value: "true"
- name: RCLONE_CONFIG_BACKUP_BUCKET_POLICY_ONLY
  value: "true"
{{- else if eq $d.type "azureblob" }}
- name: RCLONE_CONFIG_BACKUP_TYPE
  value: azureblob
- name: RCLONE_CONFIG_BACKUP_ACCOUNT
  value: {{ required "backup.destination.azureblob.account is required for azureblob" $d.azureblob.account | quote }}
- name: RCLONE_CONFIG_BACKUP_ENV_AUTH
  value: "true"
{{- /* The container exists; the identities' roles cannot create one. */}}
- name: RCLONE_CONFIG_BACKUP_NO_CHECK_CONTAINER
  value: "true"
{{- end }}
{{- end -}}

{{/* Pod template pieces shared by the backup CronJob and the restore Job.
     Call: (dict "ctx" $ "serviceAccountName" name). */}}
{{- define "pganalytics.backup.podSpecCommon" -}}
{{- $sa := .serviceAccountName -}}
{{- with .ctx -}}
serviceAccountName: {{ $sa | quote }}
{{- /* Workload identities inject their own projected token; the API token is not needed. */}}
automountServiceAccountToken: false
enableServiceLinks: false
{{- include "pganalytics.imagePullSecrets" . }}
restartPolicy: Never
securityContext:
  {{- toYaml .Values.timescaledb.podSecurityContext | nindent 2 }}
{{- with .Values.timescaledb.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.timescaledb.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
{{- end -}}

{{/* Volumes: scripts, the dump volume (PVC or emptyDir) and /tmp. */}}
{{- define "pganalytics.backup.volumes" -}}
{{- $bk := .Values.backup -}}
- name: scripts
  configMap:
    name: {{ printf "%s-scripts" (include "pganalytics.backup.fullname" .) | quote }}
    defaultMode: 0555
- name: dumps
{{- if $bk.persistence.enabled }}
  persistentVolumeClaim:
    claimName: {{ $bk.persistence.existingClaim | default (include "pganalytics.backup.fullname" .) | quote }}
{{- else }}
  emptyDir:
    sizeLimit: {{ $bk.scratchSizeLimit | quote }}
{{- end }}
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
{{- end -}}
