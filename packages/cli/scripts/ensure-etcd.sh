#!/usr/bin/env bash
# Installs etcd (Debian 12's etcd-server and etcd-client, 3.4.23: `etcd`, `etcdctl`) when this
# machine lacks them: the monitors' HA store. Idempotent and quiet when both are there.
# Debian's etcd-server starts a default member (127.0.0.1:2379, data in /var/lib/etcd) as a
# service; pgha never uses it (tests and `pgha up --monitors` start their own members on free
# loopback ports, with their own data directories), so it is kept from starting, and stopped
# and disabled if it runs.
set -euo pipefail

# Stops and disables the package's own service if it runs (root only; silent otherwise).
stop_default_member() {
  [ "$(id -u)" = 0 ] || return 0
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet etcd 2>/dev/null; then
    systemctl disable --now etcd >/dev/null 2>&1 || true
  elif [ -x /etc/init.d/etcd ] && /etc/init.d/etcd status >/dev/null 2>&1; then
    /etc/init.d/etcd stop >/dev/null 2>&1 || true
  fi
}

if command -v etcd >/dev/null 2>&1 && command -v etcdctl >/dev/null 2>&1; then
  stop_default_member
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "pgha: etcd is missing; install it as root: apt-get install -y etcd-server etcd-client" >&2
  exit 1
fi
echo "pgha: installing etcd (apt-get install -y etcd-server etcd-client)…" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# policy-rc.d 101: the package's init script must not start its default member.
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
chmod +x /usr/sbin/policy-rc.d
trap 'rm -f /usr/sbin/policy-rc.d' EXIT
apt-get install -y -qq --no-install-recommends etcd-server etcd-client >/dev/null
# Under systemd, enabling the unit may still have started it.
stop_default_member
echo "pgha: etcd installed ($(etcd --version | head -1))" >&2
