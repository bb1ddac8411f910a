#!/usr/bin/env bash
# The lab: a network namespace with a TAP device for netbt and a kernel peer beside it.
#
#   scripts/lab.sh up                 create namespace $NETBT_NS (default netbt-lab) with tap0:
#                                     kernel side 192.168.69.100/24, IPv6 off
#   scripts/lab.sh down               delete it (and everything running in it)
#   scripts/lab.sh run [serve args]   up if needed, build, run `netbt serve` inside (Ctrl-C stops
#                                     it, releases the names, and takes the lab down again)
#   scripts/lab.sh exec CMD...        run a command inside the namespace (nmblookup, smbclient)
#
# Needs root (ip netns). Traffic stays inside the namespace.
set -euo pipefail
cd "$(dirname "$0")/.."

NS=${NETBT_NS:-netbt-lab}
TAP=${NETBT_TAP:-tap0}
PEER=192.168.69.100/24

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

lab_exists() { ip netns list | awk '{print $1}' | grep -qx "$NS"; }

up() {
    lab_exists && return 0
    as_root ip netns add "$NS"
    as_root ip -n "$NS" link set lo up
    as_root ip -n "$NS" tuntap add dev "$TAP" mode tap
    as_root ip -n "$NS" addr add "$PEER" brd + dev "$TAP"
    as_root ip netns exec "$NS" sysctl -qw "net.ipv6.conf.$TAP.disable_ipv6=1"
    as_root ip -n "$NS" link set "$TAP" up
    echo "lab $NS is up: $TAP with the kernel at $PEER; netbt belongs at 192.168.69.1"
}

down() {
    lab_exists || return 0
    # Stop whatever still runs inside, then delete the namespace.
    for pid in $(as_root ip netns pids "$NS" 2>/dev/null); do as_root kill "$pid" 2>/dev/null || true; done
    sleep 0.2
    as_root ip netns del "$NS"
    echo "lab $NS is down"
}

run() {
    local created=0
    lab_exists || { up; created=1; }
    [ "$created" -eq 1 ] && trap down EXIT
    cargo build --release --quiet
    # The hints name what this run serves: the first --name (default NETBT) and --ip.
    local name="" ip=192.168.69.1 prev=""
    for arg in "$@"; do
        case "$prev" in --name) name=${name:-$arg} ;; --ip) ip=${arg%/*} ;; esac
        case "$arg" in --name=*) name=${name:-${arg#--name=}} ;; --ip=*) ip=${arg#--ip=} ip=${ip%/*} ;; esac
        prev=$arg
    done
    name=${name:-NETBT}
    local base=${name%%#*} server="'${name%%#*}#20'"
    [ "$name" != "$base" ] && server="'$name'"
    cat <<TXT
Try it from another terminal:
  sudo ip netns exec $NS nmblookup -U $ip '$name'
  sudo ip netns exec $NS nmblookup -B 192.168.69.255 $server
  sudo ip netns exec $NS nmblookup -A $ip
  sudo ip netns exec $NS ./target/release/netbt status          # names, sessions, slots, counters
Sessions on 139 echo every message by default; for SMB, put an smbd on 127.0.0.1:445 inside the
lab and run: scripts/lab.sh run --handler forward=127.0.0.1:445, then
  sudo ip netns exec $NS smbclient -L //$base -p 139 -I $ip -N
TXT
    as_root ip netns exec "$NS" ./target/release/netbt serve --tap "$TAP" "$@" &
    local child=$!
    # Ctrl-C or SIGTERM: let netbt release its names and exit on its own.
    trap 'kill -TERM $child 2>/dev/null || true' INT TERM
    local rc=0
    wait "$child" || rc=$?
    # A trapped signal interrupts the first wait; wait for netbt itself.
    if kill -0 "$child" 2>/dev/null; then rc=0; wait "$child" || rc=$?; fi
    return "$rc"
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    run) shift; run "$@" ;;
    exec) shift; as_root ip netns exec "$NS" "$@" ;;
    *) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
