#!/usr/bin/env bash
# Brings the real local stack up or down on loopback: Apache Kafka (KRaft, single node,
# started with java) and ClickHouse (served by `hubwatch clickhouse serve` from chdb-core);
# when named, also Prometheus with hubwatch's operator rules (deploy/prometheus) and
# Alertmanager, from Debian's packages (`up` without a part starts Kafka and ClickHouse).
#
#   deploy/stack.sh up | down | status [kafka|clickhouse|prometheus|alertmanager]
#
# Settings (environment): STACK_DIR (.stack), KAFKA_PORT (9092), KAFKA_CONTROLLER_PORT
# (9093), CLICKHOUSE_HTTP_PORT (8123), CLICKHOUSE_TCP_PORT (9000), VENV (.venv),
# CLICKHOUSE_TZ (the server's time zone; default: this shell's).
# Prometheus: PROMETHEUS_PORT (9090), PROMETHEUS_TARGETS (hubwatch `--metrics-port`
# addresses to scrape, comma-separated; 127.0.0.1:9464), PROMETHEUS_SCRAPE_INTERVAL and
# PROMETHEUS_EVALUATION_INTERVAL (15s), PROMETHEUS_RULES (deploy/prometheus/hubwatch-rules.yml);
# it sends alerts to the Alertmanager on ALERTMANAGER_PORT (9095: 9093 is Kafka's
# controller here). Alertmanager: ALERTMANAGER_WEBHOOK_URL (where alerts go; unset: they
# stay in Alertmanager), ALERTMANAGER_GROUP_WAIT (30s), ALERTMANAGER_GROUP_INTERVAL (5m),
# ALERTMANAGER_REPEAT_INTERVAL (4h). Their configuration is written under STACK_DIR.
# `up` waits until each part really answers and is a no-op for parts already up. A part's
# previous log is kept (kafka.log.1 … .5, likewise clickhouse.log): after a crash, the log
# that says why survives the restart.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
stack_dir=$(mkdir -p "${STACK_DIR:-.stack}" && cd "${STACK_DIR:-.stack}" && pwd)
kafka_port=${KAFKA_PORT:-9092}
controller_port=${KAFKA_CONTROLLER_PORT:-9093}
ch_http=${CLICKHOUSE_HTTP_PORT:-8123}
ch_tcp=${CLICKHOUSE_TCP_PORT:-9000}
venv=${VENV:-.venv}
prom_port=${PROMETHEUS_PORT:-9090}
am_port=${ALERTMANAGER_PORT:-9095}
libs="$root/deploy/kafka/libs"

say() { printf '==> %s\n' "$*"; }
now() { echo $(( $(date +%s%N) / 1000000 )); }  # milliseconds
secs() { printf '%d.%d' $(( $1 / 1000 )) $(( $1 % 1000 / 100 )); }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
kafka_ready() { kcat -b "127.0.0.1:$kafka_port" -L -m 2 >/dev/null 2>&1; }
ch_ready() { [ "$(curl -fsS -m 2 "http://127.0.0.1:$ch_http/ping" 2>/dev/null)" = "Ok." ]; }
prom_ready() { curl -fsS -m 2 "http://127.0.0.1:$prom_port/-/ready" >/dev/null 2>&1; }
am_ready() { curl -fsS -m 2 "http://127.0.0.1:$am_port/-/ready" >/dev/null 2>&1; }
binary() {  # the first of these commands on PATH
  local name
  for name in "$@"; do command -v "$name" && return 0; done
  echo "none of $* is installed: run deploy/install.sh" >&2; return 1
}

rotate() {  # log: keep the last five runs' logs
  local log=$1 i
  [ -s "$log" ] || return 0
  for i in 4 3 2 1; do [ -f "$log.$i" ] && mv -f "$log.$i" "$log.$((i + 1))"; done
  mv -f "$log" "$log.1"
}

wait_for() {  # what, check, pidfile, log, seconds
  local what=$1 check=$2 pidfile=$3 log=$4 limit=$5 start; start=$(now)
  until $check; do
    if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
      echo "$what exited during startup; last lines of $log:" >&2; tail -20 "$log" >&2; return 1
    fi
    if (( $(now) - start > limit * 1000 )); then
      echo "$what did not answer within ${limit}s; see $log" >&2; return 1
    fi
    sleep 0.2
  done
  say "$what ready in $(secs $(( $(now) - start )))s"
}

kafka_up() {
  if kafka_ready; then say "Kafka already answers on 127.0.0.1:$kafka_port"; return; fi
  port_open "$kafka_port" && { echo "port $kafka_port is taken by something else" >&2; exit 1; }
  compgen -G "$libs/kafka_2.13-*.jar" >/dev/null || { echo "no Kafka jars: run deploy/install.sh" >&2; exit 1; }
  local dir="$stack_dir/kafka"; mkdir -p "$dir/data"
  local max_record  # one number for broker, topics and producer: hubwatch.events.MAX_RECORD_BYTES
  max_record=$("$venv/bin/python" -c 'from hubwatch.events import MAX_RECORD_BYTES; print(MAX_RECORD_BYTES)') \
    || { echo "cannot read MAX_RECORD_BYTES from hubwatch (is $venv installed?)" >&2; exit 1; }
  sed -e "s#@KAFKA_PORT@#$kafka_port#g" -e "s#@CONTROLLER_PORT@#$controller_port#g" \
      -e "s#@DATA_DIR@#$dir/data#g" -e "s#@MAX_RECORD_BYTES@#$max_record#g" \
      deploy/kafka/server.properties.in > "$dir/server.properties"
  local java_opts=(-Xms256m -Xmx768m -Dlog4j.configuration="file:$root/deploy/kafka/log4j.properties")
  if [ ! -f "$dir/data/meta.properties" ]; then
    say "formatting Kafka storage in $dir/data"
    java "${java_opts[@]}" -cp "$libs/*" kafka.tools.StorageTool format --ignore-formatted \
      -t "$(java -cp "$libs/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -1)" \
      -c "$dir/server.properties" > "$dir/format.log" 2>&1
  fi
  say "starting Kafka $(basename "$libs"/kafka_2.13-*.jar .jar | sed 's/kafka_2.13-//') (KRaft) on 127.0.0.1:$kafka_port"
  rotate "$dir/kafka.log"
  nohup java "${java_opts[@]}" -cp "$libs/*" kafka.Kafka "$dir/server.properties" \
    > "$dir/kafka.log" 2>&1 < /dev/null &
  echo $! > "$dir/pid"
  wait_for Kafka kafka_ready "$dir/pid" "$dir/kafka.log" 90
}

clickhouse_up() {
  if ch_ready; then say "ClickHouse already answers on 127.0.0.1:$ch_http"; return; fi
  local dir="$stack_dir/clickhouse"; mkdir -p "$dir"
  say "starting ClickHouse (chdb-core) on 127.0.0.1:$ch_http (tcp $ch_tcp)"
  rotate "$dir/clickhouse.log"
  # chdb's server takes its zone (timezone(), bare DateTime) from TZ.
  env ${CLICKHOUSE_TZ:+TZ="$CLICKHOUSE_TZ"} nohup "$venv/bin/hubwatch" clickhouse serve \
    --data-dir "$dir/db" --http-port "$ch_http" --tcp-port "$ch_tcp" > "$dir/clickhouse.log" 2>&1 < /dev/null &
  echo $! > "$dir/pid"
  wait_for ClickHouse ch_ready "$dir/pid" "$dir/clickhouse.log" 90
}

prometheus_up() {
  if prom_ready; then say "Prometheus already answers on 127.0.0.1:$prom_port"; return; fi
  port_open "$prom_port" && { echo "port $prom_port is taken by something else" >&2; exit 1; }
  local dir="$stack_dir/prometheus" bin rules targets="" target
  bin=$(binary prometheus) || exit 1
  rules=$(realpath "${PROMETHEUS_RULES:-deploy/prometheus/hubwatch-rules.yml}")
  mkdir -p "$dir/data"
  for target in $(echo "${PROMETHEUS_TARGETS:-127.0.0.1:9464}" | tr , " "); do targets+="${targets:+, }'$target'"; done
  cat > "$dir/prometheus.yml" <<EOF
# Written by deploy/stack.sh from its settings.
global:
  scrape_interval: ${PROMETHEUS_SCRAPE_INTERVAL:-15s}
  evaluation_interval: ${PROMETHEUS_EVALUATION_INTERVAL:-15s}
rule_files: ['$rules']
alerting:
  alertmanagers:
    - static_configs: [{targets: ['127.0.0.1:$am_port']}]
scrape_configs:
  - job_name: hubwatch
    static_configs: [{targets: [$targets]}]
EOF
  promtool check config "$dir/prometheus.yml" > "$dir/check.log" 2>&1 \
    || { echo "Prometheus refuses $dir/prometheus.yml:" >&2; cat "$dir/check.log" >&2; exit 1; }
  say "starting Prometheus $("$bin" --version 2>&1 | head -1 | cut -d' ' -f3) on 127.0.0.1:$prom_port"
  rotate "$dir/prometheus.log"
  nohup "$bin" --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/data" \
    --web.listen-address="127.0.0.1:$prom_port" > "$dir/prometheus.log" 2>&1 < /dev/null &
  echo $! > "$dir/pid"
  wait_for Prometheus prom_ready "$dir/pid" "$dir/prometheus.log" 60
}

alertmanager_up() {
  if am_ready; then say "Alertmanager already answers on 127.0.0.1:$am_port"; return; fi
  port_open "$am_port" && { echo "port $am_port is taken by something else" >&2; exit 1; }
  local dir="$stack_dir/alertmanager" bin receiver="  - name: hubwatch"
  bin=$(binary prometheus-alertmanager alertmanager) || exit 1
  mkdir -p "$dir/data"
  if [ -n "${ALERTMANAGER_WEBHOOK_URL:-}" ]; then
    receiver+=$'\n'"    webhook_configs: [{url: '$ALERTMANAGER_WEBHOOK_URL', send_resolved: true}]"
  fi
  cat > "$dir/alertmanager.yml" <<EOF
# Written by deploy/stack.sh from its settings.
route:
  receiver: hubwatch
  group_by: [alertname, stream, topic, partition, api, table, target]
  group_wait: ${ALERTMANAGER_GROUP_WAIT:-30s}
  group_interval: ${ALERTMANAGER_GROUP_INTERVAL:-5m}
  repeat_interval: ${ALERTMANAGER_REPEAT_INTERVAL:-4h}
receivers:
$receiver
EOF
  amtool check-config "$dir/alertmanager.yml" > "$dir/check.log" 2>&1 \
    || { echo "Alertmanager refuses $dir/alertmanager.yml:" >&2; cat "$dir/check.log" >&2; exit 1; }
  say "starting Alertmanager $("$bin" --version 2>&1 | head -1 | cut -d' ' -f3) on 127.0.0.1:$am_port"
  rotate "$dir/alertmanager.log"
  # No cluster address: one Alertmanager, no gossip port (9094) open on every interface.
  nohup "$bin" --config.file="$dir/alertmanager.yml" --storage.path="$dir/data" \
    --web.listen-address="127.0.0.1:$am_port" --cluster.listen-address= \
    > "$dir/alertmanager.log" 2>&1 < /dev/null &
  echo $! > "$dir/pid"
  wait_for Alertmanager am_ready "$dir/pid" "$dir/alertmanager.log" 60
}

stop_one() {  # name pidfile
  local pidfile=$2 pid
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    say "stopping $1 (pid $pid)"
    kill -TERM "$pid"
    for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && { echo "$1 did not stop in 30s; killing" >&2; kill -KILL "$pid"; }
  fi
  rm -f "$pidfile"
}

part=${2:-all}
usage="usage: $0 up|down|status [kafka|clickhouse|prometheus|alertmanager]"
case "$part" in all|kafka|clickhouse|prometheus|alertmanager) ;; *) echo "$usage" >&2; exit 2 ;; esac
want() { [ "$part" = all ] || [ "$part" = "$1" ]; }
named() { [ "$part" = "$1" ]; }  # Prometheus and Alertmanager start only when named

case "${1:-}" in
  up)
    start=$(now)
    want kafka && kafka_up
    want clickhouse && clickhouse_up
    named prometheus && prometheus_up
    named alertmanager && alertmanager_up
    say "stack up in $(secs $(( $(now) - start )))s:$(want kafka && echo " kafka 127.0.0.1:$kafka_port")$(want clickhouse && echo " clickhouse http://127.0.0.1:$ch_http")$(named prometheus && echo " prometheus http://127.0.0.1:$prom_port")$(named alertmanager && echo " alertmanager http://127.0.0.1:$am_port")"
    ;;
  down)
    if want prometheus; then stop_one Prometheus "$stack_dir/prometheus/pid"; fi
    if want alertmanager; then stop_one Alertmanager "$stack_dir/alertmanager/pid"; fi
    if want clickhouse; then stop_one ClickHouse "$stack_dir/clickhouse/pid"; fi
    if want kafka; then stop_one Kafka "$stack_dir/kafka/pid"; fi
    ;;
  status)
    if want kafka; then kafka_ready && echo "kafka: up (127.0.0.1:$kafka_port)" || echo "kafka: down"; fi
    if want clickhouse; then ch_ready && echo "clickhouse: up (http://127.0.0.1:$ch_http)" || echo "clickhouse: down"; fi
    if want prometheus; then prom_ready && echo "prometheus: up (http://127.0.0.1:$prom_port)" || echo "prometheus: down"; fi
    if want alertmanager; then am_ready && echo "alertmanager: up (http://127.0.0.1:$am_port)" || echo "alertmanager: down"; fi
    ;;
  *) echo "$usage" >&2; exit 2 ;;
esac
