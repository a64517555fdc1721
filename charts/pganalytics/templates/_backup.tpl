{{/* Helpers of the backup and restore pods (backup-*.yaml). */}}

{{/* Name of the backup ServiceAccount. */}}
{{- define "pganalytics.backup.serviceAccountName" -}}{{ include "pganalytics.backup.fullname" . }}{{- end -}}

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
      name: {{ include "pganalytics.database.secretName" . }}
      key: {{ ternary .Values.timescaledb.auth.adminPasswordKey (include "pganalytics.database.passwordKey" .) (eq (include "pganalytics.database.owned" .) "true") }}
- name: PGDATABASE
  value: postgres
{{- end -}}

{{/* rclone env: the `backup` remote, configured per destination type; no config file. */}}
{{- define "pganalytics.backup.rcloneEnv" -}}
{{- $d := .Values.backup.destination -}}
- name: HOME
  value: /tmp
{{- /* Empty: no config file, the remote lives in the environment below. */}}
- name: RCLONE_CONFIG
  value: ""
- name: BACKUP_REMOTE
  value: {{ include "pganalytics.backup.remote" . | quote }}
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
{{- if $d.s3.existingSecret }}
- name: RCLONE_CONFIG_BACKUP_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ $d.s3.existingSecret }}
      key: {{ $d.s3.accessKeyIdKey }}
- name: RCLONE_CONFIG_BACKUP_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $d.s3.existingSecret }}
      key: {{ $d.s3.secretAccessKeyKey }}
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
{{- end }}
{{- end -}}

{{/* Pod template pieces shared by the backup CronJob and the restore Job. */}}
{{- define "pganalytics.backup.podSpecCommon" -}}
serviceAccountName: {{ include "pganalytics.backup.serviceAccountName" . }}
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
{{- end -}}

{{/* Volumes: scripts, the dump volume (PVC or emptyDir) and /tmp. */}}
{{- define "pganalytics.backup.volumes" -}}
{{- $bk := .Values.backup -}}
- name: scripts
  configMap:
    name: {{ include "pganalytics.backup.fullname" . }}-scripts
    defaultMode: 0555
- name: dumps
{{- if $bk.persistence.enabled }}
  persistentVolumeClaim:
    claimName: {{ $bk.persistence.existingClaim | default (include "pganalytics.backup.fullname" .) }}
{{- else }}
  emptyDir:
    sizeLimit: {{ $bk.scratchSizeLimit }}
{{- end }}
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
{{- end -}}
