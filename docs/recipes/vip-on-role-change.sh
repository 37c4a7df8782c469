#!/bin/sh
# pgha role-change hook: the primary holds a virtual IP, every other role lets it go
# (docs/hooks.md, "Recipe: a virtual IP"). Give it to every node of the formation:
#
#   pgha keeper set on-role-change --pgdata DIR \
#     'VIP=10.0.0.100/24 VIP_DEV=eth0 /usr/local/bin/vip-on-role-change.sh'
#
# Role "primary": adds $VIP to $VIP_DEV unless it is there, then sends two unsolicited
# (gratuitous) ARPs one second apart, so that the neighbours' ARP caches and the switches
# learn the address's new MAC at once instead of after their entries time out (the run takes
# about 1 s). Every other role (replica, demoted: the self-fence too, maintenance, stopped):
# deletes $VIP from $VIP_DEV if it is there. Running it twice for one role does no harm.
#
# Settings (environment):
#   VIP      the virtual IP and its prefix length, e.g. 10.0.0.100/24 (required)
#   VIP_DEV  the interface that holds it, e.g. eth0 (required)
#   ARPING   iputils' arping (Debian: iputils-arping)   (default arping)
# Needs CAP_NET_ADMIN (the keeper runs as root in the usual setup) and iproute2's ip.
set -eu

fail() {
  echo "vip: $*" >&2
  exit 2
}

vip=${VIP:-}
dev=${VIP_DEV:-}
arping=${ARPING:-arping}
role=${PGHA_NEW_ROLE:-}
[ -n "$role" ] || fail "PGHA_NEW_ROLE is not set: run this as a pgha role-change hook (pgha keeper set on-role-change)"
case "$vip" in
  */*) ;;
  *) fail "VIP='$vip' is not an address with its prefix length: set VIP, e.g. VIP=10.0.0.100/24" ;;
esac
[ -n "$dev" ] || fail "VIP_DEV is not set: set it to the interface that holds the address, e.g. VIP_DEV=eth0"
ip link show dev "$dev" >/dev/null 2>&1 || fail "VIP_DEV=$dev: no such interface here (see ip link)"
addr=${vip%/*}

# Whether $dev holds $addr now (" 10.0.0.100/" never matches 10.0.0.10).
held() {
  ip -o -4 addr show dev "$dev" | grep -q " $addr/"
}

case "$role" in
  primary)
    if held; then
      echo "vip: $vip already on $dev ($PGHA_NODE_NAME)"
    else
      ip addr add "$vip" dev "$dev"
      echo "vip: $vip added on $dev ($PGHA_NODE_NAME, state $PGHA_STATE, timeline $PGHA_TIMELINE)"
    fi
    # Even when already held: a neighbour may still have the old holder's MAC.
    "$arping" -q -U -c 2 -w 1 -I "$dev" "$addr" || echo "vip: $arping -U failed (exit $?): neighbours learn the new MAC when their ARP entries expire" >&2
    ;;
  *)
    if held; then
      ip addr del "$vip" dev "$dev"
      echo "vip: $vip deleted from $dev ($PGHA_NODE_NAME is now $role, state $PGHA_STATE)"
    else
      echo "vip: $vip not on $dev ($PGHA_NODE_NAME is $role)"
    fi
    ;;
esac
