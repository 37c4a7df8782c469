#!/usr/bin/env bash
# Installs the programs the end-to-end tests drive for real when this machine lacks them
# (Debian 12): HAProxy (client routing), PgBouncer (role-change hook recipe), iputils' arping
# (the virtual IP recipe's gratuitous ARP), Chromium (the monitor's web page, driven by
# playwright-core), tmux (pgha watch). Idempotent and quiet
# when everything is already there. The packages' own services are stopped: tests start
# their own processes on free loopback ports.
set -euo pipefail
missing=()
command -v haproxy >/dev/null 2>&1 || missing+=(haproxy)
command -v pgbouncer >/dev/null 2>&1 || missing+=(pgbouncer)
# iputils' arping (-U: unsolicited ARP), not Debian's other `arping` package, whose options differ.
[ -x /usr/bin/arping ] && /usr/bin/arping -V 2>&1 | grep -q iputils || missing+=(iputils-arping)
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v tmux >/dev/null 2>&1 || missing+=(tmux)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "pgha: the tests need ${missing[*]}; install them as root: apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "pgha: installing ${missing[*]} (apt-get install -y)…" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# policy-rc.d 101: the packages' init scripts must not start their services.
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
chmod +x /usr/sbin/policy-rc.d
trap 'rm -f /usr/sbin/policy-rc.d' EXIT
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
for svc in haproxy pgbouncer; do
  if pidof "$svc" >/dev/null 2>&1; then service "$svc" stop >/dev/null 2>&1 || true; fi
done
echo "pgha: installed ${missing[*]}" >&2
