#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for tests: initdb into a folder, start it on a free
# loopback port, print the URL; or stop it and remove the folder.
#   url=$(scripts/pg.sh start /tmp/pg)    # prints postgresql+asyncpg://postgres@127.0.0.1:PORT/postgres
#   scripts/pg.sh stop /tmp/pg
# The server refuses to run as root, so as root it runs as the `postgres` user.
set -euo pipefail
action=${1:?usage: pg.sh start|stop DIR}
dir=${2:?usage: pg.sh start|stop DIR}
as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
case "$action" in
start)
  mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && chown postgres "$dir"
  as_owner initdb -D "$dir/data" -A trust -U postgres --no-sync >/dev/null
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  as_owner pg_ctl -D "$dir/data" -l "$dir/log" -w -t 60 start \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=300" >/dev/null
  echo "postgresql+asyncpg://postgres@127.0.0.1:$port/postgres"
  ;;
stop)
  as_owner pg_ctl -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$dir"
  ;;
*) echo "usage: pg.sh start|stop DIR" >&2; exit 2 ;;
esac
