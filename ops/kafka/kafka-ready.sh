#!/bin/sh
# Readiness of one Kafka broker (Kubernetes readinessProbe, Compose healthcheck): ready only once
# it is unfenced and caught up, so a rolling restart never takes the next broker down while this
# one is still out of some in-sync replica set (with replication 3 and min.insync.replicas 2 that
# would stop every transactional write with NOT_ENOUGH_REPLICAS).
#   1. unfenced: the broker lists itself among the brokers of its own metadata, not fenced (Kafka 4
#      lists fenced brokers with "isFenced: true"; older brokers leave them out);
#   2. caught up: no under-replicated partition has this broker among its replicas but outside its
#      in-sync replicas. Partitions missing *another* broker do not count: one broker down must not
#      make the others unready (the bootstrap Service would lose every endpoint).
# Needs KAFKA_NODE_ID (the pod index on Kubernetes). The tools run without KAFKA_OPTS: it carries
# the JMX exporter agent, whose port the broker itself holds.
# Where every listener authenticates (the manifests), READY_BOOTSTRAP names the broker's SASL/PLAIN
# listener and READY_SASL_PASSWORD_FILE the password file of READY_SASL_USERNAME (default broker):
# the tools get them in a client properties file of this run (0600, removed on exit), never on a
# command line. (Not KAFKA_* names: the image turns those into broker properties.)
set -eu
node="${KAFKA_NODE_ID:?KAFKA_NODE_ID is not set}"
bootstrap="${READY_BOOTSTRAP:-${KAFKA_READY_BOOTSTRAP:-localhost:9092}}"
bin="${KAFKA_HOME:-/opt/kafka}/bin"
unset KAFKA_OPTS KAFKA_JMX_OPTS
export KAFKA_HEAP_OPTS="-Xms32m -Xmx128m"
export KAFKA_JVM_PERFORMANCE_OPTS="-XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xshare:auto"
set --
if [ -n "${READY_SASL_PASSWORD_FILE:-}" ]; then
  password=$(cat "$READY_SASL_PASSWORD_FILE") || { echo "cannot read READY_SASL_PASSWORD_FILE"; exit 1; }
  config=$(umask 077 && mktemp)
  trap 'rm -f "$config"' EXIT
  printf '%s\n' "security.protocol=SASL_PLAINTEXT" "sasl.mechanism=PLAIN" \
    "sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username=\"${READY_SASL_USERNAME:-broker}\" password=\"$password\";" \
    > "$config"
  set -- --command-config "$config"
fi

# One line per broker: "host:9092 (id: 1 rack: null isFenced: false) -> (".
self=$("$bin/kafka-broker-api-versions.sh" --bootstrap-server "$bootstrap" "$@" 2>/dev/null | grep "(id: $node rack" || true)
if [ -z "$self" ]; then
  echo "broker $node is not in its own metadata yet (starting)"; exit 1
fi
if printf '%s\n' "$self" | grep -q "isFenced: true"; then
  echo "broker $node is fenced (not caught up with the metadata log, or shutting down)"; exit 1
fi
lagging=$("$bin/kafka-topics.sh" --bootstrap-server "$bootstrap" "$@" --describe --under-replicated-partitions) || {
  echo "broker $node: cannot list under-replicated partitions"; exit 1; }
printf '%s\n' "$lagging" | awk -v node="$node" '
  /Replicas:/ {
    replicas = ""; isr = ""
    for (i = 1; i <= NF; i++) { if ($i == "Replicas:") replicas = $(i + 1); if ($i == "Isr:") isr = $(i + 1) }
    if (("," replicas ",") ~ ("," node ",") && ("," isr ",") !~ ("," node ",")) { behind++; example = $0 }
  }
  END {
    if (behind) { printf "broker %s is behind on %d partition(s), e.g. %s\n", node, behind, example; exit 1 }
    printf "broker %s is unfenced and in every in-sync replica set\n", node
  }'
