{{/*
Chart name.
*/}}
{{- define "feature-store.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Fully qualified app name: <release>-feature-store (at most 63 characters), or the release name alone
when it already contains the chart name.
*/}}
{{- define "feature-store.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/*
Name of one component's objects: <fullname>-<component>. The fullname is shortened first, so the
result stays within 63 characters and the components never collide.
Call with (dict "root" $ "component" "serving").
*/}}
{{- define "feature-store.componentName" -}}
{{- $base := include "feature-store.fullname" .root | trunc (int (sub 62 (len .component))) | trimSuffix "-" -}}
{{- printf "%s-%s" $base .component -}}
{{- end -}}

{{/*
helm.sh/chart label value.
*/}}
{{- define "feature-store.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Selector labels of one component (stable across upgrades: never add to these).
Call with (dict "root" $ "component" "serving").
*/}}
{{- define "feature-store.selectorLabels" -}}
app.kubernetes.io/name: {{ include "feature-store.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/*
Standard labels of one component's objects.
Call with (dict "root" $ "component" "serving").
*/}}
{{- define "feature-store.labels" -}}
helm.sh/chart: {{ include "feature-store.chart" .root }}
{{ include "feature-store.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: {{ include "feature-store.name" .root }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- end -}}

{{/*
Labels every object of the release carries (selects the three Services for the ServiceMonitor).
*/}}
{{- define "feature-store.instanceLabels" -}}
app.kubernetes.io/name: {{ include "feature-store.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/*
Image reference: repository:tag (tag defaults to appVersion), or repository@sha256:... for a digest.
*/}}
{{- define "feature-store.image" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion | toString -}}
{{- if hasPrefix "sha256:" $tag -}}
{{- printf "%s@%s" .Values.image.repository $tag -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/*
Checksum of the data of an existing Secret, for a pod annotation: a `helm upgrade` after the Secret
changed rolls the pods that read it through env (env is only read at start). Uses `lookup`, so it is
empty with `helm template` / --dry-run (GitOps tools): there, restart pods yourself after a change.
Call with (dict "root" $ "name" "secret-name").
*/}}
{{- define "feature-store.secretChecksum" -}}
{{- $secret := lookup "v1" "Secret" .root.Release.Namespace .name -}}
{{- $secret.data | default dict | toJson | sha256sum -}}
{{- end -}}

{{/*
Pod-level settings shared by every component: pull secrets, security context, scheduling.
Call with (dict "root" $ "values" .Values.<component>).
*/}}
{{/*
The image pull Secret names, comma-separated, for the operator to put on consumer pods.
*/}}
{{- define "feature-store.pullSecretNames" -}}
{{- $names := list }}
{{- range .Values.imagePullSecrets }}{{ $names = append $names .name }}{{ end }}
{{- join "," $names }}
{{- end -}}

{{- define "feature-store.podScheduling" -}}
{{- with .root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .root.Values.podSecurityContext | nindent 2 }}
{{- with .values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/*
Probes shared by every component, on the container port named `http`: /healthz says the process
lives (liveness), /readyz that its dependencies answer (readiness). The startup probe gives the
process time to connect (the operator migrates the database, ingest connects to Kafka, before they
listen) before liveness counts.
*/}}
{{- define "feature-store.probes" -}}
startupProbe:
  httpGet:
    path: /healthz
    port: http
  periodSeconds: 5
  timeoutSeconds: 3
  failureThreshold: 36
livenessProbe:
  httpGet:
    path: /healthz
    port: http
  periodSeconds: 10
  timeoutSeconds: 3
  failureThreshold: 6
readinessProbe:
  httpGet:
    path: /readyz
    port: http
  periodSeconds: 5
  timeoutSeconds: 3
  failureThreshold: 2
{{- end -}}

{{/*
Volume mounts and volumes: /tmp (the only writable path), and the auth tokens when `auth` is given
and enabled. Call with (dict "auth" .Values.auth), or (dict "auth" (dict)) for no auth.
*/}}
{{- define "feature-store.volumeMounts" -}}
volumeMounts:
  - name: tmp
    mountPath: /tmp
{{- if .auth.enabled }}
  - name: auth-tokens
    mountPath: /etc/feature-store/auth
    readOnly: true
{{- end }}
{{- end -}}

{{- define "feature-store.volumes" -}}
volumes:
  - name: tmp
    emptyDir:
      sizeLimit: 64Mi
{{- if .auth.enabled }}
  # Whole-volume mount (no subPath), so a changed Secret reaches the running pods; the services
  # re-read the file when it changes.
  - name: auth-tokens
    secret:
      secretName: {{ .auth.existingSecret }}
      defaultMode: 0444
      items:
        - key: {{ .auth.tokensKey }}
          path: {{ .auth.tokensKey }}
{{- end }}
{{- end -}}

{{/*
Checks the schema cannot express.
*/}}
{{- define "feature-store.validate" -}}
{{- if not (has .Values.ingest.defaultTopic .Values.ingest.topics) -}}
{{- fail (printf "ingest.defaultTopic %q must be one of ingest.topics %v" .Values.ingest.defaultTopic .Values.ingest.topics) -}}
{{- end -}}
{{- range $component := list "ingest" "serving" -}}
{{- $a := (index $.Values $component).autoscaling -}}
{{- if and $a.enabled (gt (int $a.minReplicas) (int $a.maxReplicas)) -}}
{{- fail (printf "%s.autoscaling.minReplicas (%d) must not exceed %s.autoscaling.maxReplicas (%d)" $component (int $a.minReplicas) $component (int $a.maxReplicas)) -}}
{{- end -}}
{{- end -}}
{{- end -}}
