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
    # As the official image does: a private server on the Unix socket only, the
    # database, then every /docker-entrypoint-initdb.d/*.sh and *.sql in order.
    as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }
    as_postgres pg_ctl -o "-c listen_addresses=''" -w start >/dev/null
    if [ "$POSTGRES_DB" != "postgres" ]; then
      as_postgres createdb --username="$POSTGRES_USER" "$POSTGRES_DB"
    fi
    export POSTGRES_USER POSTGRES_DB
    for script in /docker-entrypoint-initdb.d/*; do
      case "$script" in
        *.sh) echo "docker-entrypoint: running $script" >&2; as_postgres sh "$script" ;;
        *.sql) echo "docker-entrypoint: running $script" >&2
               as_postgres psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" \
                 --dbname "$POSTGRES_DB" --no-psqlrc -f "$script" ;;
      esac
    done
    as_postgres pg_ctl -m fast -w stop >/dev/null
  fi
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$@"
fi
exec "$@"
