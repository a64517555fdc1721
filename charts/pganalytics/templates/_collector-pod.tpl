{{/* Pod template of one target's collector. (dict "ctx" $ "target" t) with t from
pganalytics.collector.targets. */}}
{{- define "pganalytics.collector.podTemplate" -}}
{{- $ctx := .ctx -}}
{{- $t := .target -}}
{{- $c := $ctx.Values.collector -}}
{{- $prefix := ternary (printf "%s-" $c.config.namePrefix) "" (not (empty $c.config.namePrefix)) -}}
metadata:
  labels:
    {{- include "pganalytics.podLabels" (dict "ctx" $ctx "component" "collector" "podLabels" $c.podLabels) | nindent 4 }}
    pganalytics.io/collector-target: {{ $t.name | quote }}
  annotations:
    checksum/config: {{ include (print $ctx.Template.BasePath "/collector-configmap.yaml") $ctx | sha256sum }}
    checksum/scripts: {{ include (print $ctx.Template.BasePath "/collector-scripts-configmap.yaml") $ctx | sha256sum }}
    {{- with $c.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  {{- include "pganalytics.podCommon" $ctx | nindent 2 }}
  securityContext:
    {{- toYaml $c.podSecurityContext | nindent 4 }}
  {{- with $c.priorityClassName }}
  priorityClassName: {{ . | quote }}
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
    {{- include "pganalytics.waitContainer" (dict "ctx" $ctx "name" "wait-for-backend" "host" (include "pganalytics.backend.fullname" $ctx) "port" $ctx.Values.backend.service.port "securityContext" $c.containerSecurityContext) | nindent 4 }}
  containers:
    - name: collector
      image: {{ include "pganalytics.image" (dict "image" $c.image "global" $ctx.Values.global) | quote }}
      imagePullPolicy: {{ $c.image.pullPolicy | quote }}
      {{- /* The image's ENTRYPOINT and CMD (collector/Dockerfile of 3.3.0), started through
      collector-start.sh, which registers again at every container start (the saved token may
      have expired while the state emptyDir outlived the container). */}}
      command: ["/bin/sh", "/opt/pganalytics-collector/collector-start.sh"]
      args: ["/app/entrypoint.sh", "/usr/local/bin/pganalytics-collector"]
      envFrom:
        - configMapRef:
            name: {{ include "pganalytics.collector.fullname" $ctx | quote }}
      env:
        {{- if $t.nodeLocal }}
        - name: NODE_NAME
          valueFrom:
            fieldRef:
              fieldPath: spec.nodeName
        - name: POSTGRES_HOST
          valueFrom:
            fieldRef:
              fieldPath: status.hostIP
        - name: COLLECTOR_NAME
          value: {{ printf "%s%s-$(NODE_NAME)" $prefix $t.name | quote }}
        - name: COLLECTOR_ID
          value: "$(COLLECTOR_NAME)"
        {{- else }}
        - name: POSTGRES_HOST
          value: {{ $t.host | quote }}
        - name: COLLECTOR_NAME
          value: {{ printf "%s%s" $prefix $t.name | quote }}
        - name: COLLECTOR_ID
          value: "$(COLLECTOR_NAME)"
        {{- end }}
        - name: POSTGRES_PORT
          value: {{ $t.port | quote }}
        - name: POSTGRES_USER
          value: {{ $t.username | quote }}
        - name: POSTGRES_DB
          value: {{ $t.database | quote }}
        - name: POSTGRES_DATABASES
          value: {{ join "," $t.databases | quote }}
        - name: POSTGRES_PASSWORD
          valueFrom:
            secretKeyRef:
              name: {{ $t.existingSecret | quote }}
              key: {{ $t.passwordKey | quote }}
        - name: REGISTRATION_SECRET
          valueFrom:
            secretKeyRef:
              name: {{ include "pganalytics.backend.secretName" $ctx | quote }}
              key: {{ $ctx.Values.backend.auth.registrationSecretKey | quote }}
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
        - name: scripts
          mountPath: /opt/pganalytics-collector
          readOnly: true
  volumes:
    - name: state
      emptyDir:
        sizeLimit: {{ $c.state.sizeLimit | quote }}
    - name: config
      emptyDir:
        sizeLimit: 16Mi
    - name: tmp
      emptyDir:
        sizeLimit: 64Mi
    - name: scripts
      configMap:
        name: {{ printf "%s-scripts" (include "pganalytics.collector.fullname" $ctx) | quote }}
        defaultMode: 0555
{{- end -}}
