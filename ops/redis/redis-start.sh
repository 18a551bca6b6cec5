#!/bin/sh
# Starts redis-server with its ACL users (docs/security.md, "Redis users"), in Compose and Kubernetes.
# Each user's password is a file in $REDIS_USERS_DIR (a mounted Secret, one file per user); only its
# SHA-256 goes into the ACL file, and no password is ever on a command line (printf and read are
# shell built-ins). The default user is off: a connection without a user can do nothing.
#   admin        operator: `stockstream apikey`, `views rebuild`, redis-cli
#   materialize  writes the views (REDIS_KEY_PREFIX*) and publishes live updates; never the API keys
#   serve        read-only: the read commands the API uses, on the views and the API keys
#   notify       publishes the browser notifications, nothing else
#   monitor      the probes (PING) and redis_exporter (INFO and the like); no key at all
# Arguments are passed on to redis-server (--appendonly, --maxmemory …).
set -eu
users="${REDIS_USERS_DIR:?REDIS_USERS_DIR is not set}"
acl="${REDIS_ACL_FILE:-/tmp/redis/users.acl}"
views="${REDIS_KEY_PREFIX:-ss:}"
keys="${API_KEYS_PREFIX:-ssauth:}"

# The SHA-256 of a user's password file, without line ends (a Secret written with a trailing newline
# still matches what the clients send: they strip it too).
hash() {
  [ -s "$users/$1" ] || { echo "redis-start: no password file for Redis user $1 in $users" >&2; exit 1; }
  tr -d '\r\n' < "$users/$1" | sha256sum | cut -d ' ' -f 1
}
# Connection commands without the dangerous ones (CLIENT KILL, CLIENT PAUSE …).
connection="+@connection -@admin -@dangerous"

umask 077
mkdir -p "$(dirname "$acl")"
{
  printf '%s\n' "user default off resetkeys resetchannels -@all"
  printf '%s\n' "user admin on #$(hash admin) ~* &* +@all"
  printf '%s\n' "user materialize on #$(hash materialize) ~${views}* &${views}* +@all -@dangerous -@admin"
  printf '%s\n' "user serve on #$(hash serve) ~${views}* ~${keys}* &${views}live:* -@all $connection +exists +smembers +sismember +hget +hgetall +hmget +zrange +zrevrange +zrevrangebyscore +subscribe +unsubscribe"
  printf '%s\n' "user notify on #$(hash notify) resetkeys &${views}live:notifications -@all $connection +publish"
  printf '%s\n' "user monitor on #$(hash monitor) resetkeys resetchannels -@all $connection +info +dbsize +slowlog|get +slowlog|len +latency|latest"
} > "$acl"
exec redis-server --aclfile "$acl" "$@"
