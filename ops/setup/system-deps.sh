#!/usr/bin/env bash
# Installs the Debian packages the local stack (Kafka's JVM, Redis and its exporter, Prometheus) and
# the browser tests need, where missing.
# Runs apt-get only as root; otherwise prints what to install and fails.
set -euo pipefail

need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v prometheus   >/dev/null || need+=(prometheus)
command -v promtool     >/dev/null || need+=(prometheus)
command -v prometheus-redis-exporter >/dev/null || need+=(prometheus-redis-exporter)
command -v prometheus-alertmanager >/dev/null || command -v alertmanager >/dev/null || need+=(prometheus-alertmanager)
command -v amtool       >/dev/null || need+=(prometheus-alertmanager)
command -v java         >/dev/null || need+=(openjdk-17-jre-headless)
command -v mvn          >/dev/null || need+=(maven)
if [[ "${STOCKSTREAM_WITH_BROWSER:-1}" == 1 ]]; then
  command -v chromium >/dev/null || need+=(chromium)
fi
[[ ${#need[@]} -eq 0 ]] && exit 0

# de-duplicate
mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
if [[ $(id -u) -ne 0 ]]; then
  echo "missing system packages: ${need[*]}" >&2
  echo "install them with: sudo apt-get install -y ${need[*]}" >&2
  exit 1
fi
echo "installing system packages: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -q --no-install-recommends "${need[@]}" >/tmp/stockstream-apt.log 2>&1; then
  apt-get update -q >/dev/null 2>&1 || true
  apt-get install -y -q --no-install-recommends "${need[@]}" >/tmp/stockstream-apt.log 2>&1 || {
    tail -20 /tmp/stockstream-apt.log >&2; echo "apt-get install failed (log: /tmp/stockstream-apt.log)" >&2; exit 1; }
fi
