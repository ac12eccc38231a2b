{{/* Names, labels and the pieces every control-plane pod shares. */}}

{{- define "backlot.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "backlot.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "backlot.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Standard labels; call with (dict "root" $ "component" "api"). */}}
{{- define "backlot.labels" -}}
helm.sh/chart: {{ include "backlot.chart" .root }}
{{ include "backlot.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: backlot
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "backlot.selectorLabels" -}}
app.kubernetes.io/name: {{ include "backlot.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- if .component }}
app.kubernetes.io/component: {{ .component }}
{{- end }}
{{- end -}}

{{- define "backlot.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "backlot.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "backlot.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{- printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{- define "backlot.secretName" -}}
{{- required "existingSecret.name is required: the Secret with the database, broker, secret-key and tenant-database URLs" .Values.existingSecret.name -}}
{{- end -}}

{{/*
The BACKLOT_* settings that are not secret, as a flat map (README.md, "Configuration").
The ConfigMap holds them for the Deployments; the migrations hook Job, which runs before the
ConfigMap exists, gets the same map as literal env entries.
*/}}
{{- define "backlot.config" -}}
{{- $c := .Values.config -}}
BACKLOT_ENV: production
BACKLOT_RUNTIME_DRIVER: kubernetes
BACKLOT_PUBLIC_URL: {{ $c.publicUrl | quote }}
BACKLOT_BASE_DOMAIN: {{ $c.baseDomain | quote }}
BACKLOT_RUNTIME_RELEASE: {{ $c.runtimeRelease | quote }}
BACKLOT_DATA_DIR: /var/lib/backlot
BACKLOT_PORT: {{ .Values.api.port | quote }}
BACKLOT_LOG_FORMAT: json
BACKLOT_LOG_LEVEL: {{ $c.logLevel | quote }}
BACKLOT_DELETION_RETENTION_SECONDS: {{ $c.deletionRetentionSeconds | int64 | quote }}
BACKLOT_RESYNC_INTERVAL_SECONDS: {{ $c.resyncIntervalSeconds | int64 | quote }}
BACKLOT_KUBE_RUNTIME_IMAGE: {{ $c.kube.runtimeImage | quote }}
BACKLOT_KUBE_IMAGE_PULL_POLICY: {{ $c.kube.imagePullPolicy | quote }}
BACKLOT_KUBE_INGRESS_CLASS: {{ $c.kube.ingressClass | quote }}
BACKLOT_KUBE_INGRESS_NAMESPACE: {{ $c.kube.ingressNamespace | quote }}
BACKLOT_KUBE_CONTROL_PLANE_NAMESPACE: {{ default .Release.Namespace $c.kube.controlPlaneNamespace | quote }}
BACKLOT_KUBE_CONTROL_PLANE_SERVICE: {{ printf "%s-api" (include "backlot.fullname" .) | quote }}
BACKLOT_KUBE_CONTROL_PLANE_SERVICE_PORT: {{ .Values.service.port | quote }}
BACKLOT_KUBE_CLUSTER_ISSUER: {{ $c.kube.clusterIssuer | quote }}
BACKLOT_KUBE_DATABASE_CIDR: {{ $c.kube.databaseCidr | quote }}
BACKLOT_KUBE_POD_SECURITY_VERSION: {{ $c.kube.podSecurityVersion | quote }}
BACKLOT_KUBE_TOLERATIONS: {{ toJson $c.kube.tolerations | quote }}
BACKLOT_KUBE_NODE_SELECTOR: {{ toJson $c.kube.nodeSelector | quote }}
{{- with $c.tenantDatabaseHost }}
BACKLOT_TENANT_DATABASE_HOST: {{ . | quote }}
{{- end }}
{{- range $name, $value := $c.extraEnv }}
{{ $name }}: {{ $value | quote }}
{{- end }}
{{- end -}}

{{/* The four secrets, by reference only. */}}
{{- define "backlot.secretEnv" -}}
{{- $name := include "backlot.secretName" . -}}
{{- $keys := .Values.existingSecret.keys -}}
- name: BACKLOT_DATABASE_URL
  valueFrom:
    secretKeyRef: {name: {{ $name }}, key: {{ $keys.databaseUrl }}}
- name: BACKLOT_BROKER_URL
  valueFrom:
    secretKeyRef: {name: {{ $name }}, key: {{ $keys.brokerUrl }}}
- name: BACKLOT_SECRET_KEY
  valueFrom:
    secretKeyRef: {name: {{ $name }}, key: {{ $keys.secretKey }}}
- name: BACKLOT_TENANT_DATABASE_ADMIN_URL
  valueFrom:
    secretKeyRef: {name: {{ $name }}, key: {{ $keys.tenantDatabaseAdminUrl }}}
{{- end -}}

{{/* Settings for a Deployment container: the ConfigMap plus the secret references. */}}
{{- define "backlot.containerEnv" -}}
envFrom:
  - configMapRef:
      name: {{ include "backlot.fullname" . }}
env:
{{ include "backlot.secretEnv" . | indent 2 }}
{{- end -}}

{{/* Pod-level fields every control-plane pod shares. */}}
{{- define "backlot.podSpecCommon" -}}
securityContext:
{{ toYaml .Values.podSecurityContext | indent 2 }}
enableServiceLinks: false
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
{{ toYaml . | indent 2 }}
{{- end }}
{{- with .Values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
{{ toYaml . | indent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
{{ toYaml . | indent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
{{ toYaml . | indent 2 }}
{{- end }}
{{- end -}}

{{/* The root filesystem is read-only: /tmp and the data dir are emptyDirs. */}}
{{- define "backlot.volumes" -}}
volumes:
  - name: tmp
    emptyDir: {sizeLimit: {{ .Values.scratchSizeLimit }}}
  - name: data
    emptyDir: {sizeLimit: {{ .Values.scratchSizeLimit }}}
{{- end -}}

{{- define "backlot.volumeMounts" -}}
volumeMounts:
  - {name: tmp, mountPath: /tmp}
  - {name: data, mountPath: /var/lib/backlot}
{{- end -}}

{{/* Pod annotations: a config checksum so a settings change rolls the pods. */}}
{{- define "backlot.podAnnotations" -}}
checksum/config: {{ include "backlot.config" . | sha256sum }}
{{- with .Values.podAnnotations }}
{{ toYaml . }}
{{- end }}
{{- end -}}
