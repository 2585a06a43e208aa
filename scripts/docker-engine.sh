#!/usr/bin/env bash
# Make sure a Docker engine answers on this machine, and that compose is there.
# Installs Debian's docker.io when dockerd is missing and starts it with host-only
# networking (no bridge, no iptables): containers must use host networking so that
# every byte stays on 127.0.0.1 (see docs/development.md).
set -euo pipefail

log_dir="${MFC_STATE_DIR:-$HOME/.cache/missing-from-care}"
mkdir -p "$log_dir"

# Compose, for the deployment test (tests/e2e/test_compose.py) and for operators:
# Debian's docker-compose (v1.29) where the docker compose plugin is missing.
if ! docker compose version >/dev/null 2>&1 && ! command -v docker-compose >/dev/null 2>&1; then
  echo "docker-engine: installing docker-compose from the OS packages" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq docker-compose >/dev/null
fi

if docker info >/dev/null 2>&1; then
  exit 0
fi

if ! command -v dockerd >/dev/null 2>&1; then
  echo "docker-engine: installing docker.io from the OS packages" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq docker.io >/dev/null
fi

echo "docker-engine: starting dockerd (log: $log_dir/dockerd.log)" >&2
nohup dockerd --bridge=none --iptables=false --ip6tables=false \
  >"$log_dir/dockerd.log" 2>&1 &

for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then
    exit 0
  fi
  sleep 1
done
echo "docker-engine: dockerd did not answer within 60 s; see $log_dir/dockerd.log" >&2
tail -n 20 "$log_dir/dockerd.log" >&2 || true
exit 1
