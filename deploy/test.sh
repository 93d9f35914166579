#!/usr/bin/env bash
# Starts the real stack on test ports, runs lint and the tests against it, stops the stack.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export STACK_DIR=${STACK_DIR:-.stack-test}
export KAFKA_PORT=${KAFKA_PORT:-19092} KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-19093}
export CLICKHOUSE_HTTP_PORT=${CLICKHOUSE_HTTP_PORT:-18123} CLICKHOUSE_TCP_PORT=${CLICKHOUSE_TCP_PORT:-19000}
venv=${VENV:-.venv}
# Neither the tests nor the server run in UTC, and not in the same zone: a datetime read or
# written naive anywhere fails loudly (New York has DST; Kolkata is +05:30).
export TZ=${TEST_TZ:-America/New_York} CLICKHOUSE_TZ=${CLICKHOUSE_TZ:-Asia/Kolkata}

# Test data is throwaway: a broker that starts on thousands of old tests' partitions is slow
# to elect itself under load, so each run starts from empty data unless a stack is already up.
if ! (exec 3<>"/dev/tcp/127.0.0.1/$KAFKA_PORT") 2>/dev/null; then rm -rf "$STACK_DIR/kafka/data"; fi
trap 'deploy/stack.sh down' EXIT
deploy/stack.sh up

echo "==> ruff"
"$venv/bin/ruff" check --no-cache .
"$venv/bin/ruff" format --no-cache --check .

server_tz=$(curl -fsS "http://127.0.0.1:$CLICKHOUSE_HTTP_PORT/" --data-binary 'SELECT timezone()')
echo "==> pytest (Kafka 127.0.0.1:$KAFKA_PORT, ClickHouse http://127.0.0.1:$CLICKHOUSE_HTTP_PORT in $server_tz; tests in $TZ)"
export HUBWATCH_TEST_KAFKA="127.0.0.1:$KAFKA_PORT"
export HUBWATCH_TEST_CLICKHOUSE_URL="http://127.0.0.1:$CLICKHOUSE_HTTP_PORT"
"$venv/bin/pytest" "$@"
