#!/usr/bin/env bash
# Brings the real local stack up or down on loopback: Apache Kafka (KRaft, single node,
# started with java) and ClickHouse (served by `hubwatch clickhouse serve` from chdb-core).
#
#   deploy/stack.sh up | down | status [kafka|clickhouse]
#
# Settings (environment): STACK_DIR (.stack), KAFKA_PORT (9092), KAFKA_CONTROLLER_PORT
# (9093), CLICKHOUSE_HTTP_PORT (8123), CLICKHOUSE_TCP_PORT (9000), VENV (.venv),
# CLICKHOUSE_TZ (the server's time zone; default: this shell's).
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
libs="$root/deploy/kafka/libs"

say() { printf '==> %s\n' "$*"; }
now() { echo $(( $(date +%s%N) / 1000000 )); }  # milliseconds
secs() { printf '%d.%d' $(( $1 / 1000 )) $(( $1 % 1000 / 100 )); }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
kafka_ready() { kcat -b "127.0.0.1:$kafka_port" -L -m 2 >/dev/null 2>&1; }
ch_ready() { [ "$(curl -fsS -m 2 "http://127.0.0.1:$ch_http/ping" 2>/dev/null)" = "Ok." ]; }

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
case "$part" in all|kafka|clickhouse) ;; *) echo "usage: $0 up|down|status [kafka|clickhouse]" >&2; exit 2 ;; esac
want() { [ "$part" = all ] || [ "$part" = "$1" ]; }

case "${1:-}" in
  up)
    start=$(now)
    want kafka && kafka_up
    want clickhouse && clickhouse_up
    say "stack up in $(secs $(( $(now) - start )))s:$(want kafka && echo " kafka 127.0.0.1:$kafka_port")$(want clickhouse && echo " clickhouse http://127.0.0.1:$ch_http")"
    ;;
  down)
    if want clickhouse; then stop_one ClickHouse "$stack_dir/clickhouse/pid"; fi
    if want kafka; then stop_one Kafka "$stack_dir/kafka/pid"; fi
    ;;
  status)
    if want kafka; then kafka_ready && echo "kafka: up (127.0.0.1:$kafka_port)" || echo "kafka: down"; fi
    if want clickhouse; then ch_ready && echo "clickhouse: up (http://127.0.0.1:$ch_http)" || echo "clickhouse: down"; fi
    ;;
  *) echo "usage: $0 up|down|status [kafka|clickhouse]" >&2; exit 2 ;;
esac
