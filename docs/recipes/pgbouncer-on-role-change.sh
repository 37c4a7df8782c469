#!/bin/sh
# pgha role-change hook: point a pgbouncer [databases] entry at the new primary and RELOAD
# pgbouncer (docs/hooks.md). Give it to every node of the formation:
#
#   pgha keeper set on-role-change --pgdata DIR \
#     'PGBOUNCER_INI=/etc/pgbouncer/pgbouncer.ini PGBOUNCER_DATABASE=appdb /usr/local/bin/pgbouncer-on-role-change.sh'
#
# It acts only when PGHA_NEW_ROLE is "primary": it rewrites the host= and port= of the entry
# (keeping its other settings, e.g. dbname= or pool_size=) to PGHA_HOST and PGHA_PORT,
# replaces the file atomically (same owner and mode), then sends RELOAD on pgbouncer's admin
# console. Other roles leave pgbouncer alone: the old primary's Postgres is stopped, and the
# new primary's hook moves the entry. Running it twice does no harm.
#
# Settings (environment):
#   PGBOUNCER_INI       pgbouncer's configuration file      (default /etc/pgbouncer/pgbouncer.ini)
#   PGBOUNCER_DATABASE  the [databases] entry to rewrite     (default postgres)
#   PGBOUNCER_ADMIN     libpq conninfo of the admin console  (default "host=127.0.0.1 port=6432 dbname=pgbouncer user=pgbouncer")
#                       its password from PGPASSFILE (a 0600 file), never on this command line
#   PSQL                the psql program                     (default psql)
set -eu

ini=${PGBOUNCER_INI:-/etc/pgbouncer/pgbouncer.ini}
entry=${PGBOUNCER_DATABASE:-postgres}
admin=${PGBOUNCER_ADMIN:-host=127.0.0.1 port=6432 dbname=pgbouncer user=pgbouncer}
psql=${PSQL:-psql}

if [ "${PGHA_NEW_ROLE:-}" != primary ]; then
  echo "pgbouncer: nothing to do for role ${PGHA_NEW_ROLE:-?} of ${PGHA_NODE_NAME:-?}"
  exit 0
fi
: "${PGHA_HOST:?PGHA_HOST is not set: run this from a pgha role-change hook}"
: "${PGHA_PORT:?PGHA_PORT is not set: run this from a pgha role-change hook}"
[ -f "$ini" ] || { echo "pgbouncer: $ini not found" >&2; exit 1; }

# Hooks of two nodes may run at once on a shared pgbouncer host: one rewrite at a time.
exec 9>>"$ini.pgha-lock"
flock -w 10 9 || { echo "pgbouncer: $ini.pgha-lock is held by another hook" >&2; exit 1; }

tmp=$(mktemp "$ini.XXXXXX")
trap 'rm -f "$tmp"' EXIT
# In [databases], the line "ENTRY = settings": drop its host= and port=, put the new ones
# first. Without such a line, add one at the end of the section.
awk -v entry="$entry" -v host="$PGHA_HOST" -v port="$PGHA_PORT" '
  function flush() { if (insec && !done) { print entry " = host=" host " port=" port; done = 1 } }
  /^[ \t]*\[/ {
    flush()
    insec = ($0 ~ /^[ \t]*\[databases\][ \t]*$/)
    print; next
  }
  insec && !done {
    line = $0
    key = line; sub(/[ \t]*=.*/, "", key); sub(/^[ \t]+/, "", key)
    if (key == entry && line ~ /=/) {
      rest = line; sub(/^[^=]*=[ \t]*/, "", rest)
      gsub(/(^|[ \t])(host|port)=[^ \t]*/, "", rest); sub(/^[ \t]+/, "", rest)
      print entry " = host=" host " port=" port (rest == "" ? "" : " " rest)
      done = 1; next
    }
  }
  { print }
  END { flush() }
' "$ini" >"$tmp"
chmod --reference="$ini" "$tmp"
chown --reference="$ini" "$tmp"
mv -f "$tmp" "$ini"
trap - EXIT

"$psql" -X -q -v ON_ERROR_STOP=1 -d "$admin" -c RELOAD
echo "pgbouncer: $entry now points at $PGHA_HOST:$PGHA_PORT (node ${PGHA_NODE_NAME:-?}, timeline ${PGHA_TIMELINE:-?}); RELOAD sent"
