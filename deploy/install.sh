#!/usr/bin/env bash
# Installs what hubwatch and its tests need on a fresh machine: a Python venv with the
# package, kcat, Prometheus, Alertmanager and chromium (Debian), and the Kafka jars (Maven
# Central). Idempotent; prints progress.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
venv=${VENV:-.venv}
python=${PYTHON:-python3}

step() { printf '==> %s\n' "$*"; }

# pip runs only when it has something to do: no venv yet, or pyproject.toml (the
# dependencies) changed since the stamp of the last install. Says which.
stamp="$venv/.installed"
reason=""
if [ ! -x "$venv/bin/python" ]; then
  reason="no venv in $venv yet"
elif [ ! -f "$stamp" ]; then
  reason="$venv has no install stamp (installed by hand?)"
elif [ pyproject.toml -nt "$stamp" ]; then
  reason="pyproject.toml is newer than the last install"
fi
if [ -n "$reason" ]; then
  step "Python environment: $reason; installing (pip install -e .[dev])"
  [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
  "$venv/bin/pip" install --progress-bar off -q --upgrade pip
  "$venv/bin/pip" install --progress-bar off -e ".[dev]"
  rm -f "$venv"/.installed-* && touch "$stamp"
else
  step "Python environment in $venv is up to date (pyproject.toml unchanged since the last install)"
fi

if [ "${1:-}" = "--python-only" ]; then exit 0; fi

# kcat for the tests; Prometheus and Alertmanager for hubwatch's own health (deploy/prometheus);
# chromium renders dashboards. One apt call, for those missing, waiting for the apt lock.
step "Debian packages: kcat prometheus prometheus-alertmanager chromium"
deploy/apt-install.sh kcat prometheus prometheus-alertmanager chromium

if ! compgen -G "deploy/kafka/libs/kafka_2.13-*.jar" >/dev/null; then
  step "Kafka jars from Maven Central (mvn dependency:copy-dependencies)"
  command -v java >/dev/null || { echo "java (17+) is needed for Kafka" >&2; exit 1; }
  command -v mvn >/dev/null || { echo "mvn is needed to fetch Kafka's jars" >&2; exit 1; }
  mvn -B -q -f deploy/kafka/pom.xml dependency:copy-dependencies
fi
step "installed: $("$venv/bin/python" --version), kcat, $(prometheus --version 2>&1 | head -1 | cut -d" " -f1-3), $(ls deploy/kafka/libs/kafka_2.13-*.jar | xargs -n1 basename)"
