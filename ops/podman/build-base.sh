#!/usr/bin/env bash
# Builds the local base image of our Dockerfile from Debian packages (debootstrap → podman import)
# and prints its reference; the Dockerfile takes it as PYTHON_IMAGE:
#   ops/podman/podman build --build-arg PYTHON_IMAGE="$(ops/podman/build-base.sh)" -t stockstream:0.1.0 .
#
# Why: our machines have no Docker engine and no container registry, but do reach Debian's packages.
# The image holds what the Dockerfile expects of python:3.11-slim-bookworm: Debian 12, Python 3.11
# with venv, `python` on PATH, apt, useradd, CA certificates. It also trusts this machine's extra CAs
# (/usr/local/share/ca-certificates: the egress proxy here re-signs TLS) and sets PIP_CERT, so pip
# and Maven inside the build reach PyPI and Maven Central. It is a local image: never push it.
#
# Cached: the image is tagged with a hash of its inputs (this script, the suite, the mirror, the
# package list, the extra CAs) and its root file system is kept as .stack/images/base-<hash>.tar,
# so a second call is free and a new podman storage imports the tarball instead of debootstrapping.
set -euo pipefail

here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
repo=$(CDPATH='' cd -- "$here/../.." && pwd)
podman="$here/podman"
suite=${BASE_SUITE:-bookworm}
mirror=${BASE_MIRROR:-http://deb.debian.org/debian}
security_mirror=${BASE_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
packages=python3,python3-venv,python-is-python3,ca-certificates
cache_dir=${STACK_DIR:-$repo/.stack}/images
extra_cas=(/usr/local/share/ca-certificates/*.crt)
[[ -e ${extra_cas[0]} ]] || extra_cas=()

key=$( { cat "$0"; echo "$suite $mirror $security_mirror $packages"; cat "${extra_cas[@]}" /dev/null; } \
       | sha256sum | cut -c1-16)
image="localhost/stockstream-base:$key"
tarball="$cache_dir/base-$key.tar"

if "$podman" image exists "$image"; then
  echo "$image"; exit 0
fi
mkdir -p "$cache_dir"
if [[ ! -s $tarball ]]; then
  command -v debootstrap >/dev/null || { echo "debootstrap not found: run ops/setup/deploy-deps.sh" >&2; exit 1; }
  rootfs=$(mktemp -d "$cache_dir/rootfs.XXXXXX")
  trap 'rm -rf "$rootfs" "$tarball.part"' EXIT
  echo "building the base root file system with debootstrap ($suite, $packages) in $rootfs" >&2
  debootstrap --variant=minbase --include="$packages" "$suite" "$rootfs" "$mirror" >&2
  cat > "$rootfs/etc/apt/sources.list" <<SOURCES
deb $mirror $suite main
deb $mirror $suite-updates main
deb $security_mirror $suite-security main
SOURCES
  for ca in "${extra_cas[@]}"; do cp "$ca" "$rootfs/usr/local/share/ca-certificates/"; done
  chroot "$rootfs" update-ca-certificates >&2
  # What the slim images do too: no apt lists or caches, no docs and man pages. Their folders stay:
  # packages' scripts link into them (openjdk's update-alternatives fails without /usr/share/man/man1).
  chroot "$rootfs" apt-get clean
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/debconf/*-old "$rootfs"/var/log/*.log
  find "$rootfs"/usr/share/doc "$rootfs"/usr/share/man -type f -delete
  mkdir -p "$rootfs"/usr/share/man/man1
  tar --numeric-owner --xattrs -C "$rootfs" -cf "$tarball.part" .
  mv "$tarball.part" "$tarball"
fi
"$podman" import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
  --change 'CMD ["python3"]' \
  "$tarball" "$image" >&2
echo "$image"
