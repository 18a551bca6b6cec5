#!/bin/sh
# The password files of the Compose deployment (docs/deploy.md): the brokers' PLAIN user, one Kafka
# SCRAM user per service, one Redis ACL user each and the Spark cluster's authentication secret, in
# ops/compose/secrets/ (a 0700 folder; git ignores it). Each is 32 random bytes, drawn here; a file
# that exists is kept, so running this again changes nothing. To rotate one, delete its file, run
# this, then `docker compose up -d` (kafka-access upserts the Kafka user; Redis and the services
# restart with the new file).
# The files are readable by the containers' users (0644 inside the private folder): Compose bind-
# mounts them as they are.
set -eu
folder="$(cd "$(dirname "$0")" && pwd)/secrets"
mkdir -p "$folder"
chmod 700 "$folder"

draw() { head -c 32 /dev/urandom | base64 | tr -d '\n=+/'; }
for name in kafka-broker kafka-ingest kafka-process kafka-materialize kafka-notify kafka-composite kafka-serve \
            kafka-spark kafka-operator redis-admin redis-materialize redis-serve redis-notify redis-monitor; do
  [ -s "$folder/$name" ] && continue
  (umask 022 && draw > "$folder/$name")
  echo "made secrets/$name"
done
if [ ! -s "$folder/spark-defaults.conf" ]; then
  (umask 022 && { printf '%s\n' "spark.authenticate true"; printf 'spark.authenticate.secret %s\n' "$(draw)"; } \
    > "$folder/spark-defaults.conf")
  echo "made secrets/spark-defaults.conf"
fi
