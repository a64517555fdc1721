{{/* Helpers of the volume snapshot CronJob (volume-snapshots-*.yaml). */}}

{{/* Name of the CronJob, its ServiceAccount, Role and RoleBinding (a CronJob name has at most
     52 characters: fullname (40) + "-snapshots" fits). */}}
{{- define "pganalytics.snapshots.fullname" -}}{{ include "pganalytics.fullname" . }}-snapshots{{- end -}}

{{/* The VolumeSnapshotClass: required when snapshots are on (the Pulumi program sets it on
     EKS, GKE and AKS; on other clusters name one of `kubectl get volumesnapshotclass`). */}}
{{- define "pganalytics.snapshots.className" -}}
{{- required "volumeSnapshots.className is required when volumeSnapshots.enabled is true: name a VolumeSnapshotClass of the cluster (kubectl get volumesnapshotclass)" .Values.volumeSnapshots.className -}}
{{- end -}}
