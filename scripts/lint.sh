#!/usr/bin/env bash
# Formatting, lint rules and strict typing; the same checks pre-commit runs.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff format --check .
.venv/bin/ruff check .
.venv/bin/mypy shared/src rules/src services/intake/src services/notifier/src services/followup/src services/audit/src services/console/src devtools/src
