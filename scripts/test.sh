#!/usr/bin/env bash
# Run every test on a fresh machine of ours: installs what is missing (virtual
# environment, Docker engine, offline images), lints, then runs the unit,
# integration and e2e tiers. Extra arguments go to pytest (e.g. -m unit).
#
# MFC_TEST_BACKENDS picks the infrastructure backends (default "containers,embedded");
# "embedded" alone runs everything without Docker.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export MFC_TEST_BACKENDS="${MFC_TEST_BACKENDS:-containers,embedded}"

bash scripts/bootstrap.sh

if [[ ",$MFC_TEST_BACKENDS," == *",containers,"* ]]; then
  bash scripts/docker-engine.sh
  bash scripts/build-images.sh
  # No registry is reachable here: the tests use the images built offline unless
  # told otherwise (set these to postgres:16 / apache/kafka:3.9.1 and
  # MFC_TEST_ALLOW_PULL=1 where a registry is reachable).
  export MFC_TEST_POSTGRES_IMAGE="${MFC_TEST_POSTGRES_IMAGE:-local/postgres:15}"
  export MFC_TEST_KAFKA_IMAGE="${MFC_TEST_KAFKA_IMAGE:-local/tansu:latest}"
fi

# Debian's Chromium for the console's browser tests (Playwright drives it).
bash scripts/browser.sh

bash scripts/lint.sh
.venv/bin/python -m pytest "$@"
