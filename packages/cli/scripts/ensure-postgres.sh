#!/usr/bin/env bash
# Installs the PostgreSQL 15 server programs when this machine lacks them (Debian 12).
# Idempotent and quiet when everything is already there.
set -euo pipefail
if [ -x /usr/lib/postgresql/15/bin/pg_ctl ] && [ -x /usr/lib/postgresql/15/bin/pg_rewind ] && id postgres >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "pgha: PostgreSQL 15 server programs are missing; install them as root: apt-get install -y postgresql-15" >&2
  exit 1
fi
echo "pgha: installing PostgreSQL 15 (apt-get install -y postgresql-15)…" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq postgresql-15 >/dev/null
# Debian's package creates and starts a default cluster on 5432; pgha does not use it.
if command -v pg_ctlcluster >/dev/null 2>&1; then
  pg_ctlcluster 15 main stop >/dev/null 2>&1 || true
fi
echo "pgha: PostgreSQL 15 installed" >&2
