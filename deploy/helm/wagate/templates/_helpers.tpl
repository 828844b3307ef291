{{/* Names and labels of the wagate chart. Only Go template built-ins and include, toYaml,
nindent, quote, default, trunc and trimSuffix are used (deploy's Go test renders the chart). */}}

{{- define "wagate.fullname" -}}
{{- trunc 63 (trimSuffix "-" (printf "%s-%s" .Release.Name .Chart.Name)) -}}
{{- end -}}

{{- define "wagate.headless" -}}
{{- trunc 63 (printf "%s-members" (include "wagate.fullname" .)) -}}
{{- end -}}

{{- define "wagate.secretName" -}}
{{- if .Values.secrets.existingSecret -}}
{{- .Values.secrets.existingSecret -}}
{{- else -}}
{{- include "wagate.fullname" . -}}
{{- end -}}
{{- end -}}

{{- define "wagate.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "wagate.labels" -}}
{{ include "wagate.selectorLabels" . }}
app.kubernetes.io/version: {{ quote .Chart.AppVersion }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}
