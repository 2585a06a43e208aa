#!/usr/bin/env bash
# Run the whole system on embedded infrastructure (see `mfc dev --help`).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/bootstrap.sh
exec .venv/bin/mfc dev "$@"
