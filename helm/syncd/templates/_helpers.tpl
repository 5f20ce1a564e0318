{{/* Names, labels and the rendered syncd config. */}}

{{- define "syncd.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "syncd.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "syncd.selectorLabels" -}}
app.kubernetes.io/name: {{ include "syncd.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "syncd.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "syncd.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: {{ .Values.mode }}
{{- end -}}

{{- define "syncd.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "syncd.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "syncd.leaseName" -}}
{{- default (include "syncd.fullname" .) .Values.leaderElection.leaseName -}}
{{- end -}}

{{/* "true" when config.policy.mirror.enabled: the mirror writes to Nodes and needs RBAC. */}}
{{- define "syncd.mirror" -}}
{{- $policy := get (.Values.config | default dict) "policy" | default dict -}}
{{- $mirror := get $policy "mirror" | default dict -}}
{{- if eq (toString (get $mirror "enabled")) "true" -}}true{{- else -}}false{{- end -}}
{{- end -}}

{{- define "syncd.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/*
The projected sources of /etc/slurm (standalone): slurm.etc's, then the named Slinky objects.
Empty when there is nothing to mount.
*/}}
{{- define "syncd.slurmEtc" -}}
{{- $slinky := .Values.slurm.slinky -}}
{{- $maps := concat .Values.slurm.etc.configMaps (ternary (list $slinky.configMap) list (ne $slinky.configMap "")) -}}
{{- $secrets := .Values.slurm.etc.secrets -}}
{{- if $slinky.slurmKeySecret -}}
{{- $secrets = append $secrets (dict "name" $slinky.slurmKeySecret "key" $slinky.slurmKeyKey "path" "slurm.key") -}}
{{- end -}}
{{- range $maps }}
- configMap:
    name: {{ . }}
{{- end }}
{{- range $secrets }}
- secret:
    name: {{ .name }}
    items:
      - key: {{ .key }}
        path: {{ default .key .path }}
{{- end }}
{{- end -}}

{{/*
The syncd config file: .Values.config, plus what the chart owns. Keys the chart owns are
refused when set in .Values.config, so a value can never be silently replaced.
*/}}
{{- define "syncd.config" -}}
{{- $cfg := deepCopy (.Values.config | default dict) -}}
{{- $daemon := get $cfg "daemon" | default dict -}}
{{- range $key := list "listen" "state_dir" -}}
{{- if hasKey $daemon $key -}}
{{- fail (printf "config.daemon.%s is set by the chart; remove it from config (the port is .Values.port)" $key) -}}
{{- end -}}
{{- end -}}
{{- with get $daemon "operator_socket" -}}
{{- if not (hasPrefix "/var/lib/syncd/" .) -}}
{{- fail "config.daemon.operator_socket must be in the state dir /var/lib/syncd (the only writable place in the pod, and where `kubectl exec ... -- syncd status` looks)" -}}
{{- end -}}
{{- end -}}
{{- $election := get $daemon "leader_election" | default dict -}}
{{- range $key := list "lease_namespace" "lease_name" -}}
{{- if hasKey $election $key -}}
{{- fail (printf "config.daemon.leader_election.%s is set by the chart; use .Values.leaderElection.leaseName (the namespace is the release namespace)" $key) -}}
{{- end -}}
{{- end -}}
{{- if and (eq .Values.mode "standalone") (gt (int .Values.replicas) 1) (eq (toString (get $election "enabled")) "false") -}}
{{- fail "replicas above 1 need config.daemon.leader_election.enabled: two writers must never run at once" -}}
{{- end -}}
{{- $defaults := dict -}}
{{- if .Values.slurm.confPath -}}
{{- $_ := set $defaults "slurm" (dict "conf" .Values.slurm.confPath) -}}
{{- end -}}
{{- $owned := dict "daemon" (dict
      "listen" (printf "0.0.0.0:%d" (int .Values.port))
      "state_dir" "/var/lib/syncd"
      "leader_election" (dict
        "lease_namespace" .Release.Namespace
        "lease_name" (include "syncd.leaseName" .))) -}}
{{- $_ := merge $cfg $defaults -}}
{{- $_ := mergeOverwrite $cfg $owned -}}
{{- toYaml $cfg -}}
{{- end -}}
