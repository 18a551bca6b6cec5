#!/usr/bin/env bash
# Installs what `make test-deploy` needs to build and run the images without a Docker engine:
# podman (+ buildah, runc, netavark and aardvark-dns for networks with DNS), debootstrap for the
# Debian base image, podman-compose. Runs apt-get only as root; otherwise prints what to install.
set -euo pipefail

need=()
command -v podman         >/dev/null || need+=(podman)
command -v buildah        >/dev/null || need+=(buildah)
command -v runc           >/dev/null || need+=(runc)
command -v debootstrap    >/dev/null || need+=(debootstrap)
command -v podman-compose >/dev/null || need+=(podman-compose)
[[ -x /usr/lib/podman/netavark || -x /usr/libexec/podman/netavark ]] || need+=(netavark)
[[ -x /usr/lib/podman/aardvark-dns || -x /usr/libexec/podman/aardvark-dns ]] || need+=(aardvark-dns)
command -v iptables       >/dev/null || need+=(iptables)
# podman play kube builds its pod infra ("pause") image around catatonit.
command -v catatonit      >/dev/null || [[ -x /usr/libexec/podman/catatonit ]] || need+=(catatonit)
[[ ${#need[@]} -eq 0 ]] && exit 0

if [[ $(id -u) -ne 0 ]]; then
  echo "missing system packages: ${need[*]}" >&2
  echo "install them with: sudo apt-get install -y ${need[*]}" >&2
  exit 1
fi
echo "installing system packages: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -q --no-install-recommends "${need[@]}" >/tmp/stockstream-apt-deploy.log 2>&1; then
  apt-get update -q >/dev/null 2>&1 || true
  apt-get install -y -q --no-install-recommends "${need[@]}" >/tmp/stockstream-apt-deploy.log 2>&1 || {
    tail -20 /tmp/stockstream-apt-deploy.log >&2; echo "apt-get install failed (log: /tmp/stockstream-apt-deploy.log)" >&2; exit 1; }
fi
