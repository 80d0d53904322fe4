#!/usr/bin/env bash
# Installs everything Glue and its tests need on Debian 12 (as root): the real components the
# integration tests drive (Docker engine, HAProxy, etcd, Open vSwitch), pnpm, the workspace, the build.
# Idempotent: run it again at any time.
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(docker.io busybox-static haproxy nftables conntrack etcd-server etcd-client openvswitch-switch prometheus pebble ethtool socat crudini iproute2 procps openssl uuid-runtime util-linux)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian starts services when it can; Glue's tests start their own private instances instead.
for svc in haproxy etcd openvswitch-switch docker containerd prometheus; do
  (command -v systemctl >/dev/null && systemctl is-active --quiet "$svc" 2>/dev/null && systemctl stop "$svc") || true
done

PNPM_VERSION=12.21.0
if ! command -v pnpm >/dev/null || [ "$(pnpm --version)" != "$PNPM_VERSION" ]; then
  echo "setup: installing pnpm $PNPM_VERSION"
  npm install -g "pnpm@$PNPM_VERSION" >/dev/null 2>&1
fi
pnpm install --frozen-lockfile
pnpm build
