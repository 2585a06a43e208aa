#!/usr/bin/env bash
# Create .venv and install every package of the project with pinned versions.
# Re-running is cheap: nothing is installed again unless a pyproject or a pin changed.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
venv="${MFC_VENV:-$root/.venv}"
python="${PYTHON:-python3}"

cd "$root"
stamp_inputs=(constraints.txt requirements-dev.txt bench/requirements.txt shared/pyproject.toml rules/pyproject.toml services/*/pyproject.toml devtools/pyproject.toml)
digest=$(cat "${stamp_inputs[@]}" | sha256sum | cut -c1-16)
if [ -f "$venv/.mfc-installed" ] && [ "$(cat "$venv/.mfc-installed")" = "$digest" ]; then
  exit 0
fi

if [ ! -x "$venv/bin/python" ]; then
  echo "bootstrap: creating $venv" >&2
  "$python" -m venv "$venv"
fi
echo "bootstrap: installing packages (pinned by constraints.txt)" >&2
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip install -q -c constraints.txt \
  -e ./shared -e ./rules -e ./services/intake -e ./services/notifier \
  -e ./services/followup -e ./services/audit -e ./services/console -e ./devtools \
  -r requirements-dev.txt \
  -r bench/requirements.txt
echo "$digest" > "$venv/.mfc-installed"
