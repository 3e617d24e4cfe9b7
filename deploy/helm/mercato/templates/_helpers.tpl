{{/*
The chart's names, labels and the processes it runs (the same seven as
libs/mercato/topology.py; tests/deploy checks that they agree).
*/}}

{{- define "mercato.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "mercato.fullname" -}}
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

{{- define "mercato.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "mercato.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mercato.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "mercato.labels" -}}
helm.sh/chart: {{ include "mercato.chart" . }}
{{ include "mercato.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: mercato
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Labels of one process's objects: (dict "root" $ "process" $p) */}}
{{- define "mercato.processLabels" -}}
{{ include "mercato.labels" .root }}
app.kubernetes.io/component: {{ .process.component }}
{{- end }}

{{- define "mercato.processSelectorLabels" -}}
{{ include "mercato.selectorLabels" .root }}
app.kubernetes.io/component: {{ .process.component }}
{{- end }}

{{/*
The processes: nameko service name, its ops port (/healthz, /readyz, /metrics, served
apart from the worker pool: <PREFIX>_OPS_ADDRESS), the prefix of its own variables, and
whether it is the gateway, which also has its public HTTP API on httpPort.
*/}}
{{- define "mercato.processTable" -}}
catalog: {port: 9101, prefix: CATALOG}
orders: {port: 9102, prefix: ORDERS}
supervision: {port: 9103, prefix: SUPERVISION}
billing: {port: 9104, prefix: BILLING}
provisioning: {port: 9105, prefix: PROVISIONING}
iam_agency: {port: 9106, prefix: IAM_AGENCY}
gateway: {port: 9100, httpPort: 8000, prefix: GATEWAY, gateway: true}
{{- end }}

{{/* The process names in a fixed order, as a JSON list. */}}
{{- define "mercato.processNames" -}}
["catalog", "orders", "supervision", "billing", "provisioning", "iam_agency", "gateway"]
{{- end }}

{{/*
Everything about one process, as JSON: its table entry, `defaults` merged with
`processes.<name>`, its object name and component. (dict "root" $ "name" "orders")
*/}}
{{- define "mercato.process" -}}
{{- $root := .root }}
{{- $table := fromYaml (include "mercato.processTable" $root) }}
{{- $p := mergeOverwrite (deepCopy $root.Values.defaults) (deepCopy (index $root.Values.processes .name | default dict)) }}
{{- $_ := mergeOverwrite $p (index $table .name) }}
{{- $component := replace "_" "-" .name }}
{{- $_ := set $p "name" .name }}
{{- $_ := set $p "component" $component }}
{{- $_ := set $p "fullname" (printf "%s-%s" (include "mercato.fullname" $root) $component | trunc 63 | trimSuffix "-") }}
{{- $_ := set $p "portName" "ops" }}
{{- $_ := set $p "queue" (printf "rpc-%s" .name) }}
{{- toJson $p }}
{{- end }}

{{/* Every process, as a JSON list of what "mercato.process" gives. */}}
{{- define "mercato.processes" -}}
{{- $root := . }}
{{- $all := list }}
{{- range (include "mercato.processNames" . | fromJsonArray) }}
{{- $all = append $all (include "mercato.process" (dict "root" $root "name" .) | fromJson) }}
{{- end }}
{{- toJson $all }}
{{- end }}

{{- define "mercato.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "mercato.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "mercato.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret the chart keeps its values in, and its copy for the hooks. */}}
{{- define "mercato.secretName" -}}
{{- include "mercato.fullname" . }}
{{- end }}
{{- define "mercato.hookSecretName" -}}
{{- printf "%s-hooks" (include "mercato.fullname" . | trunc 57 | trimSuffix "-") }}
{{- end }}

{{/*
Where a secret value comes from, as JSON {name, key, value}: an existing Secret when
one is named, else the chart's own Secret (or its hook copy) under `defaultKey`.
(dict "root" $ "item" <{url|value, existingSecret, existingSecretKey}> "defaultKey" "ORDERS_DATABASE_URL" "hook" false)
*/}}
{{- define "mercato.secretSource" -}}
{{- $item := .item | default dict }}
{{- if $item.existingSecret }}
{{- toJson (dict "name" $item.existingSecret "key" (default .defaultKey $item.existingSecretKey) "value" "") }}
{{- else }}
{{- $name := ternary (include "mercato.hookSecretName" .root) (include "mercato.secretName" .root) (default false .hook) }}
{{- toJson (dict "name" $name "key" .defaultKey "value" (default "" (default $item.value $item.url))) }}
{{- end }}
{{- end }}

{{/*
The secret variables one process reads, as a JSON list of {env, name, key, value}.
(dict "root" $ "process" $p "hook" false)
*/}}
{{- define "mercato.processSecrets" -}}
{{- $root := .root }}
{{- $p := .process }}
{{- $hook := default false .hook }}
{{- $out := list }}
{{- $dbKey := printf "%s_DATABASE_URL" $p.prefix }}
{{- $db := include "mercato.secretSource" (dict "root" $root "item" $p.database "defaultKey" $dbKey "hook" $hook) | fromJson }}
{{- $out = append $out (merge (dict "env" $dbKey) $db) }}
{{- if not $hook }}
{{- $amqp := include "mercato.secretSource" (dict "root" $root "item" (dict "url" $root.Values.amqp.uri "existingSecret" $root.Values.amqp.existingSecret "existingSecretKey" $root.Values.amqp.existingSecretKey) "defaultKey" "AMQP_URI") | fromJson }}
{{- $out = append $out (merge (dict "env" "AMQP_URI") $amqp) }}
{{- /* every process signs and verifies the caller context with the same key */}}
{{- $contextKey := include "mercato.secretSource" (dict "root" $root "item" $root.Values.contextKey "defaultKey" "MERCATO_CONTEXT_KEY") | fromJson }}
{{- $out = append $out (merge (dict "env" "MERCATO_CONTEXT_KEY") $contextKey) }}
{{- if eq $p.name "provisioning" }}
{{- $keys := include "mercato.secretSource" (dict "root" $root "item" $p.credentialKeys "defaultKey" "PROVISIONING_CREDENTIAL_KEYS") | fromJson }}
{{- $out = append $out (merge (dict "env" "PROVISIONING_CREDENTIAL_KEYS") $keys) }}
{{- end }}
{{- if eq $p.name "gateway" }}
{{- $idem := include "mercato.secretSource" (dict "root" $root "item" $p.idempotencySecret "defaultKey" "GATEWAY_IDEMPOTENCY_SECRET") | fromJson }}
{{- $out = append $out (merge (dict "env" "GATEWAY_IDEMPOTENCY_SECRET") $idem) }}
{{- range $name, $env := dict "accessKeyId" "GATEWAY_OBJECT_STORE_ACCESS_KEY_ID" "secretAccessKey" "GATEWAY_OBJECT_STORE_SECRET_ACCESS_KEY" }}
{{- $item := index ($p.objectStore | default dict) $name | default dict }}
{{- if or $item.value $item.existingSecret }}
{{- $source := include "mercato.secretSource" (dict "root" $root "item" $item "defaultKey" $env) | fromJson }}
{{- $out = append $out (merge (dict "env" $env) $source) }}
{{- end }}
{{- end }}
{{- end }}
{{- if eq $p.name "iam_agency" }}
{{- /* Mercato's own cloud account's keys: iam-agency alone assumes the agencies */}}
{{- $account := $root.Values.cloud.mercatoAccount | default dict }}
{{- range $name, $env := dict "accessKey" "MERCATO_CLOUD_ACCESS_KEY" "secretKey" "MERCATO_CLOUD_SECRET_KEY" }}
{{- $item := index $account $name | default dict }}
{{- if or $item.value $item.existingSecret }}
{{- $source := include "mercato.secretSource" (dict "root" $root "item" $item "defaultKey" $env) | fromJson }}
{{- $out = append $out (merge (dict "env" $env) $source) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- toJson $out }}
{{- end }}

{{/*
The cloud's non-secret settings one process reads (only those set; an empty one leaves
the process's own default), as a JSON object of variable -> value: CLOUD_ENDPOINT and
CLOUD_REGION for iam-agency and provisioning, Mercato's own account's domain for
iam-agency. In these processes' env, not the ConfigMap every process reads.
(dict "root" $ "process" $p)
*/}}
{{- define "mercato.cloudEnv" -}}
{{- $cloud := .root.Values.cloud | default dict }}
{{- $account := $cloud.mercatoAccount | default dict }}
{{- $env := dict }}
{{- if has .process.name (list "iam_agency" "provisioning") }}
{{- with $cloud.endpoint }}{{ $_ := set $env "CLOUD_ENDPOINT" . }}{{ end }}
{{- with $cloud.region }}{{ $_ := set $env "CLOUD_REGION" . }}{{ end }}
{{- end }}
{{- if eq .process.name "iam_agency" }}
{{- with $account.domainId }}{{ $_ := set $env "MERCATO_CLOUD_DOMAIN_ID" . }}{{ end }}
{{- with $account.domainName }}{{ $_ := set $env "MERCATO_CLOUD_DOMAIN_NAME" . }}{{ end }}
{{- end }}
{{- toJson $env }}
{{- end }}

{{/*
The settings of the life after the purchase one process reads (docs/operations.md,
"After the purchase"), as a JSON object of variable -> value: orders' subscription
timeline, sweep and quotes (`subscriptions`), provisioning's instance actions
(`instanceActions`). Only those set (null leaves the process's own default); in these
processes' env, not the ConfigMap every process reads.
(dict "root" $ "process" $p)
*/}}
{{- define "mercato.afterPurchaseEnv" -}}
{{- $env := dict }}
{{- $names := dict }}
{{- if eq .process.name "orders" }}
{{- $names = dict "graceDays" "SUBSCRIPTION_GRACE_DAYS" "retentionDays" "SUBSCRIPTION_RETENTION_DAYS" "sweepSeconds" "SUBSCRIPTION_SWEEP_SECONDS" "renewalQuoteValidMinutes" "RENEWAL_QUOTE_VALID_MINUTES" "upgradeQuoteValidMinutes" "UPGRADE_QUOTE_VALID_MINUTES" }}
{{- range $key, $name := $names }}
{{- $value := index ($.root.Values.subscriptions | default dict) $key }}
{{- if not (kindIs "invalid" $value) }}{{ $_ := set $env $name (include "mercato.envValue" $value) }}{{ end }}
{{- end }}
{{- else if eq .process.name "provisioning" }}
{{- $names = dict "sweepSeconds" "INSTANCE_ACTION_SWEEP_SECONDS" "retrySeconds" "INSTANCE_ACTION_RETRY_SECONDS" "retryMaxSeconds" "INSTANCE_ACTION_RETRY_MAX_SECONDS" }}
{{- range $key, $name := $names }}
{{- $value := index ($.root.Values.instanceActions | default dict) $key }}
{{- if not (kindIs "invalid" $value) }}{{ $_ := set $env $name (include "mercato.envValue" $value) }}{{ end }}
{{- end }}
{{- end }}
{{- toJson $env }}
{{- end }}

{{/*
The secret variables of the hook Job that makes one subscriber's broker user, as
"mercato.processSecrets" gives them: the broker, the user's password and, when set,
the management API. (dict "root" $ "user" <eventSubscribers.users item>)
*/}}
{{- define "mercato.subscriberUserSecrets" -}}
{{- $root := .root }}
{{- $out := list (merge (dict "env" "AMQP_URI") (include "mercato.hookAmqpSource" $root | fromJson)) }}
{{- $password := include "mercato.secretSource" (dict "root" $root "item" .user.password "defaultKey" (printf "SUBSCRIBER_PASSWORD_%s" .user.name) "hook" true) | fromJson }}
{{- $out = append $out (merge (dict "env" "MERCATO_SUBSCRIBER_PASSWORD") $password) }}
{{- $management := $root.Values.eventSubscribers.managementUri | default dict }}
{{- if or $management.value $management.existingSecret }}
{{- $source := include "mercato.secretSource" (dict "root" $root "item" $management "defaultKey" "RABBITMQ_MANAGEMENT_URI" "hook" true) | fromJson }}
{{- $out = append $out (merge (dict "env" "RABBITMQ_MANAGEMENT_URI") $source) }}
{{- end }}
{{- toJson $out }}
{{- end }}

{{/* The AMQP URI's source for a hook Job. */}}
{{- define "mercato.hookAmqpSource" -}}
{{- include "mercato.secretSource" (dict "root" . "item" (dict "url" .Values.amqp.uri "existingSecret" .Values.amqp.existingSecret "existingSecretKey" .Values.amqp.existingSecretKey) "defaultKey" "AMQP_URI" "hook" true) }}
{{- end }}

{{/* env entries for secret sources: a list as "mercato.processSecrets" gives. */}}
{{- define "mercato.secretEnv" -}}
{{- range . }}
- name: {{ .env }}
  valueFrom:
    secretKeyRef:
      name: {{ .name }}
      key: {{ .key }}
{{- end }}
{{- end }}

{{/*
A value as an environment variable's text: a whole number as an integer (values
arrive as float64, and toString writes 1000000 as "1e+06"), anything else as toString.
*/}}
{{- define "mercato.envValue" -}}
{{- if and (kindIs "float64" .) (eq (float64 (int64 .)) .) }}
{{- int64 . | toString }}
{{- else }}
{{- toString . }}
{{- end }}
{{- end }}

{{/* The writable /tmp every container gets (the root filesystem is read-only). */}}
{{- define "mercato.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ . }}
{{- end }}

{{/*
The subscriber queues as the declaring command reads them (EVENT_SUBSCRIBER_QUEUES),
with `quorum` filled in from eventSubscribers.quorumByDefault where a queue says nothing.
*/}}
{{- define "mercato.subscriberQueues" -}}
{{- $queues := list }}
{{- range .Values.eventSubscribers.queues }}
{{- $q := deepCopy . }}
{{- if not (hasKey $q "quorum") }}
{{- $_ := set $q "quorum" $.Values.eventSubscribers.quorumByDefault }}
{{- end }}
{{- $queues = append $queues $q }}
{{- end }}
{{- toJson $queues }}
{{- end }}

{{/*
Checks that values.schema.json cannot express; rendering fails with every problem found.
*/}}
{{- define "mercato.validateValues" -}}
{{- $errors := list }}
{{- $v := .Values }}
{{- if not (or $v.amqp.uri $v.amqp.existingSecret) }}
{{- $errors = append $errors "amqp: set amqp.uri (amqp://user:password@host:5672/vhost) or amqp.existingSecret" }}
{{- end }}
{{- range (include "mercato.processes" . | fromJsonArray) }}
{{- $at := printf "processes.%s" .name }}
{{- $db := .database | default dict }}
{{- if not (or $db.url $db.existingSecret) }}
{{- $errors = append $errors (printf "%s.database: set url (postgresql://user:password@host:5432/%s) or existingSecret; each service needs its own database" $at .name) }}
{{- else if and $db.url (hasPrefix "sqlite" $db.url) }}
{{- $errors = append $errors (printf "%s.database.url: SQLite is a file inside one pod; use PostgreSQL (postgresql://...)" $at) }}
{{- end }}
{{- $hpa := and .autoscaling .autoscaling.enabled }}
{{- $keda := and .keda .keda.enabled }}
{{- if and $hpa $keda }}
{{- $errors = append $errors (printf "%s: keda.enabled and autoscaling.enabled both set; KEDA makes its own HorizontalPodAutoscaler, so enable one of them" $at) }}
{{- end }}
{{- if and $keda .gateway }}
{{- $errors = append $errors (printf "%s.keda.enabled: the gateway consumes no queue; scale it with autoscaling (CPU)" $at) }}
{{- end }}
{{- $minReplicas := int .replicas }}
{{- if $hpa }}
{{- $minReplicas = int .autoscaling.minReplicas }}
{{- if gt (int .autoscaling.minReplicas) (int .autoscaling.maxReplicas) }}
{{- $errors = append $errors (printf "%s.autoscaling: minReplicas %d is above maxReplicas %d" $at (int .autoscaling.minReplicas) (int .autoscaling.maxReplicas)) }}
{{- end }}
{{- else if $keda }}
{{- $minReplicas = int .keda.minReplicas }}
{{- if gt (int .keda.minReplicas) (int .keda.maxReplicas) }}
{{- $errors = append $errors (printf "%s.keda: minReplicas %d is above maxReplicas %d" $at (int .keda.minReplicas) (int .keda.maxReplicas)) }}
{{- end }}
{{- end }}
{{- if and .pdb .pdb.enabled }}
{{- /* a number (float64 from a values file, int64 from --set) or a percentage, which
Kubernetes rounds up: the budget must leave at least one replica free to evict */}}
{{- $min := .pdb.minAvailable }}
{{- if kindIs "string" $min }}
{{- $percent := trimSuffix "%" $min | atoi }}
{{- $needed := div (add (mul $percent $minReplicas) 99) 100 }}
{{- if and (gt $needed 0) (ge $needed $minReplicas) }}
{{- $errors = append $errors (printf "%s.pdb.minAvailable %s of %d replicas keeps all of them (%d), so no node running it could ever be drained; lower it or add replicas" $at $min $minReplicas $needed) }}
{{- end }}
{{- else if and (not (kindIs "invalid" $min)) (gt (int $min) 0) (ge (int $min) $minReplicas) }}
{{- $errors = append $errors (printf "%s.pdb.minAvailable %d needs at least %d replicas (it has %d), or no node running it could ever be drained" $at (int $min) (add1 (int $min)) $minReplicas) }}
{{- end }}
{{- end }}
{{- $needed := add (int .preStopSleepSeconds) (int $v.settings.rpcTimeoutSeconds) }}
{{- if le (int .terminationGracePeriodSeconds) $needed }}
{{- $errors = append $errors (printf "%s.terminationGracePeriodSeconds %d must exceed preStopSleepSeconds plus settings.rpcTimeoutSeconds (%d), or workers are killed mid-call" $at (int .terminationGracePeriodSeconds) $needed) }}
{{- end }}
{{- if eq .name "provisioning" }}
{{- $keys := .credentialKeys | default dict }}
{{- if not (or $keys.value $keys.existingSecret) }}
{{- $errors = append $errors (printf "%s.credentialKeys: set value (key_id:base64-of-32-bytes[,...]) or existingSecret; delivered credentials are encrypted with it" $at) }}
{{- else if and $keys.value (not (regexMatch "^[A-Za-z0-9_.-]{1,32}:[A-Za-z0-9+/]{43}=(,[A-Za-z0-9_.-]{1,32}:[A-Za-z0-9+/]{43}=)*$" $keys.value)) }}
{{- $errors = append $errors (printf "%s.credentialKeys.value: must be comma-separated key_id:base64-of-32-bytes (e.g. k2025:$(head -c32 /dev/urandom | base64)), the first one encrypting" $at) }}
{{- end }}
{{- end }}
{{- if .gateway }}
{{- $idem := .idempotencySecret | default dict }}
{{- if not (or $idem.value $idem.existingSecret) }}
{{- $errors = append $errors (printf "%s.idempotencySecret: set value (a random string of 32 characters or more) or existingSecret" $at) }}
{{- else if and $idem.value (lt (len $idem.value) 32) }}
{{- $errors = append $errors (printf "%s.idempotencySecret.value: use at least 32 random characters" $at) }}
{{- end }}
{{- $store := .objectStore | default dict }}
{{- if not $store.bucket }}
{{- $errors = append $errors (printf "%s.objectStore.bucket: name the bucket of an S3-compatible store that keeps attachments (and its endpointUrl unless it is AWS S3)" $at) }}
{{- end }}
{{- $keyId := $store.accessKeyId | default dict }}
{{- $keySecret := $store.secretAccessKey | default dict }}
{{- if ne (not (or $keyId.value $keyId.existingSecret)) (not (or $keySecret.value $keySecret.existingSecret)) }}
{{- $errors = append $errors (printf "%s.objectStore: set both accessKeyId and secretAccessKey, or neither (boto3 then finds credentials itself)" $at) }}
{{- end }}
{{- end }}
{{- end }}
{{- $account := $v.cloud.mercatoAccount | default dict }}
{{- $accessKey := $account.accessKey | default dict }}
{{- $secretKey := $account.secretKey | default dict }}
{{- $hasAccessKey := or $accessKey.value $accessKey.existingSecret }}
{{- $hasSecretKey := or $secretKey.value $secretKey.existingSecret }}
{{- if ne (not $hasAccessKey) (not $hasSecretKey) }}
{{- $errors = append $errors "cloud.mercatoAccount: set both accessKey and secretKey, or neither" }}
{{- else if and $hasAccessKey (not (and $account.domainId $account.domainName)) }}
{{- $errors = append $errors "cloud.mercatoAccount: with its keys, set domainId and domainName too (buyers' mkp_agency_trust trusts the account by its domain name; iam-agency assumes agencies with its domain id)" }}
{{- end }}
{{- if $v.ingress.enabled }}
{{- if not $v.ingress.hosts }}
{{- $errors = append $errors "ingress.enabled: name at least one host in ingress.hosts" }}
{{- end }}
{{- range $v.ingress.hosts }}
{{- if not .host }}
{{- $errors = append $errors "ingress.hosts: every entry needs a host" }}
{{- end }}
{{- end }}
{{- end }}
{{- $contextKey := $v.contextKey | default dict }}
{{- if not (or $contextKey.value $contextKey.existingSecret) }}
{{- $errors = append $errors "contextKey: set value (32 random characters or more: head -c32 /dev/urandom | base64) or existingSecret; every process signs and verifies who is calling with it" }}
{{- else if $contextKey.value }}
{{- range (splitList "," $contextKey.value) }}
{{- if lt (len (trim .)) 32 }}
{{- $errors = append $errors "contextKey.value: each comma-separated key needs at least 32 random characters" }}
{{- end }}
{{- end }}
{{- end }}
{{- $subscriberNames := list }}
{{- range $v.eventSubscribers.users }}
{{- $password := .password | default dict }}
{{- if not (or $password.value $password.existingSecret) }}
{{- $errors = append $errors (printf "eventSubscribers.users: %s needs a password (value, or existingSecret the subscriber's team also reads)" .name) }}
{{- else if and $password.value (lt (len $password.value) 16) }}
{{- $errors = append $errors (printf "eventSubscribers.users: %s's password needs at least 16 characters" .name) }}
{{- end }}
{{- if has .name $subscriberNames }}
{{- $errors = append $errors (printf "eventSubscribers.users: %s is listed twice" .name) }}
{{- end }}
{{- $subscriberNames = append $subscriberNames .name }}
{{- end }}
{{- range $v.eventSubscribers.queues }}
{{- if not .bindings }}
{{- $errors = append $errors (printf "eventSubscribers.queues: %s has no bindings, so it would never receive an event" .queue) }}
{{- end }}
{{- end }}
{{- if $errors }}
{{- fail (printf "\n\nmercato: invalid values:\n  - %s\n" (join "\n  - " $errors)) }}
{{- end }}
{{- end }}
