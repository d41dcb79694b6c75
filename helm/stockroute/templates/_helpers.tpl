{{/* The chart's name, and the release's full name (63 characters at most, as DNS wants). */}}
{{- define "stockroute.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "stockroute.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "stockroute.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "stockroute.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "stockroute.selectorLabels" -}}
app.kubernetes.io/name: {{ include "stockroute.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "stockroute.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "stockroute.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Whether more than one pod may run: several replicas or an autoscaler. */}}
{{- define "stockroute.multiReplica" -}}
{{- if or (gt (int .Values.replicaCount) 1) .Values.autoscaling.enabled }}true{{ end }}
{{- end }}

{{/* Refuses values that would deploy something broken, with a message saying what to change. */}}
{{- define "stockroute.validate" -}}
{{- if and (include "stockroute.multiReplica" .) (ne .Values.ledger.mode "postgres") }}
{{- fail "more than one replica (replicaCount > 1 or autoscaling.enabled) needs ledger.mode=postgres: the embedded ledger lives on one volume" }}
{{- end }}
{{- if not (has .Values.ledger.mode (list "embedded" "postgres")) }}
{{- fail "ledger.mode must be embedded or postgres" }}
{{- end }}
{{- if and (eq .Values.ledger.mode "postgres") (not .Values.ledger.postgres.urlSecret.name) }}
{{- fail "ledger.mode=postgres needs ledger.postgres.urlSecret.name: a Secret holding the connection string" }}
{{- end }}
{{- if not (has .Values.auth.mode (list "api_keys" "off")) }}
{{- fail "auth.mode must be api_keys or off" }}
{{- end }}
{{- if and (eq .Values.auth.mode "api_keys") (not .Values.auth.existingSecret) }}
{{- fail "auth.mode=api_keys needs auth.existingSecret: a Secret holding the keys file (see docs/security.md), or set auth.mode=off to serve without authentication" }}
{{- end }}
{{- if and .Values.tls.enabled (not .Values.tls.existingSecret) }}
{{- fail "tls.enabled needs tls.existingSecret: a kubernetes.io/tls Secret" }}
{{- end }}
{{- range $name, $c := dict "fedex" .Values.carriers.fedex "ups" .Values.carriers.ups }}
{{- if and $c.enabled (not $c.secretName) }}
{{- fail (printf "carriers.%s.enabled needs carriers.%s.secretName: the Secret holding its client secret" $name $name) }}
{{- end }}
{{- end }}
{{- end }}

{{/* A TOML string literal. */}}
{{- define "stockroute.tomlString" -}}
{{- . | toString | toJson }}
{{- end }}

{{/* The config's checksum, so that a changed ConfigMap rolls the pods. */}}
{{- define "stockroute.configChecksum" -}}
{{- include (print $.Template.BasePath "/configmap.yaml") . | sha256sum }}
{{- end }}
