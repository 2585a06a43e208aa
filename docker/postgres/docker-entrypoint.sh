#!/bin/sh
# Minimal stand-in for the official image's entrypoint: initialise once, then exec.
set -eu
: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=$POSTGRES_USER}"
if [ "${1:-}" = "postgres" ]; then
  mkdir -p "$PGDATA" /var/run/postgresql
  chown -R postgres:postgres "$PGDATA" /var/run/postgresql
  chmod 0700 "$PGDATA"
  if [ ! -s "$PGDATA/PG_VERSION" ]; then
    : "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD must be set}"
    pwfile=$(mktemp)
    printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
    chown postgres "$pwfile"
    setpriv --reuid=postgres --regid=postgres --init-groups \
      initdb --username="$POSTGRES_USER" --pwfile="$pwfile" --auth-host=scram-sha-256 \
      --auth-local=trust --encoding=UTF8 >/dev/null
    rm -f "$pwfile"
    if [ "$POSTGRES_DB" != "postgres" ]; then
      setpriv --reuid=postgres --regid=postgres --init-groups \
        pg_ctl -o "-c listen_addresses=''" -w start >/dev/null
      setpriv --reuid=postgres --regid=postgres --init-groups \
        createdb --username="$POSTGRES_USER" "$POSTGRES_DB"
      setpriv --reuid=postgres --regid=postgres --init-groups pg_ctl -m fast -w stop >/dev/null
    fi
  fi
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$@"
fi
exec "$@"
