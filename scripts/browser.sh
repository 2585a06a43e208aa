#!/usr/bin/env bash
# Make sure the console's tests have what they need from the OS packages:
# - a real browser: Playwright's own browser download cannot reach its CDN here (and
#   must never be run: no `playwright install`); Debian's Chromium works with
#   Playwright instead. tests/browser.py launches it (override with MFC_CHROMIUM).
# - DejaVu Sans, the font the call sheet's PDF is set in (any script, not only
#   Latin-1); the service images install it too.
# Installs what is missing and does nothing when everything is there.
set -euo pipefail

chromium="${MFC_CHROMIUM:-/usr/bin/chromium}"
font=/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf

missing=()
[ -x "$chromium" ] || missing+=(chromium)
[ -f "$font" ] || missing+=(fonts-dejavu-core)
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "browser: installing ${missing[*]} from the OS packages" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${missing[@]}" >/dev/null

if [ ! -x "$chromium" ]; then
  echo "browser: $chromium is still missing after installing chromium" >&2
  exit 1
fi
