{{/* Labels on every object of the release. */}}
{{- define "sluice.labels" -}}
app.kubernetes.io/part-of: sluice
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version | replace "+" "_" }}
{{- end }}

{{/* The labels that select sluice's pods (Services, PDB, Deployment, anti-affinity). */}}
{{- define "sluice.selectorLabels" -}}
app.kubernetes.io/name: sluice
app.kubernetes.io/instance: sluice
{{- end }}

{{- define "sluice.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/* Secret and key that hold the Postgres URL. */}}
{{- define "sluice.databaseSecret" -}}
{{- if .Values.postgres.existingSecret }}{{ .Values.postgres.existingSecret }}{{ else }}sluice-store{{ end }}
{{- end }}
{{- define "sluice.redisSecret" -}}
{{- if .Values.redis.existingSecret }}{{ .Values.redis.existingSecret }}{{ else }}sluice-store{{ end }}
{{- end }}

{{/* The Secret whose ca.crt is the client CA sluice trusts (clientAuth). */}}
{{- define "sluice.clientCaSecret" -}}
{{- .Values.clientAuth.existingSecret | default "sluice-scheduler-client" }}
{{- end }}
{{/* Where sluice reads the client CA: the clientAuth Secret's ca.crt, mounted alone. */}}
{{- define "sluice.clientCaDir" -}}/etc/sluice/client-ca{{- end }}

{{/* sluice's configuration file (docs/configuration.md). */}}
{{- define "sluice.config" -}}
{{- $base := dict
  "gpuResources" .Values.gpuResources
  "defaultPolicy" .Values.defaultPolicy
  "logLevel" .Values.logLevel
  "scheduler" (dict "filterBest" (int .Values.scheduler.filterBest))
  "https" (dict "port" 9443)
  "http" (dict "port" 8080)
  "webhooks" (dict "serviceAccount" (printf "system:serviceaccount:%s:sluice" .Release.Namespace))
  "certs" (dict
    "selfProvision" .Values.tls.selfProvision
    "namespace" .Release.Namespace
    "service" "sluice"
    "secretName" "sluice-webhook-tls"
    "webhookConfigName" "sluice"
    "extraDns" (list "sluice-extender" (printf "sluice-extender.%s" .Release.Namespace) (printf "sluice-extender.%s.svc" .Release.Namespace) (printf "sluice-extender.%s.svc.cluster.local" .Release.Namespace)))
-}}
{{- if not .Values.tls.selfProvision }}
{{- $_ := set $base.https "certFile" "/etc/sluice/tls/tls.crt" }}
{{- $_ := set $base.https "keyFile" "/etc/sluice/tls/tls.key" }}
{{- end }}
{{- if .Values.clientAuth.enabled }}
{{- $_ := set $base.https "clientCaFile" (printf "%s/ca.crt" (include "sluice.clientCaDir" .)) }}
{{- $_ := set $base.https "requireClientCert" (ternary (list "extender" "webhooks") (list "extender") .Values.clientAuth.requireForWebhooks) }}
{{- end }}
{{- toYaml (mustMergeOverwrite $base .Values.config) }}
{{- end }}
