#!/bin/sh
# Creates the access Secrets of a namespace that does not have them yet (docs/deploy.md): the brokers'
# PLAIN user (kafka-broker), one Kafka SCRAM user per principal (kafka-user-<principal>), one Redis
# ACL user each (redis-user-<user>) and the Spark cluster's shared secret (spark-auth). Each password
# is 32 random bytes drawn here into a file of a private temporary folder and handed to kubectl as a
# file (never on a command line), then the folder is removed. An existing Secret is left as it is:
# to rotate one, delete it, run this again, then restart its users (and re-run the kafka-access Job).
#   sh ops/k8s/overlays/prod/create-access-secrets.sh stockstream
set -eu
namespace="${1:?usage: create-access-secrets.sh <namespace>}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
chmod 700 "$work"

draw() { head -c 32 /dev/urandom | base64 | tr -d '\n=+/' > "$work/password"; }
exists() { kubectl -n "$namespace" get secret "$1" >/dev/null 2>&1; }
create() {  # name, then the file that becomes the key (password by default)
  if exists "$1"; then echo "$1: exists, kept"; return; fi
  kubectl -n "$namespace" create secret generic "$1" --from-file="${3:-password}=$2" >/dev/null
  echo "$1: created"
}

for user in broker; do draw; create kafka-broker "$work/password"; done
for user in ingest process materialize notify composite serve spark operator; do
  draw; create "kafka-user-$user" "$work/password"
done
for user in admin materialize serve notify monitor; do
  draw; create "redis-user-$user" "$work/password"
done
draw
{ printf '%s\n' "spark.authenticate true"; printf 'spark.authenticate.secret %s\n' "$(cat "$work/password")"; } \
  > "$work/spark-defaults.conf"
create spark-auth "$work/spark-defaults.conf" spark-defaults.conf
