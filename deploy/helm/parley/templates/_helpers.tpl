{{- define "parley.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "parley.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "parley.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "parley.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "parley.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "parley.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Selector labels of one role: include "parley.selector" (list . "web") */}}
{{- define "parley.selector" -}}
app.kubernetes.io/name: {{ include "parley.name" (index . 0) }}
app.kubernetes.io/instance: {{ (index . 0).Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "parley.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "parley.secretName" -}}
{{- if .Values.existingSecret -}}
{{- .Values.existingSecret -}}
{{- else -}}
{{- include "parley.fullname" . -}}-env
{{- end -}}
{{- end -}}

{{/* Where every Parley container gets its settings: the Secret, the ConfigMap, the bundled services. */}}
{{- define "parley.envFrom" -}}
- secretRef:
    name: {{ include "parley.secretName" . }}
{{- if .Values.env }}
- configMapRef:
    name: {{ include "parley.fullname" . }}-config
{{- end }}
{{- end -}}

{{- define "parley.bundledEnv" -}}
{{- if .Values.postgresql.enabled }}
- name: PARLEY_BUNDLED_DB_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "parley.fullname" . }}-postgresql
      key: password
- name: DATABASE_URL
  value: postgres://{{ .Values.postgresql.user }}:$(PARLEY_BUNDLED_DB_PASSWORD)@{{ include "parley.fullname" . }}-postgresql:5432/{{ .Values.postgresql.database }}
{{- end }}
{{- if .Values.redis.enabled }}
- name: REDIS_URL
  value: redis://{{ include "parley.fullname" . }}-redis:6379/0
{{- end }}
{{- end -}}

{{- define "parley.podSpec" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{- define "parley.checks" -}}
{{- if not .Values.existingSecret -}}
{{- if not (and .Values.secrets.SECRET_KEY .Values.secrets.PARLEY_ENCRYPTION_KEYS) -}}
{{- fail "Set existingSecret to a Secret with Parley's settings, or secrets.SECRET_KEY and secrets.PARLEY_ENCRYPTION_KEYS (see deploy/parley.env.example)" -}}
{{- end -}}
{{- end -}}
{{- if and .Values.postgresql.enabled (not .Values.postgresql.password) -}}
{{- fail "postgresql.enabled needs postgresql.password" -}}
{{- end -}}
{{- end -}}
