#!/bin/sh
# Runs once, when PostgreSQL initialises an empty data directory (the official image
# and docker/postgres both run /docker-entrypoint-initdb.d/*.sh as the postgres user).
#
# Least privilege: one login role per service (mfc_intake, mfc_notifier, mfc_followup,
# mfc_audit), each owning exactly one schema of the same name as its service and
# nothing else. No role may create schemas, use the public schema or read another
# service's schema. The audit service appends to its trail as audit_appender, a role
# that may only read and insert (services/audit/src/audit/migrations/0002_merkle.sql
# grants it the tables; mfc_audit may hand it to itself).
#
# Passwords come from <SERVICE>_DB_PASSWORD or, better, <SERVICE>_DB_PASSWORD_FILE (a
# Docker secret); never from the repository.
set -eu

secret() {
  eval "file=\${${1}_FILE:-}"
  eval "value=\${${1}:-}"
  if [ -n "$file" ]; then
    value=$(cat "$file")
  fi
  if [ -z "$value" ]; then
    echo "10-mfc-roles: $1 (or ${1}_FILE) is required" >&2
    exit 1
  fi
  printf '%s' "$value"
}

run_psql() {
  psql -v ON_ERROR_STOP=1 --no-psqlrc --quiet --username "$POSTGRES_USER" \
    --dbname "$POSTGRES_DB" "$@"
}

run_psql -v db="$POSTGRES_DB" <<'SQL'
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
REVOKE ALL ON SCHEMA public FROM PUBLIC;
CREATE ROLE audit_appender NOLOGIN;
SQL

for service in intake notifier followup audit; do
  password=$(secret "$(echo "$service" | tr '[:lower:]' '[:upper:]')_DB_PASSWORD")
  run_psql -v db="$POSTGRES_DB" -v role="mfc_$service" -v schema="$service" \
    -v password="$password" <<'SQL'
CREATE ROLE :"role" LOGIN PASSWORD :'password'
  NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION CONNECTION LIMIT 50;
GRANT CONNECT ON DATABASE :"db" TO :"role";
CREATE SCHEMA :"schema" AUTHORIZATION :"role";
ALTER ROLE :"role" SET search_path = :"schema";
SQL
  echo "10-mfc-roles: role mfc_$service owns schema $service" >&2
done

run_psql <<'SQL'
GRANT audit_appender TO mfc_audit WITH ADMIN OPTION;
SQL
