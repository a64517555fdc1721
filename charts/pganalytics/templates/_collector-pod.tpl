{{/* Pod template shared by the collector DaemonSet and Deployment. */}}
{{- define "pganalytics.collector.podTemplate" -}}
{{- $c := .Values.collector -}}
{{- $fullname := include "pganalytics.collector.fullname" . -}}
metadata:
  labels:
    {{- include "pganalytics.podLabels" (dict "ctx" $ "component" "collector" "podLabels" $c.podLabels) | nindent 4 }}
  annotations:
    checksum/config: {{ include (print $.Template.BasePath "/collector-configmap.yaml") . | sha256sum }}
    {{- with $c.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  {{- include "pganalytics.podCommon" . | nindent 2 }}
  securityContext:
    {{- toYaml $c.podSecurityContext | nindent 4 }}
  {{- with $c.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  {{- with $c.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $c.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $c.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  initContainers:
    {{- include "pganalytics.waitContainer" (dict "ctx" $ "name" "wait-for-backend" "host" (include "pganalytics.backend.fullname" .) "port" .Values.backend.service.port "securityContext" $c.containerSecurityContext) | nindent 4 }}
  containers:
    - name: collector
      image: {{ include "pganalytics.image" (dict "image" $c.image "global" .Values.global) }}
      imagePullPolicy: {{ $c.image.pullPolicy }}
      envFrom:
        - configMapRef:
            name: {{ $fullname }}
      env:
        - name: INSTANCE_NAME
          valueFrom:
            fieldRef:
              fieldPath: {{ ternary "spec.nodeName" "metadata.name" (eq $c.mode "daemonset") }}
        - name: COLLECTOR_NAME
          value: {{ printf "%s$(INSTANCE_NAME)" (ternary (printf "%s-" $c.config.namePrefix) "" (not (empty $c.config.namePrefix))) | quote }}
        - name: REGISTRATION_SECRET
          valueFrom:
            secretKeyRef:
              name: {{ include "pganalytics.backend.secretName" . }}
              key: {{ .Values.backend.auth.registrationSecretKey }}
        - name: POSTGRES_PASSWORD
          valueFrom:
            secretKeyRef:
              {{- if $c.target.existingSecret }}
              name: {{ $c.target.existingSecret }}
              key: {{ $c.target.passwordKey }}
              {{- else }}
              name: {{ include "pganalytics.database.secretName" . }}
              key: {{ include "pganalytics.database.passwordKey" . }}
              {{- end }}
        {{- with $c.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      resources:
        {{- toYaml $c.resources | nindent 8 }}
      securityContext:
        {{- toYaml $c.containerSecurityContext | nindent 8 }}
      volumeMounts:
        - name: state
          mountPath: /var/lib/pganalytics
        - name: config
          mountPath: /etc/pganalytics
        - name: tmp
          mountPath: /tmp
  volumes:
    - name: state
      {{- if $c.state.existingClaim }}
      persistentVolumeClaim:
        claimName: {{ $c.state.existingClaim }}
      {{- else }}
      emptyDir:
        sizeLimit: {{ $c.state.sizeLimit }}
      {{- end }}
    - name: config
      emptyDir:
        sizeLimit: 16Mi
    - name: tmp
      emptyDir:
        sizeLimit: 64Mi
{{- end -}}
